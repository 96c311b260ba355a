"""Ids that only the context makes AWS ids: Route 53 zones, KMS keys, CloudFront, ACM."""

import pytest

from tests.masking.engine_support import BACKENDS, found

KEY = "1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.mark.parametrize(
    ("text", "value", "kind"),
    [
        ('"HostedZoneId": "Z1D633PJN98FT9"', "Z1D633PJN98FT9", "route53_zone"),
        ('"Id": "/hostedzone/Z0123456789ABCDEFGHIJ"', "Z0123456789ABCDEFGHIJ", "route53_zone"),
        ("aws route53 list-resource-record-sets --hosted-zone-id Z1D633PJN98FT9", "Z1D633PJN98FT9", "route53_zone"),
        (f'"KeyId": "{KEY}"', KEY, "kms_key_id"),
        (f"aws kms decrypt --key-id {KEY}", KEY, "kms_key_id"),
        (f'  kms_key_id = "{KEY}"', KEY, "kms_key_id"),
        (f"alias points to key/{KEY}", KEY, "kms_key_id"),
        (f'"KeyIds": ["{KEY}"]', KEY, "kms_key_id"),
        (f'"KmsKeyIds": [\n    "{KEY}"\n  ]', KEY, "kms_key_id"),
        (f"kms_key_ids = {KEY}", KEY, "kms_key_id"),
        (f"KeyIds:\n  - {KEY}", KEY, "kms_key_id"),
        ("mrk-1234abcd12ab34cd56ef1234567890ab", "mrk-1234abcd12ab34cd56ef1234567890ab", "kms_key_id"),
        ('"DistributionId": "E2QWRUHAPOMQZL"', "E2QWRUHAPOMQZL", "cloudfront_distribution"),
        ('{"Distribution": {"Id": "EDFDVBD6EXAMPLE"}}', "EDFDVBD6EXAMPLE", "cloudfront_distribution"),
        ("invalidate distribution E2QWRUHAPOMQZL now", "E2QWRUHAPOMQZL", "cloudfront_distribution"),
        (f'"CertificateId": "{KEY}"', KEY, "acm_certificate_id"),
    ],
)
def test_it_masks_ids_the_context_identifies(backend, text, value, kind):
    assert found(text, backend) == [(value, kind)]


@pytest.mark.parametrize(
    "text",
    [
        f"request id {KEY} failed",  # a bare UUID is not an AWS id
        '"Id": "EXAMPLEONLYID"',  # no digit: not a distribution id
        "Zone ZABCDEFGH1 without the label",
        "E2QWRUHAPOMQZL alone",
        f'"RequestIds": ["{KEY}", "{KEY}"]',  # a list of UUIDs under another label
    ],
)
def test_it_leaves_the_same_shapes_without_context(backend, text):
    assert found(text, backend) == []
