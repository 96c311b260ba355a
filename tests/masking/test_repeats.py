import pytest

from masking import masker

pytestmark = pytest.mark.django_db

BUCKET = "acme-finance-reports"


def mask(*texts: str) -> list[str]:
    return masker.mask_texts(list(texts)).texts


def test_a_bucket_an_arn_names_is_masked_where_the_prose_names_it_again(redis_client):
    (masked,) = mask(f"Policy on arn:aws:s3:::{BUCKET}/data.csv: the {BUCKET} bucket is public.")

    assert BUCKET not in masked
    assert masked.count("AWS_S3_BUCKET_") == 1 and masked.count("AWS_S3_ARN_") == 1


def test_a_bucket_named_in_one_message_is_masked_in_the_others(redis_client):
    first, second = mask(f"aws s3 cp s3://{BUCKET}/q1.csv .", f"Why is {BUCKET} denying reads?")

    assert BUCKET not in first and BUCKET not in second
    assert first.split("s3://")[1].split("/")[0] == second.split()[2]  # the same token in both


def test_a_bucket_named_like_a_word_is_not_carried_over(redis_client):
    (masked,) = mask("aws s3 ls s3://logs/2024/ and then read the logs carefully")

    assert masked.endswith("read the logs carefully") and "s3://logs/" not in masked


@pytest.mark.parametrize(
    ("tail", "kept"),
    [
        (f"{BUCKET}-old is another bucket", f"{BUCKET}-old"),
        (f"see https://example.com/{BUCKET}.html", f"{BUCKET}.html"),
    ],
)
def test_a_longer_name_that_starts_like_the_bucket_stays(redis_client, tail, kept):
    (masked,) = mask(f"s3://{BUCKET}/x then {tail}")

    assert kept in masked


def test_the_bucket_inside_an_access_log_request_uri_is_masked_too(redis_client):
    record = (
        "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be acme-finance-reports"
        " [01/May/2024:10:00:00 +0000] 192.0.2.3 - 3E57427F REST.GET.OBJECT q1.csv"
        ' "GET /acme-finance-reports/q1.csv HTTP/1.1"'
    )
    (masked,) = mask(record)

    assert BUCKET not in masked and masked.count("AWS_S3_BUCKET_") == 2


def test_a_remembered_text_gets_the_bucket_only_while_the_request_names_it(redis_client):
    prose = f"The {BUCKET} bucket is public. " + "Nothing else to report here. " * 12  # long enough to be remembered

    results = [mask(prose)[0], mask(prose, f"arn:aws:s3:::{BUCKET}")[0], mask(prose)[0]]

    assert BUCKET in results[0] and BUCKET in results[2]
    assert BUCKET not in results[1]
