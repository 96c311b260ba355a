"""Shapes that leaked from realistic pastes (tests/masking/payloads/cli_*.txt, logs_mixed.txt): AWS CLI
`--output text` / `--output table` records, EKS OIDC issuers, ELB hosted zones, Identity Center
portals, log delivery prefixes, Organizations account objects. Each is masked now, on both backends,
and what only looks like one is left alone."""

import time

import pytest

from masking import engine
from tests.masking.engine_support import BACKENDS, found, masked

ACCOUNT = "123456789012"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # noqa: S105
TOKEN = "AQoDYXdzEJr1K5ZJDZEXAMPLEtoken+sessionvalue/forthetest1234567890abcdefEXAMPLE"  # noqa: S105


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


def test_an_assume_role_answer_as_text_has_its_secret_and_session_token_redacted(backend):
    text = (
        "ASSUMEDROLEUSER\tarn:aws:sts::123456789012:assumed-role/x/audit\tAROA3XFRBF535PLBIFPI4:audit\n"
        f"CREDENTIALS\tASIAIOSFODNN7EXAMPLE\t2024-03-05T11:10:10+00:00\t{SECRET}\t{TOKEN}\n"
    )
    assert masked(text, backend).splitlines()[1] == (
        "CREDENTIALS\t<access_key_id>\t2024-03-05T11:10:10+00:00\t<secret_access_key>\t<session_token>"
    )


def test_an_assume_role_answer_as_a_table_has_its_secret_and_session_token_redacted(backend):
    text = (
        f"||  AccessKeyId      |  ASIAIOSFODNN7EXAMPLE   ||\n"
        f"||  SecretAccessKey  |  {SECRET}  ||\n"
        f"||  SessionToken     |  {TOKEN}  ||\n"
    )
    assert masked(text, backend) == (
        "||  AccessKeyId      |  <access_key_id>   ||\n"
        "||  SecretAccessKey  |  <secret_access_key>  ||\n"
        "||  SessionToken     |  <session_token>  ||\n"
    )


@pytest.mark.parametrize(
    "text",
    [
        f"|||  OwnerId             |  {ACCOUNT}                 |||",  # describe-vpc-peering-connections --output table
        f"||  registryId     |  {ACCOUNT}   ||",  # ecr describe-repositories --output table
        f"| Account | {ACCOUNT} |",  # a Markdown table
        f'"UserIdGroupPairs": [{{"GroupId": "sg-0b1c2d3e4f5a6b7c8", "UserId": "{ACCOUNT}"}}]',
        f'"registryId": "{ACCOUNT}"',
        f"SECURITYGROUPS\tweb tier\tsg-0a2b4c6d8e0f13579\tweb-sg\t{ACCOUNT}\tvpc-0c1d2e3f4a5b6c7d8",
        f"USERIDGROUPPAIRS\tsg-0b1c2d3e4f5a6b7c8\t{ACCOUNT}",
        f"RESERVATIONS\t{ACCOUNT}\tr-0a1b2c3d4e5f67890",
        f"s3://acme-alb-logs/AWSLogs/{ACCOUNT}/elasticloadbalancing/us-east-1/2024/03/05/",
        f"s3://org-trail/AWSLogs/o-exampleorgid/{ACCOUNT}/CloudTrail/us-east-1/",
    ],
)
def test_it_masks_an_account_id_in_cli_tables_text_records_and_log_prefixes(backend, text):
    assert (ACCOUNT, "account_id") in found(text, backend)
    assert ACCOUNT not in masked(text, backend)


def test_it_masks_the_id_of_each_organizations_account_object(backend):
    text = (
        '{"Accounts": [{"Id": "222222222222", '
        '"Arn": "arn:aws:organizations::111111111111:account/o-exampleorgid/222222222222", "Name": "Dev"}]}'
    )
    assert masked(text, backend) == '{"Accounts": [{"Id": "<account_id>", "Arn": "<arn>", "Name": "Dev"}]}'


@pytest.mark.parametrize(
    "text",
    [
        '"UserId": "AIDASAMPLEUSERID12345"',  # sts get-caller-identity: an IAM id, masked as one
        "USERIDGROUPPAIRS\tsg-0b1c2d3e4f5a6b7c8\t1234567890123",  # 13 digits
        "LOGSTREAMS\tarn\t1709660727116\tstream\t123456789012",  # a record that holds no account column
        f'"Id": "{ACCOUNT}", "Name": "x"',  # an Id with no Organizations account ARN after it
        "|  Port  |  5432  |",
        f"| StoredBytes | {ACCOUNT} |",
    ],
)
def test_twelve_digits_in_other_records_and_cells_are_left_alone(backend, text):
    assert (ACCOUNT, "account_id") not in found(text, backend)


