"""12-digit account ids: in ECR hosts and SQS URLs, or where a label says it is an account."""

import pytest

from tests.masking.engine_support import BACKENDS, found, masked

ACCOUNT = "123456789012"


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.mark.parametrize(
    "text",
    [
        f'"Account": "{ACCOUNT}"',
        f'"AccountId": "{ACCOUNT}"',
        f'"accountId": "{ACCOUNT}"',
        f'"OwnerId": "{ACCOUNT}"',
        f'"RequesterId": "{ACCOUNT}"',  # describe-instances: who launched it (a service's account, or yours)
        f'"recipientAccountId": "{ACCOUNT}"',
        f'"SourceAccount": "{ACCOUNT}"',
        f'"Principal": {{"AWS": "{ACCOUNT}"}}',
        f"aws_account_id = {ACCOUNT}",
        f"export AWS_ACCOUNT_ID={ACCOUNT}",
        f"AccountId: '{ACCOUNT}'",
        f'  account_id = "{ACCOUNT}"',
        f"the prod account {ACCOUNT} is locked",
        f"Account ID: {ACCOUNT}",
        f"account number {ACCOUNT}",
        f"account #{ACCOUNT}",
        f'  allowed_account_ids = ["{ACCOUNT}"]',
        f'"Principal": {{"AWS": ["{ACCOUNT}"]}}',
    ],
)
def test_it_masks_an_account_id_where_a_label_says_so(backend, text):
    assert found(text, backend) == [(ACCOUNT, "account_id")]


def test_it_masks_the_console_form_with_dashes(backend):
    assert found("Account ID: 1234-5678-9012", backend) == [("1234-5678-9012", "account_id")]


def test_it_masks_the_account_in_an_ecr_hostname(backend):
    text = f"docker pull {ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/web:latest"
    assert masked(text, backend) == "docker pull <account_id>.dkr.ecr.us-east-1.amazonaws.com/web:latest"


@pytest.mark.parametrize(
    "url",
    [
        f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/jobs",
        f"https://queue.amazonaws.com/{ACCOUNT}/jobs",
        f"https:\\/\\/sqs.eu-west-1.amazonaws.com\\/{ACCOUNT}\\/jobs",
    ],
)
def test_it_masks_the_account_in_an_sqs_url(backend, url):
    assert found(url, backend) == [(ACCOUNT, "account_id")]


@pytest.mark.parametrize(
    "text",
    [
        "timestamp 1732526400123 in milliseconds",
        "call +1 415 555 0123 or 415555012345",
        "order number 123456789012 shipped",
        f"plain {ACCOUNT} without a label",
        f"account {ACCOUNT}3 has 13 digits",
        f"Account: {ACCOUNT[:11]}",
        "card 1234-5678-9012-3456",
        "account: see AWS_ACCOUNT_001",
    ],
)
def test_it_leaves_other_numbers_alone(backend, text):
    assert [kind for _, kind in found(text, backend) if kind == "account_id"] == []


def test_it_masks_the_account_field_of_vpc_flow_log_records(backend):
    text = f"2 {ACCOUNT} eni-0a1b2c3d4e5f67890 10.0.1.5 10.0.2.9 443 49152 6 10 840 1732526400 1732526460 ACCEPT OK"
    assert found(text, backend)[0] == (ACCOUNT, "account_id")
    assert found(f"2 {ACCOUNT} items", backend) == []


def test_it_masks_the_account_in_a_console_sign_in_url(backend):
    url = f"https://{ACCOUNT}.signin.aws.amazon.com/console"
    assert found(url, backend) == [(ACCOUNT, "account_id")]
