"""Access keys are identifiers (masked); secret keys and session tokens are redacted by default."""

import pytest

from masking.engine import KINDS
from tests.masking.engine_support import BACKENDS, found, masked

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SESSION = "IQoJb3JpZ2luX2VjEPT//////////wEaCXVzLWVhc3QtMSJHMEUCIQD6Nwwa3xEXAMPLE+k2a8Zz8Xnq0Yc5kq1AbCDefGH="
OLD_SESSION = "FwoGZXIvYXdzEBYaDEXAMPLEq7hJrG0X1rCKAAc2ZgVPyYy0V0Bq9vWpZ3T5m8ExAmPlE/2a+3nJq=="


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.mark.parametrize("prefix", ["AKIA", "ASIA", "ABIA", "ACCA"])
def test_it_masks_access_key_ids(backend, prefix):
    key = f"{prefix}IOSFODNN7EXAMPLE"
    assert found(f"key {key} used", backend) == [(key, "access_key_id")]


@pytest.mark.parametrize("prefix", ["AIDA", "AROA", "AGPA", "ANPA", "AIPA"])
@pytest.mark.parametrize("rest", ["JQABLZS4A3QDU576Q", "JQABLZS4A3QDU576"])  # 21 characters as IAM issues them, and 20
def test_it_masks_iam_unique_ids(backend, prefix, rest):
    unique = prefix + rest
    assert found(f'"UserId": "{unique}:session"', backend) == [(unique, "iam_unique_id")]
    assert found(f'{{"UserId": "{unique}", "Account": "x"}}', backend) == [(unique, "iam_unique_id")]


def test_an_iam_unique_id_one_character_too_long_is_not_taken(backend):
    assert found("id AIDAJQABLZS4A3QDU576QQ here", backend) == []


def test_access_keys_are_masked_and_secrets_redacted_by_default():
    assert KINDS["access_key_id"].default_policy == "mask"
    assert KINDS["secret_access_key"].default_policy == "redact"
    assert KINDS["session_token"].default_policy == "redact"


@pytest.mark.parametrize(
    "text",
    [
        f"[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = {SECRET}\n",
        f"export AWS_SECRET_ACCESS_KEY={SECRET}\n",
        f'export AWS_SECRET_ACCESS_KEY="{SECRET}"',
        f'{{"AccessKeyId": "ASIAIOSFODNN7EXAMPLE", "SecretAccessKey": "{SECRET}"}}',
        f"secret_key: {SECRET}",
    ],
)
def test_it_finds_secret_access_keys_next_to_their_label(backend, text):
    assert (SECRET, "secret_access_key") in found(text, backend)


def test_it_finds_a_secret_key_with_json_escaped_slashes(backend):
    escaped = SECRET.replace("/", "\\/")
    assert found(f'{{"SecretAccessKey":"{escaped}"}}', backend) == [(escaped, "secret_access_key")]


@pytest.mark.parametrize("token", [SESSION, OLD_SESSION])
def test_it_finds_session_tokens_by_their_shape(backend, token):
    assert found(f"token {token} expires", backend) == [(token, "session_token")]


@pytest.mark.parametrize(
    ("text", "token"),
    [
        (f"aws_session_token = {SESSION}", SESSION),
        (f'"SessionToken": "{SESSION}"', SESSION),
        (f"X-Amz-Security-Token={SESSION.replace('/', '%2F')}&X-Amz-Date=20261125", SESSION.replace("/", "%2F")),
    ],
)
def test_it_finds_session_tokens_after_their_label(backend, text, token):
    assert found(text, backend) == [(token, "session_token")]


@pytest.mark.parametrize(
    "text",
    [
        f"just a random string {SECRET} with no label",
        "AKIAIOSFODNN7EXAMPL is one short",
        "AKIAIOSFODNN7EXAMPLEXY is two long",  # 20 characters, or 21 as in AWS's assume-role example
        "akiaiosfodnn7example",
        "AWS_SECRET_KEY_REDACTED and AWS_SESSION_TOKEN_REDACTED",
        f"aws_secret_access_key = {SECRET * 2}",  # 80 characters: a blob, not a key
    ],
)
def test_it_leaves_lookalikes_of_credentials(backend, text):
    assert [kind for _, kind in found(text, backend) if kind != "ipv4_public"] == []


def test_a_credentials_file_keeps_its_layout(backend):
    text = f"[prod]\naws_access_key_id=AKIAIOSFODNN7EXAMPLE\naws_secret_access_key={SECRET}\n"
    assert masked(text, backend) == (
        "[prod]\naws_access_key_id=<access_key_id>\naws_secret_access_key=<secret_access_key>\n"
    )


def test_it_finds_the_secret_next_to_its_key_id_in_the_console_credentials_csv(backend):
    text = f"User name,Access key ID,Secret access key\ndeploy,AKIAIOSFODNN7EXAMPLE,{SECRET}\n"
    assert masked(text, backend) == (
        "User name,Access key ID,Secret access key\ndeploy,<access_key_id>,<secret_access_key>\n"
    )


def test_two_glued_key_ids_after_a_key_id_are_not_taken_for_its_secret(backend):
    text = "AKIAIOSFODNN7EXAMPLE AKIAIOSFODNN7EXAMPLEAKIAIOSFODNN7EXAMPLE"
    assert found(text, backend) == [("AKIAIOSFODNN7EXAMPLE", "access_key_id")]


@pytest.mark.parametrize(
    "text",
    [
        f'{{"name": "AWS_SECRET_ACCESS_KEY", "value": "{SECRET}"}}',  # an ECS task definition's environment
        f"{{'Name': 'aws_secret_access_key', 'Value': '{SECRET}'}}",
    ],
)
def test_it_redacts_a_secret_key_given_as_a_name_and_value_pair(backend, text):
    assert found(text, backend) == [(SECRET, "secret_access_key")]


def test_it_redacts_a_session_token_given_as_a_name_and_value_pair(backend):
    token = "FQoGZXIvYXdzEXAMPLEtokenVALUE1234567890abcdef"
    text = f'{{"name": "AWS_SESSION_TOKEN", "value": "{token}"}}'
    assert found(text, backend) == [(token, "session_token")]


def test_a_value_after_another_name_is_not_taken_for_a_secret(backend):
    assert found(f'{{"name": "BUILD_HASH", "value": "{SECRET}"}}', backend) == []


def test_it_masks_the_credentials_of_an_assume_role_answer_as_aws_documents_it(backend):
    # AWS's example: a 21-character key id and a 34-character secret; real ones have 20 and 40
    text = (
        '{"Credentials": {"AccessKeyId": "ASIAJEXAMPLEXEG2JICEA",'
        ' "SecretAccessKey": "9drTJvcXLB89EXAMPLELB8923FB892xMFI", "Expiration": "2024-05-01T11:00:00Z"}}'
    )
    assert found(text, backend) == [
        ("ASIAJEXAMPLEXEG2JICEA", "access_key_id"),
        ("9drTJvcXLB89EXAMPLELB8923FB892xMFI", "secret_access_key"),
    ]


def test_a_long_blob_after_a_secret_label_is_not_taken_for_a_key(backend):
    assert found(f'"secret_key": "{"A" * 200}"', backend) == []


def test_a_value_after_a_secret_label_is_redacted_even_when_its_length_is_unusual(backend):
    text = f"aws_secret_access_key = {SECRET}X"  # 41 characters: the label says what it is
    assert found(text, backend) == [(SECRET + "X", "secret_access_key")]
