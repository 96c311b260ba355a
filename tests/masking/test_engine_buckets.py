"""S3 bucket names: in URIs, virtual-hosted and path-style URLs, and bucket fields; not every word."""

import pytest

from tests.masking.engine_support import BACKENDS, found, masked


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("aws s3 cp s3://prod-backups/db/2026-11-25.dump .", "aws s3 cp s3://<s3_bucket>/db/2026-11-25.dump ."),
        ("read s3a://data.lake.raw/events", "read s3a://<s3_bucket>/events"),
        ("copy it to s3://logs-archive.", "copy it to s3://<s3_bucket>."),
        ("https://prod-assets.s3.amazonaws.com/img.png", "https://<s3_bucket>.s3.amazonaws.com/img.png"),
        ("https://my.bucket.s3.us-west-2.amazonaws.com/k", "https://<s3_bucket>.s3.us-west-2.amazonaws.com/k"),
        ("http://site-www.s3-website-us-east-1.amazonaws.com", "http://<s3_bucket>.s3-website-us-east-1.amazonaws.com"),
        (
            "https://s3.us-east-1.amazonaws.com/prod-assets/img.png",
            "https://s3.us-east-1.amazonaws.com/<s3_bucket>/img.png",
        ),
        ("https://s3.amazonaws.com/prod-assets", "https://s3.amazonaws.com/<s3_bucket>"),
        ('{"Bucket": "prod-assets", "Key": "a.txt"}', '{"Bucket": "<s3_bucket>", "Key": "a.txt"}'),
        (
            '"requestParameters": {"bucketName": "cloudtrail-logs-1"}',
            '"requestParameters": {"bucketName": "<s3_bucket>"}',
        ),
        ('  + bucket = "tf-state-prod"', '  + bucket = "<s3_bucket>"'),
        ("Bucket: my-config-bucket\nKey: x", "Bucket: <s3_bucket>\nKey: x"),
        ("2023-04-01 10:00:00 acme-prod-logs\n", "2023-04-01 10:00:00 <s3_bucket>\n"),
        ('{"Buckets": [{"Name": "acme-prod-logs"}]}', '{"Buckets": [{"Name": "<s3_bucket>"}]}'),
    ],
)
def test_it_masks_only_the_bucket_name(backend, text, expected):
    assert masked(text, backend) == expected


def test_it_masks_the_bucket_of_a_json_escaped_s3_uri(backend):
    assert found('{"Location": "s3:\\/\\/prod-backups\\/db.dump"}', backend) == [("prod-backups", "s3_bucket")]


def test_the_json_escaped_path_style_url_keeps_its_escapes(backend):
    text = "https:\\/\\/s3.amazonaws.com\\/prod-assets\\/a.png"
    assert found(text, backend) == [("prod-assets", "s3_bucket")]


@pytest.mark.parametrize(
    "text",
    [
        "a well-known long-running follow-up",
        "the s3.amazonaws.com endpoint",
        "https://s3.us-east-1.amazonaws.com/",
        "sts.amazonaws.com and s3-accelerate.amazonaws.com",
        "s3://AWS_S3_BUCKET_001/key",
        '"Bucket": "AWS_S3_BUCKET_001"',
        '"Bucket": "10.0.0.1"',
        "s3://ab/too-short",
        "bucket: true",
        "Bucket: my..bucket",
        "2023-04-01 10:00:00 INFO started",
        '{"Tags": [{"Key": "Name", "Value": "web-server-1"}]}',
    ],
)
def test_it_leaves_what_is_not_a_bucket(backend, text):
    assert [value for value, kind in found(text, backend) if kind == "s3_bucket"] == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"Buckets": "prod-logs-acme"', ["prod-logs-acme"]),
        ("BucketNames: prod-logs-acme", ["prod-logs-acme"]),
        ('  bucket_names = ["prod-logs-acme"]', ["prod-logs-acme"]),
        ('"Buckets": [\n    "prod-logs-acme"\n  ]', ["prod-logs-acme"]),
        ("Buckets:\n  - prod-logs-acme", ["prod-logs-acme"]),
        ("Bucket: my.bucket.Then more", ["my.bucket"]),
        ('"Bucket": "b.c.dRegion"', []),  # glued to a capital: no bucket, on both backends
        ('bucket_name = "abc..ab-:', ["abc"]),  # what a search cut short at the gate's end missed
    ],
)
def test_plural_labels_lists_and_the_end_of_a_bucket_name(backend, text, expected):
    assert [value for value, kind in found(text, backend) if kind == "s3_bucket"] == expected


@pytest.mark.parametrize(
    "url",
    [
        "https://s3.console.aws.amazon.com/s3/buckets/acme-finance-reports?region=us-east-1",
        "https://s3.console.aws.amazon.com/s3/object/acme-finance-reports?prefix=2024/q1.csv",
    ],
)
def test_it_masks_the_bucket_in_an_s3_console_url(backend, url):
    assert found(url, backend) == [("acme-finance-reports", "s3_bucket")]


ACCESS_LOG_RECORD = (
    "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be acme-finance-reports"
    " [01/May/2024:10:00:00 +0000] 192.0.2.3 - 3E57427F3EXAMPLE REST.GET.OBJECT reports/q1.csv"
)


def test_it_masks_the_owner_and_the_bucket_at_the_start_of_an_s3_access_log_record(backend):
    text = f"{ACCESS_LOG_RECORD}\n{ACCESS_LOG_RECORD}"
    owner, bucket = ACCESS_LOG_RECORD.split()[:2]
    pair = [(owner, "s3_canonical_user_id"), (bucket, "s3_bucket")]
    assert [item for item in found(text, backend) if item[1] != "ipv4_public"] == pair + pair


def test_a_digest_and_a_word_before_a_date_in_brackets_mid_line_are_left_alone(backend):
    text = f"sha {'a' * 64} build [01/May/2024:10:00:00 +0000]"
    assert found(text, backend) == []
