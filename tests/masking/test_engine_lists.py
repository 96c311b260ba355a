"""A label vouches for a whole list: every KMS key id and bucket name of a list after `KeyIds` /
`Buckets` is masked, not just the first; prose and JSON keys next to a bucket are left alone."""

import random

import pytest

from masking import engine
from tests.masking.engine_support import BACKENDS, found, masked

K1 = "1234abcd-12ab-34cd-56ef-1234567890ab"
K2 = "0987dcba-09fe-87dc-65ba-ab0987654321"
K3 = "mrk-1234abcd12ab34cd56ef1234567890ab"
KEYS = (K1, K2)
BUCKETS = ("prod-logs-acme", "backup-data-acme")


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


KEY_LISTS = [
    f'"KeyIds": ["{K1}", "{K2}"]',
    f"kms_key_ids = {K1}, {K2}",
    f'"KmsKeyIds": [\n    "{K1}",\n    "{K2}"\n  ]',
    f"KeyIds: {K1}; {K2}",
    f"key ids {K1} and {K2}",
    f"kms_key_ids = ['{K1}', '{K2}']",
    f'"KeyId": "{K1}", "{K2}"',
    f"KmsKeyIds:\n  - {K1}\n  - '{K2}'\n",
]
BUCKET_LISTS = [
    '"Buckets": ["prod-logs-acme", "backup-data-acme"]',
    '"BucketNames": ["prod-logs-acme", "backup-data-acme"]',
    '{\n  "Buckets": [\n    "prod-logs-acme",\n    "backup-data-acme"\n  ]\n}',
    "Buckets: prod-logs-acme, backup-data-acme",
    "Buckets: prod-logs-acme, backup-data-acme.\nNext line",
    'bucket_names = ["prod-logs-acme", "backup-data-acme"]',
    "Buckets: [prod-logs-acme, backup-data-acme]",
    "buckets: ['prod-logs-acme', 'backup-data-acme']",
    '"Bucket": "prod-logs-acme", "backup-data-acme"',
    "Buckets:\n  - prod-logs-acme\n  - backup-data-acme\nRegion: eu-west-1",
    "BucketNames:\n- 'prod-logs-acme'\n- \"backup-data-acme\"  # the old one\n",
]


@pytest.mark.parametrize("text", KEY_LISTS)
def test_every_kms_key_of_a_labelled_list_is_masked(backend, text):
    assert found(text, backend) == [(K1, "kms_key_id"), (K2, "kms_key_id")]


def test_a_key_list_mixes_uuids_and_multi_region_keys(backend):
    text = f'"KeyIds": ["{K3}", "{K1}", "{K2}"]'

    assert found(text, backend) == [(K3, "kms_key_id"), (K1, "kms_key_id"), (K2, "kms_key_id")]


@pytest.mark.parametrize("text", BUCKET_LISTS)
def test_every_bucket_of_a_labelled_list_is_masked(backend, text):
    assert found(text, backend) == [(name, "s3_bucket") for name in BUCKETS]


def test_a_long_bucket_list_is_masked_to_its_last_item(backend):
    names = [f"bucket-{n:03d}" for n in range(50)]
    text = '"Buckets": [' + ", ".join(f'"{name}"' for name in names) + "]"

    assert found(text, backend) == [(name, "s3_bucket") for name in names]


def test_an_item_already_masked_does_not_end_the_list(backend):
    text = '"Buckets": ["prod-logs-acme", "AWS_S3_BUCKET_001", "backup-data-acme"]'

    assert masked(text, backend) == '"Buckets": ["<s3_bucket>", "AWS_S3_BUCKET_001", "<s3_bucket>"]'


def test_the_list_ends_with_its_bracket(backend):
    text = f'"KeyIds": ["{K1}"], "RequestIds": ["{K2}"]'

    assert found(text, backend) == [(K1, "kms_key_id")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bucket: logs-prod and staging servers", "bucket: <s3_bucket> and staging servers"),
        ("bucket: logs-prod, staging servers", "bucket: <s3_bucket>, staging servers"),
        ("Buckets: logs-prod, staging servers are down", "Buckets: <s3_bucket>, staging servers are down"),
        ('"Bucket": "logs-prod", "name": "report"', '"Bucket": "<s3_bucket>", "name": "report"'),
        ('"Bucket": "logs-prod", "Region": "eu-west-1"', '"Bucket": "<s3_bucket>", "Region": "eu-west-1"'),
        ('"Buckets": ["logs-prod", "name": "x"]', '"Buckets": ["<s3_bucket>", "name": "x"]'),
        ('bucket = "logs-prod"\n  key = "report.csv"', 'bucket = "<s3_bucket>"\n  key = "report.csv"'),
        ('"Buckets": ["logs-prod", "true", "data-prod"]', '"Buckets": ["<s3_bucket>", "true", "data-prod"]'),
        ('"Buckets": ["logs-prod", "some words here"]', '"Buckets": ["<s3_bucket>", "some words here"]'),
        ("Buckets:\n  - logs-prod\n  - staging servers\n", "Buckets:\n  - <s3_bucket>\n  - staging servers\n"),
        ("Bucket:\n  - logs-prod\n  - name: report\n", "Bucket:\n  - <s3_bucket>\n  - name: report\n"),
        ("Resources:\n  - logs-prod\n  - data-prod", "Resources:\n  - logs-prod\n  - data-prod"),
    ],
)
def test_what_only_looks_like_the_next_bucket_is_left_alone(backend, text, expected):
    assert masked(text, backend) == expected


