"""ARNs: one token per ARN, a kind per service, every partition; AWS-owned ARNs stay."""

import pytest

from tests.masking.engine_support import BACKENDS, found, masked

ACCOUNT = "123456789012"


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.mark.parametrize(
    ("arn", "kind"),
    [
        (f"arn:aws:iam::{ACCOUNT}:role/service-role/WebServerRole", "iam_role_arn"),
        (f"arn:aws:iam::{ACCOUNT}:user/alice@example.com", "iam_user_arn"),
        (f"arn:aws:iam::{ACCOUNT}:group/Admins", "iam_group_arn"),
        (f"arn:aws:iam::{ACCOUNT}:policy/DeployPolicy", "iam_policy_arn"),
        (f"arn:aws:iam::{ACCOUNT}:instance-profile/web", "iam_instance_profile_arn"),
        (f"arn:aws:iam::{ACCOUNT}:root", "arn"),
        (f"arn:aws:sts::{ACCOUNT}:assumed-role/Deploy/session-1", "sts_assumed_role_arn"),
        (f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:resize", "lambda_arn"),
        (f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:resize:42", "lambda_arn"),
        (f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:resize:live", "lambda_arn"),
        (f"arn:aws:ecs:eu-west-1:{ACCOUNT}:cluster/prod", "ecs_arn"),
        (f"arn:aws:ecs:eu-west-1:{ACCOUNT}:service/prod/web", "ecs_arn"),
        (f"arn:aws:ecs:eu-west-1:{ACCOUNT}:task/prod/0123456789abcdef0123456789abcdef", "ecs_arn"),
        (f"arn:aws:ecs:eu-west-1:{ACCOUNT}:task-definition/web:17", "ecs_arn"),
        (f"arn:aws:eks:us-west-2:{ACCOUNT}:cluster/prod", "eks_arn"),
        (f"arn:aws:eks:us-west-2:{ACCOUNT}:nodegroup/prod/ng-1/0ac5b0e0-1111-2222-3333-444455556666", "eks_arn"),
        (
            f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:loadbalancer/app/web/50dc6c495c0c9188",
            "elb_arn",
        ),
        (f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:targetgroup/web/73e2d6bc24d8a067", "elb_arn"),
        (f"arn:aws:rds:us-east-1:{ACCOUNT}:db:main", "rds_arn"),
        (f"arn:aws:rds:us-east-1:{ACCOUNT}:cluster:aurora-prod", "rds_arn"),
        (f"arn:aws:rds:us-east-1:{ACCOUNT}:snapshot:rds:main-2026-11-25", "rds_arn"),
        (f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/Orders", "dynamodb_arn"),
        (f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/Orders/stream/2026-11-25T09:12:44.123", "dynamodb_arn"),
        (f"arn:aws:sns:us-east-1:{ACCOUNT}:alerts", "sns_arn"),
        (f"arn:aws:sqs:us-east-1:{ACCOUNT}:jobs.fifo", "sqs_arn"),
        (f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab", "kms_arn"),
        (f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/app-key", "kms_arn"),
        (f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:prod/db-AbCdEf", "secret_arn"),
        (f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/app/db/password", "ssm_arn"),
        (
            f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/web/1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d",
            "cloudformation_arn",
        ),
        (f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:orders", "stepfunctions_arn"),
        (f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/clicks", "kinesis_arn"),
        (f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/resize:*", "log_group_arn"),
        (f"arn:aws:acm:us-east-1:{ACCOUNT}:certificate/12345678-1234-1234-1234-123456789012", "acm_arn"),
        (f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/web", "ecr_arn"),
        ("arn:aws:s3:::my-bucket/path/to/key.json", "s3_arn"),
        ("arn:aws:s3:::my-bucket", "s3_arn"),
        (f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/i-0123456789abcdef0", "arn"),
        (f"arn:aws:cloudfront::{ACCOUNT}:distribution/EDFDVBD6EXAMPLE", "arn"),
        ("arn:aws:route53:::hostedzone/Z1D633PJN98FT9", "arn"),
        (f"arn:aws:imagebuilder:us-east-1:{ACCOUNT}:image-pipeline/nightly", "arn"),
    ],
)
def test_it_masks_each_arn_whole_with_its_service_kind(backend, arn, kind):
    assert found(f'"Arn": "{arn}"', backend) == [(arn, kind)]


@pytest.mark.parametrize("partition", ["aws", "aws-cn", "aws-us-gov"])
def test_it_masks_arns_in_every_partition(backend, partition):
    arn = f"arn:{partition}:iam::{ACCOUNT}:role/Admin"
    assert found(f"role {arn} assumed", backend) == [(arn, "iam_role_arn")]


def test_an_arn_is_one_token_not_an_account_plus_fragments(backend):
    text = f"AccountId: {ACCOUNT} owns arn:aws:iam::{ACCOUNT}:role/Admin"
    assert masked(text, backend) == "AccountId: <account_id> owns <iam_role_arn>"


def test_it_keeps_json_escaped_slashes_inside_the_arn(backend):
    arn = f"arn:aws:iam::{ACCOUNT}:role\\/path\\/Admin"
    assert found(f'{{"Arn":"{arn}"}}', backend) == [(arn, "iam_role_arn")]


def test_it_leaves_sentence_punctuation_after_an_arn(backend):
    text = f"Use arn:aws:sns:us-east-1:{ACCOUNT}:alerts, then arn:aws:sqs:us-east-1:{ACCOUNT}:jobs."
    assert masked(text, backend) == "Use <sns_arn>, then <sqs_arn>."


@pytest.mark.parametrize("text", ["see arn:aws:s3:::::", f"see arn:aws:iam::{ACCOUNT}:.", "arn:aws:s3:::,;"])
def test_it_ignores_an_arn_head_followed_only_by_punctuation(backend, text):
    assert found(text, backend) == []


def test_it_masks_each_arn_of_a_policy_resource_list(backend):
    text = f'"Resource": ["arn:aws:s3:::logs/*", "arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/Orders"]'
    assert masked(text, backend) == '"Resource": ["<s3_arn>", "<dynamodb_arn>"]'


@pytest.mark.parametrize(
    "text",
    [
        "arn:aws:iam::aws:policy/AdministratorAccess",
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/aws/s3",
        "arn:aws:ssm:us-east-1::parameter/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64",
        "arn:aws:states:::sqs:sendMessage",
    ],
)
def test_it_leaves_aws_owned_arns_as_they_are(backend, text):
    assert found(f"Attach {text} now", backend) == []


@pytest.mark.parametrize("text", ["arn:aws:", "arn:aws:iam", "arn:foo:iam::123456789012:role/x", "learn:aws:things"])
def test_it_leaves_text_that_is_not_an_arn(backend, text):
    assert found(text, backend) == []
