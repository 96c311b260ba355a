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
    "cli_accounts_tables.txt": [
        "111111111111",
        "222222222222",
        "sg-0a2b4c6d8e0f13579",
        "555566667777",
        "vpc-0c1d2e3f4a5b6c7d8",
        "203.0.113.25",
        "sg-0b1c2d3e4f5a6b7c8",
        "666677778888",
        "10.1.0.0",
        "777788889999",
        "vpc-a1b2c3d4",
        "888899990000",
        "acme-exports-2024",
        "AKIAIOSFODNN7EXAMPLE",
        "mi-0123456789abcdef0",
        "192.168.7.21",
        "i-0e2d4c6b8a0f13579",
        "10.4.2.8",
        "AROAJ52OTH4H7LEXAMPLE",
        "123456789012",
        "ami-0f1e2d3c4b5a69780",
        "999988887777",
        "AROA3XFRBF535PLBIFPI4",
        "ASIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY",
        "AQoDYXdzEJr1K5ZJDZEXAMPLEtoken",
    ],
    "logs_mixed.txt": [
        "acme-alb-logs-prod",
        "123456789012",
        "192.168.131.39",
        "10.0.0.1",
        "73e2d6bc24d8a067",
        "12345678-1234-1234-1234-123456789012",
        "i-0b22a22eec53b9321",
        "10.20.30.40",
        "52.95.110.1",
        "vol-049df61146c4d7901",
        "i-0d4c3b2a1f0e98765",
        "d-9067642ac7",
        "210987654321",
        "eipassoc-2bebb745",
        "eni-e5aa89a3",
        "orders.cluster-ro-c9akciq32xyz.us-east-1.rds.amazonaws.com",
        "master.prod-cache.abc123.use1.cache.amazonaws.com",
    ],
    "cli_network_compute.json": [
        "AIDASAMPLEUSERID12345",
        "123456789012",
        "444455556666",
        "sg-0a2b4c6d8e0f13579",
        "sg-0b1c2d3e4f5a6b7c8",
        "203.0.113.25",
        "2001:db8:1234:1a00::",
        "pl-63a5400a",
        "vpc-0c1d2e3f4a5b6c7d8",
        "prod-orders.cdgmuqiadpid.us-east-1.rds.amazonaws.com",
        "Z2R2ITUGPM61AM",
        "subnet-0a1b2c3d4e5f60718",
        "1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d",
        "db-EXAMPLEAS2BLPGMTSFH3MVIDW4",
        "EXAMPLE0A04F01705DD065655C30CC3D",
        "EXAMPLED539D4633E53DE1B71EXAMPLE",
        "sg-0d1e2f3a4b5c6d7e8",
        "subnet-0f0e0d0c0b0a09080",
        "50dc6c495c0c9188",
        "my-load-balancer-424835706.us-west-2.elb.amazonaws.com",
        "Z2P70J7EXAMPLE",
        "subnet-8360a9e7",
        "198.51.100.77",
        "eipalloc-64d5890a",
        "sg-5943793c",
        "Z1D633PJN98FT9",
        "Z08312345ABCDEFGHIJK",
    ],
    "cli_serverless_logs.txt": [
        "123456789012",
        "subnet-071f712345678e7c8",
        "sg-085912345678492fb",
        "vpc-08e1234569e011e83",
        "a1b2c3d4e5.execute-api.us-west-2.amazonaws.com",
        "i-0598c7d356eba48d7",
        "sg-0e1f2a3b4c5d6e7f8",
        "8f7e6d50-1234-11ee-be56-0242ac120002",
        "i-0f9e8d7c6b5a43210",
        "eni-0f1e2d3c4b5a69788",
        "172.31.16.139",
        "172.31.16.21",
        "198.51.100.44",
        "172.31.9.69",
        "i-0a9b8c7d6e5f40312",
        "10.0.3.17",
        "34.201.45.118",
        "ec2-34-201-45-118.compute-1.amazonaws.com",
    ],
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

    secrets = (
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY",
        "9drTJvcXLB89EXAMPLELB8923FB892xMFI",
        "AQoXdzELDDY",
    )
    if any(secret in text for secret in secrets):  # secrets are redacted, not masked: they never come back
        assert "_REDACTED" in restored
    else:
        assert restored == text
