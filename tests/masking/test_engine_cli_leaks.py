"""Shapes that leaked from realistic pastes (tests/masking/payloads/cli_*.txt, logs_mixed.txt): AWS CLI
`--output text` / `--output table` records, EKS OIDC issuers, ELB hosted zones, Identity Center
portals, log delivery prefixes, Organizations account objects. Each is masked now, on both backends,
and what only looks like one is left alone."""

from collections import Counter

import pytest

from masking import engine
from tests.masking.engine_support import BACKENDS, assert_backends_agree, found, masked

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
    ("unit", "head", "expected"),
    [
        ("123456789012\t", "SECURITYGROUPS\t", {"account_id": 1}),
        (
            "x" * 40 + "\t",
            "CREDENTIALS\tASIAIOSFODNN7EXAMPLE\t2024\t",
            {"access_key_id": 1, "secret_access_key": 1, "session_token": 1},
        ),
        ("a-", "https://", {}),
        ("AWSLogs/", "", {}),
        ("|  ", "OwnerId  ", {}),
        ('"Id": "123456789012", ', "", {}),
    ],
)
def test_hostile_inputs_for_the_new_rules_are_scanned_to_the_end_with_the_right_answer(backend, unit, head, expected):
    text = head + unit * ((200_000 - len(head)) // len(unit))
    assert Counter(match.kind for match in engine.scan(text, backend=backend)) == expected


def test_both_backends_agree_on_generated_cli_records():
    pieces = [
        "CREDENTIALS\t", "ASIAIOSFODNN7EXAMPLE", SECRET, TOKEN, "\t", "\n", "SECURITYGROUPS\t", "USERIDGROUPPAIRS\t",
        ACCOUNT, "sg-0b1c2d3e4f5a6b7c8", "|  ", "OwnerId", "  ", '"UserId": "', '"', "AWSLogs/", "o-exampleorgid/",
        "oidc.eks.us-west-2.amazonaws.com/id/", "EXAMPLED539D4633E53DE1B71EXAMPLE", "d-9067642ac7", ".awsapps.com",
        '"Id": "', '", "Arn": "arn:aws:organizations::111111111111:account/', "CanonicalHostedZoneId", ": ",
        "Z2P70J7EX",
    ]  # fmt: skip
    assert_backends_agree(pieces, seed=7, texts=600, most=16)


@pytest.mark.parametrize(
    "text",
    [
        f"ADDRESSES\teipalloc-0a1b2c3d4e5f60789\teipassoc-0b1c2d3e4f5a60789\tvpc\teni-0e1f2a3b4c5d60789\t{ACCOUNT}\t10.0.0.5",
        "NETWORKINTERFACES\tus-east-1a\tPrimary network interface\tinterface\t0a:1b:2c:3d:4e:5f\t"
        f"eni-0f1a2b3c4d5e60789\t{ACCOUNT}",
        f"ATTACHMENT\t2024-03-05T10:00:00+00:00\teni-attach-0c2d3e4f5a6b70789\tTrue\t0\t0\tattached\ti-0d1e2f3a4b5c60789\t{ACCOUNT}",
        f"SNAPSHOTS\tCreated by CreateImage\tFalse\t{ACCOUNT}\t100%\tsnap-0e2f3a4b5c6d70789",
        f"IMAGES\tx86_64\t2024-03-05T10:00:00.000Z\tTrue\txen\tami-0a3b4c5d6e7f80789\t{ACCOUNT}/web\tmachine\tweb\t{ACCOUNT}\r\n",
    ],
)
def test_it_masks_the_owner_column_of_more_text_records(backend, text):
    assert [value for value, kind in found(text, backend) if kind == "account_id"] == [ACCOUNT]


@pytest.mark.parametrize(
    "text",
    [
        r'"CloudTrailEvent": "{\"recipientAccountId\":\"123456789012\"}"',
        r'"{\"accountId\": \"123456789012\", \"eventName\": \"RunInstances\"}"',
    ],
)
def test_it_masks_an_account_after_a_label_escaped_inside_a_json_string(backend, text):
    assert found(text, backend) == [(ACCOUNT, "account_id")]


@pytest.mark.parametrize(
    ("text", "value", "kind"),
    [
        (
            "https://us-east-1.console.aws.amazon.com/sns/v3/home#/topic/arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3Aalerts",
            "arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3Aalerts",
            "sns_arn",
        ),
        (
            "iam/home#/roles/details/deploy?arn=arn%3aaws%3aiam%3a%3a123456789012%3arole%2fdeploy&section=x",
            "arn%3aaws%3aiam%3a%3a123456789012%3arole%2fdeploy",
            "iam_role_arn",
        ),
        ("see arn%3Aaws%3Alambda%3Aeu-west-1%3A123456789012%3Afunction%3Afn.", None, "lambda_arn"),
    ],
)
def test_it_masks_a_url_encoded_arn_whole_as_its_decoded_kind(backend, text, value, kind):
    value = value or "arn%3Aaws%3Alambda%3Aeu-west-1%3A123456789012%3Afunction%3Afn"
    assert found(text, backend) == [(value, kind)]


def test_a_url_encoded_aws_managed_arn_is_left_alone_whole(backend):
    text = "policies?arn=arn%3Aaws%3Aiam%3A%3Aaws%3Apolicy%2FAdministratorAccess 10.0.0.1"
    assert found(text, backend) == [("10.0.0.1", "ipv4_private")]


@pytest.mark.parametrize(
    "text",
    [
        "arn%3Aaws%3Asns%3Aus-east-1%3A%3Aalerts",  # no account
        "arn%3Aaws%3Asns%3Aus-east-1%3A12345%3Aalerts",
        r'"{\"eventName\":\"123456789012\"}"',
        "IMAGES\tx86_64\t1234567890123\tweb",
        "INSTANCES\t0\tx86_64\t123456789012",  # a record whose columns are not known to hold an owner
    ],
)
def test_what_only_looks_like_an_encoded_arn_or_an_owner_column_is_left_alone(backend, text):
    assert found(text, backend) == []


@pytest.mark.parametrize(
    ("text", "value", "kind"),
    [
        (
            '"vpce-0a1b2c3d4e5f67890-k3xmpl4f.s3.us-west-2.vpce.amazonaws.com"',
            "vpce-0a1b2c3d4e5f67890-k3xmpl4f.s3.us-west-2.vpce.amazonaws.com",
            "aws_hostname",
        ),
        (
            '"*.vpce-0a1b2c3d4e5f67890-k3xmpl4f.s3.us-west-2.vpce.amazonaws.com"',
            "*.vpce-0a1b2c3d4e5f67890-k3xmpl4f.s3.us-west-2.vpce.amazonaws.com",
            "aws_hostname",
        ),
        (
            "vpce-0a1b2c3d4e5f67890-k3xmpl4f-us-west-2b.execute-api.us-west-2.vpce.amazonaws.com",
            "vpce-0a1b2c3d4e5f67890-k3xmpl4f-us-west-2b.execute-api.us-west-2.vpce.amazonaws.com",
            "aws_hostname",
        ),
        (
            '"regionalDomainName": "d-abcde12345.execute-api.us-west-2.amazonaws.com"',
            "d-abcde12345.execute-api.us-west-2.amazonaws.com",
            "api_gateway_host",
        ),
        ('"regionalHostedZoneId": "Z2OJLYMUO9EFXC"', "Z2OJLYMUO9EFXC", "route53_zone"),
        (
            "a3k7odshaiipe8-ats.iot.us-west-2.amazonaws.com",
            "a3k7odshaiipe8-ats.iot.us-west-2.amazonaws.com",
            "aws_hostname",
        ),
        ("a1234567890abcdef.awsglobalaccelerator.com", "a1234567890abcdef.awsglobalaccelerator.com", "aws_hostname"),
        (
            "https://acme-auth.auth.us-west-2.amazoncognito.com/login",
            "acme-auth.auth.us-west-2.amazoncognito.com",
            "aws_hostname",
        ),
        ("--user-pool-id us-west-2_aBcDeFgHi", "us-west-2_aBcDeFgHi", "cognito_user_pool"),
        ('"ServerId": "s-01234567890abcdef"', "s-01234567890abcdef", "ec2_resource"),
        ('"MountTargetId": "fsmt-0a1b2c3d4e5f67890"', "fsmt-0a1b2c3d4e5f67890", "efs_filesystem"),
    ],
)
def test_it_masks_endpoint_hostnames_and_ids_of_more_services(backend, text, value, kind):
    assert found(text, backend) == [(value, kind)]


@pytest.mark.parametrize(
    "text",
    [
        "iot.us-west-2.amazonaws.com",  # the service's own endpoint
        "s3.us-west-2.vpce.amazonaws.com",
        "cognito-idp.us-west-2.amazonaws.com",
        "us-east-1_snapshots",  # a name, not a pool: no capital letter
        "backup-us-east-1_2024",
        "s-123",
        "globalaccelerator.amazonaws.com",
        "execute-api.us-west-2.amazonaws.com",
    ],
)
def test_service_endpoints_and_names_shaped_like_the_new_ids_are_left_alone(backend, text):
    assert found(text, backend) == []


@pytest.mark.parametrize(
    ("text", "value", "kind"),
    [
        (
            "https://acme-112233445566.d.codeartifact.us-east-1.amazonaws.com/pypi/store/",
            "acme-112233445566.d.codeartifact.us-east-1.amazonaws.com",
            "aws_hostname",
        ),
        (
            '"ServiceUrl": "bxnmbp7bvj.us-east-1.awsapprunner.com"',
            "bxnmbp7bvj.us-east-1.awsapprunner.com",
            "aws_hostname",
        ),
        ("https://main.d1a2b3c4d5e6f7.amplifyapp.com/", "main.d1a2b3c4d5e6f7.amplifyapp.com", "aws_hostname"),
        (
            "research-x9y8.notebook.us-east-1.sagemaker.aws",
            "research-x9y8.notebook.us-east-1.sagemaker.aws",
            "aws_hostname",
        ),
        (
            '"EndpointURL": "awseb-e-a-AWSEBLoa-1A2B3C4D5E6F7-123456789.us-east-1.elb.amazonaws.com"',
            "awseb-e-a-AWSEBLoa-1A2B3C4D5E6F7-123456789.us-east-1.elb.amazonaws.com",
            "elb_dns",
        ),
        (
            '"arn:aws:secretsmanager:us-east-1:112233445566:secret:rds!db-0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d-AbCdEf"',
            "arn:aws:secretsmanager:us-east-1:112233445566:secret:rds!db-0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d-AbCdEf",
            "secret_arn",
        ),
        ("--domain-owner 112233445566", "112233445566", "account_id"),
        ("The role is arn:aws:iam::112233445566:role/admin!", "arn:aws:iam::112233445566:role/admin", "iam_role_arn"),
    ],
)
def test_it_masks_hostnames_of_more_services_and_arns_with_a_bang(backend, text, value, kind):
    assert found(text, backend) == [(value, kind)]


@pytest.mark.parametrize(
    "text",
    ["codeartifact.us-east-1.amazonaws.com", "docs.aws.amazon.com/amplify", "sagemaker.us-east-1.amazonaws.com", "Hi!"],
)
def test_the_services_own_endpoints_are_left_alone(backend, text):
    assert found(text, backend) == []


ECR_TOKEN = (  # noqa: S105
    "QVdTOmV5SndZWGxzYjJGa0lqb2lNVEl6TkRVMk56ZzVNR0ZpWTJSbFpqRXlN"
    "elExTmpjNE9UQmhZbU5rWldZeE1qTTBOVFkzT0Rrd1lXSmpaR1ZtIn0="
)
LOGIN_PASSWORD = (
    "eyJwYXlsb2FkIjoiNmJ4YXN1c2VyLXRva2VuLWV4YW1wbGUtcGF5bG9hZC1ub3QtcmVhbCIsImRhdGFrZXkiOiJBUUVCQUhoZXhhbXBsZSJ9"
)
EKS_TOKEN = "k8s-aws-v1.aHR0cHM6Ly9zdHMudXMtd2VzdC0yLmFtYXpvbmF3cy5jb20vP0FjdGlvbj1HZXRDYWxsZXJJZGVudGl0eSZWZXJzaW9u"
CODEARTIFACT_TOKEN = "eyJ2ZXIiOjEsImlzdSI6MTcwOTYzNjQwMCwiZW5jIjoiQTEyOEdDTSJ9.exampleexampleexample"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (f'{{"authorizationToken": "{ECR_TOKEN}", "expiresAt": "2024-03-05T22:00:00+00:00"}}', ECR_TOKEN),
        (f"$ aws ecr get-login-password\n{LOGIN_PASSWORD}\n", LOGIN_PASSWORD),
        (f'"status": {{"token": "{EKS_TOKEN}"}}', EKS_TOKEN),
        (f"    token: {EKS_TOKEN}\n", EKS_TOKEN),
        (f"export CODEARTIFACT_AUTH_TOKEN={CODEARTIFACT_TOKEN}.", CODEARTIFACT_TOKEN),
        (
            "X-Amz-Security-Token=IQoJb3JpZ2luX2VjEXAMPLEtokenvalue%2Fmore%3D&X-Amz-Signature=5b1c",
            "IQoJb3JpZ2luX2VjEXAMPLEtokenvalue%2Fmore%3D",
        ),
    ],
)
def test_it_redacts_bearer_tokens_of_ecr_eks_codeartifact_and_url_encoded_session_tokens(backend, text, value):
    assert (value, "session_token") in found(text, backend)
    assert not any(value in v for v, kind in found(text, backend) if kind != "session_token")


