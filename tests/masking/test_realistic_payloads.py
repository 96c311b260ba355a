"""Realistic operator pastes (CLI output, CloudTrail, Terraform, policies, task definitions, logs,
credentials) through the masker: every identifier listed for a payload is gone from what the model
would see, and the masked text comes back to the original byte for byte. Each listed value leaked
once; add a payload whenever a new shape is found to leak."""

from pathlib import Path

import pytest

from masking import masker, unmasker

pytestmark = pytest.mark.django_db

PAYLOADS = Path(__file__).parent / "payloads"

NEVER_SEEN = {
    "describe_instances.json": [
        "r-0a1b2c3d4e5f67890",
        "123456789012",
        "940372691376",
        "i-0c7f1e2d3b4a59687",
        "ami-0abcdef1234567890",
        "10.20.3.44",
        "54.210.167.204",
        "ec2-54-210-167-204.compute-1.amazonaws.com",
        "subnet-0f1e2d3c4b5a69788",
        "vpc-0123abcd4567ef890",
        "AIPAJ2TTSAAQLB7EXAMPL",
        "eni-0987fedcba6543210",
        "eni-attach-0fedcba9876543210",
        "vol-0a9b8c7d6e5f43210",
        "sg-0123456789abcdef0",
        "h-0123456789abcdef0",
        "cr-0123456789abcdef0",
        "a1b2c3d4-5678-90ab-cdef-111122223333",
    ],
    "cloudtrail_event.json": [
        "AROA3XFRBF535PLBIFPI4",
        "123456789012",
        "ASIA3XFRBF53XEXAMPLE",
        "198.51.100.23",
        "acme-finance-reports",
        "vpce-0a1b2c3d4e5f67890",
    ],
    "terraform_and_shell.txt": [
        "203.0.113.0",
        "10.0.0.0",
        "sg-0123456789abcdef0",
        "sg-0fedcba9876543210",
        "123456789012",
        "db-ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "prod.c9akciq32xyz.us-east-1.rds.amazonaws.com",
        "1234abcd-12ab-34cd-56ef-1234567890ab",
        "sg-0aaaabbbbccccdddd",
        "sg-0eeeeffff00001111",
        "i-0c7f1e2d3b4a59687",
        "54.210.167.204",
        "acme-finance-reports",
    ],
    "policies_tasks_kubeconfig.txt": [
        "210987654321",
        "111122223333",
        "vpce-1a2b3c4d",
        "o-a1b2c3d4e5",
        "123456789012",
        "prod.cluster-c9akciq32xyz.us-east-1.rds.amazonaws.com",
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "A95FBC180B680B58A6468EF929D3ABCD",
        "i-0c7f1e2d3b4a59687",
        "10.0.12.7",
        "eni-0a1b2c3d4e5f67890",
        "10.0.1.5",
        "203.0.113.7",
        "acme-finance-reports",
    ],
    "logs_and_credentials.txt": [
        "203.0.113.9",
        "10.0.2.15",
        "123456789012",
        "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be",
        "192.0.2.3",
        "Z35SXDOTRQ7X7K",
        "web-alb-1234567890.us-east-1.elb.amazonaws.com",
        "vpce-0a1b2c3d4e5f67890",
        "i-0c7f1e2d3b4a59687",
        "ASIAJEXAMPLEXEG2JICEA",
        "9drTJvcXLB89EXAMPLELB8923FB892xMFI",
        "AROA3XFRBF535PLBIFPI4",
        "AQoXdzELDDY",
        "acme-finance-reports",
    ],
}


@pytest.mark.parametrize("name", sorted(NEVER_SEEN))
def test_no_listed_identifier_of_a_realistic_payload_reaches_the_model(redis_client, name):
    text = (PAYLOADS / name).read_text()
    assert all(value in text for value in NEVER_SEEN[name])  # the list names what the payload holds

    (masked,) = masker.mask_texts([text]).texts

    assert [value for value in NEVER_SEEN[name] if value in masked] == []


@pytest.mark.parametrize("name", sorted(NEVER_SEEN))
def test_a_masked_realistic_payload_comes_back_byte_for_byte(redis_client, name):
    text = (PAYLOADS / name).read_text()
    (masked,) = masker.mask_texts([text]).texts

    restored = unmasker.unmask_texts([masked]).texts[0]

    secrets = ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "9drTJvcXLB89EXAMPLELB8923FB892xMFI", "AQoXdzELDDY")
    if any(secret in text for secret in secrets):  # secrets are redacted, not masked: they never come back
        assert "_REDACTED" in restored
    else:
        assert restored == text