@pytest.mark.parametrize(
    ("text", "value", "kind"),
    [
        (
            "https://EXAMPLE0A04F01705DD065655C30CC3D.yl4.us-west-2.eks.amazonaws.com",
            "EXAMPLE0A04F01705DD065655C30CC3D.yl4.us-west-2.eks.amazonaws.com",
            "eks_endpoint",
        ),
        (
            '"issuer": "https://oidc.eks.us-west-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"',
            "EXAMPLED539D4633E53DE1B71EXAMPLE",
            "eks_endpoint",
        ),
        (
            r'"issuer": "https:\/\/oidc.eks.us-west-2.amazonaws.com\/id\/0A04F01705DD065655C30CC3D0A04F01"',
            "0A04F01705DD065655C30CC3D0A04F01",
            "eks_endpoint",
        ),
        ('"CanonicalHostedZoneId": "Z2P70J7EXAMPLE"', "Z2P70J7EXAMPLE", "route53_zone"),
        ('"CanonicalHostedZoneNameID": "Z35SXDOTRQ7X7K"', "Z35SXDOTRQ7X7K", "route53_zone"),
        ("https://d-9067642ac7.awsapps.com/start", "d-9067642ac7.awsapps.com", "aws_hostname"),
        ("sign in at https://acme-sso.awsapps.com/start#/", "acme-sso.awsapps.com", "aws_hostname"),
    ],
)
def test_it_masks_eks_oidc_ids_elb_hosted_zones_and_identity_center_portals(backend, text, value, kind):
    assert found(text, backend) == [(value, kind)]


@pytest.mark.parametrize(
    "text",
    [
        "https://oidc.eks.us-west-2.amazonaws.com/id/short",
        "oidc.eks.us-west-2.amazonaws.com",
        "see awsapps.com for the portal",
        "the hosted zone is public",
        "CanonicalHostedZoneId: none",
    ],
)
def test_lookalikes_are_left_alone(backend, text):
    assert found(text, backend) == []


def test_a_credentials_line_too_short_for_a_secret_keeps_its_other_fields(backend):
    text = "CREDENTIALS\tASIAIOSFODNN7EXAMPLE\t2024-03-05\tshort\ttoo"
    assert found(text, backend) == [("ASIAIOSFODNN7EXAMPLE", "access_key_id")]


@pytest.mark.parametrize(
    ("unit", "head"),
    [
        ("123456789012\t", "SECURITYGROUPS\t"),
        ("x" * 40 + "\t", "CREDENTIALS\tASIAIOSFODNN7EXAMPLE\t2024\t"),
        ("a-", "https://"),
        ("AWSLogs/", ""),
        ("|  ", "OwnerId  "),
        ('"Id": "123456789012", ', ""),
    ],
)
def test_hostile_inputs_for_the_new_rules_stay_linear(backend, unit, head):
    text = head + unit * ((200_000 - len(head)) // len(unit))
    started = time.process_time()
    engine.scan(text, backend=backend)
    assert time.process_time() - started < 2.0


def test_both_backends_agree_on_generated_cli_records():
    if len(BACKENDS) < 2:
        pytest.skip("hyperscan is not installed")
    import random

    rng = random.Random(7)
    pieces = [
        "CREDENTIALS\t", "ASIAIOSFODNN7EXAMPLE", SECRET, TOKEN, "\t", "\n", "SECURITYGROUPS\t", "USERIDGROUPPAIRS\t",
        ACCOUNT, "sg-0b1c2d3e4f5a6b7c8", "|  ", "OwnerId", "  ", '"UserId": "', '"', "AWSLogs/", "o-exampleorgid/",
        "oidc.eks.us-west-2.amazonaws.com/id/", "EXAMPLED539D4633E53DE1B71EXAMPLE", "d-9067642ac7", ".awsapps.com",
        '"Id": "', '", "Arn": "arn:aws:organizations::111111111111:account/', "CanonicalHostedZoneId", ": ",
        "Z2P70J7EX",
    ]  # fmt: skip
    for _ in range(600):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 16)))
        assert engine.scan(text, backend="hyperscan") == engine.scan(text, backend="python"), text