@pytest.mark.parametrize(
    "text",
    [
        "k8s-aws-v1.short",
        "QVdTOg==",  # base64 of `AWS:` alone
        "the image tag is k8s-aws-v1",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln",  # an ordinary JWT is not an AWS credential shape
    ],
)
def test_short_or_foreign_token_lookalikes_are_left_alone(backend, text):
    assert found(text, backend) == []


@pytest.mark.parametrize(
    ("text", "value", "kind"),
    [
        ("clustercfg.my-db.abc123.memorydb.us-east-1.amazonaws.com:6379", None, "aws_hostname"),
        ("dax://my-dax.abc123.dax-clusters.us-east-1.amazonaws.com", None, "aws_hostname"),
        (
            '{"PhysicalResourceId": "orders-appbucket-1x2y3z4w5v6u", "ResourceType": "AWS::S3::Bucket"}',
            "orders-appbucket-1x2y3z4w5v6u",
            "s3_bucket",
        ),
    ],
)
def test_it_masks_memorydb_and_dax_hosts_and_a_stacks_generated_bucket(backend, text, value, kind):
    value = value or text.split("//")[-1].split(":")[0]
    assert found(text, backend) == [(value, kind)]


@pytest.mark.parametrize(
    "text",
    [
        '{"PhysicalResourceId": "orders-queue", "ResourceType": "AWS::SQS::Queue"}',
        "memorydb.us-east-1.amazonaws.com",
        "dax.us-east-1.amazonaws.com",
    ],
)
def test_other_physical_ids_and_service_endpoints_are_left_alone(backend, text):
    assert found(text, backend) == []


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (
            "https 2024-03-05T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817",
            "app/my-loadbalancer/50dc6c495c0c9188",
        ),
        ('{"Name": "LoadBalancer", "Value": "net/my-nlb/0123456789abcdef"}', "net/my-nlb/0123456789abcdef"),
        ("TargetGroup=targetgroup/my-targets/73e2d6bc24d8a067", "targetgroup/my-targets/73e2d6bc24d8a067"),
    ],
)
def test_it_masks_a_load_balancer_as_access_logs_and_metrics_name_it(backend, text, value):
    assert (value, "elb_arn") in found(text, backend)


@pytest.mark.parametrize("text", ["src/app/main/0123456789abcdef", "app/web/v1", "see net/http/0123456789abcdeg"])
def test_paths_that_only_look_like_a_load_balancer_are_left_alone(backend, text):
    assert found(text, backend) == []