@pytest.mark.parametrize(
    "text",
    [
        f'"RequestIds": ["{K1}", "{K2}"]',
        f"request ids {K1}, {K2}",
        f'"Keys": ["{K1}", "{K2}"]',
    ],
)
def test_a_uuid_list_after_an_unrelated_label_stays_alone(backend, text):
    assert found(text, backend) == []


def test_a_key_list_stops_at_the_first_item_that_is_not_a_key(backend):
    text = f"KeyIds: {K1}, not-a-key, {K2}"

    assert found(text, backend) == [(K1, "kms_key_id")]


def test_both_backends_agree_on_generated_lists():
    if len(BACKENDS) < 2:
        pytest.skip("hyperscan is not installed")
    rng = random.Random(7)
    labels = ['"Buckets": ', "Buckets: ", "bucket_names = ", '"KeyIds": ', "kms_key_ids = ", '"Bucket": ', "ids: "]
    items = [*BUCKETS, K1, K2, K3, "name", "Region", "true", "AWS_S3_BUCKET_001", "a", "x.y", "10.0.0.1", "staging"]
    gaps = [", ", '", "', "', '", ",\n    ", " and ", ": ", " ", "\n", "; ", "]", "\n  - ", "'\n- '", ":\n  - "]
    for _ in range(400):
        parts = []
        for _ in range(rng.randint(1, 4)):
            parts += [rng.choice(labels), rng.choice(["", "[", '["', "[\n  '", '"'])]
            for _ in range(rng.randint(1, 5)):
                parts += [rng.choice(items), rng.choice(gaps)]
        text = "".join(parts)
        assert engine.scan(text, backend="hyperscan") == engine.scan(text, backend="python"), text


@pytest.mark.parametrize(
    ("unit", "head", "expected"),
    [
        ('"abc", ', '"Buckets": [', None),  # every item a bucket: all of them
        ('"a", ', '"Buckets": [', 0),  # too short to be one
        ('"abc": ', '"Buckets": [', 1),  # keys, not items: the first one only, as the label says
        (f"{K1[:-1]}, ", "KeyIds: ", 0),  # one hex digit short
        (f"{K1}, ", "KeyIds: ", None),
        (f"{K1[:-1]}g, ", f"KeyIds: {K1}, ", 1),  # the label's first key, then near-misses
        ("Buckets: ", "", 0),  # labels only
        ("  - abc\n", "Buckets:\n", None),  # a YAML block list a megabyte long
        ("  - abc:\n", "Buckets:\n", 1),
        ("KeyIds: [", "", 0),
    ],
)
def test_hostile_lists_are_scanned_to_the_end_with_the_right_count(backend, unit, head, expected):
    count = (1_000_000 - len(head)) // len(unit)
    text = head + unit * count
    matches = engine.scan(text, backend=backend)
    assert len(matches) == (count + head.count(K1) if expected is None else expected)


@pytest.mark.django_db
@pytest.mark.parametrize("text", KEY_LISTS)
def test_the_masker_turns_a_whole_key_list_into_tokens(texts_masked, text):
    result = texts_masked(text)

    assert not any(key in result for key in KEYS)
    assert result.count("AWS_KMS_KEY_") == 2


@pytest.mark.django_db
@pytest.mark.parametrize("text", BUCKET_LISTS)
def test_the_masker_turns_a_whole_bucket_list_into_tokens(texts_masked, text):
    result = texts_masked(text)

    assert not any(bucket in result for bucket in BUCKETS)
    assert result.count("AWS_S3_BUCKET_") == 2


@pytest.mark.django_db
def test_the_masker_leaves_the_prose_after_a_bucket_alone(texts_masked):
    assert texts_masked("bucket: logs-prod and staging servers") == "bucket: AWS_S3_BUCKET_001 and staging servers"
