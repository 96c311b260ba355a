"""Secret values: Secrets Manager's SecretString / SecretBinary and SSM SecureString parameter values
are redacted (kind secret_value), never tokenised; ordinary `"Value"` fields and prose are left alone."""

from collections import Counter

import pytest

from masking import engine
from masking.engine import KINDS
from tests.masking.engine_support import BACKENDS, assert_backends_agree, found, masked

ESCAPED = r"{\"username\":\"admin\",\"password\":\"S3cr3t!pass\"}"


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


def test_secret_values_are_redacted_by_default():
    assert KINDS["secret_value"].default_policy == "redact"


def test_it_redacts_the_secret_string_of_get_secret_value(backend):
    text = (
        "{\n"
        '    "ARN": "arn:aws:secretsmanager:us-west-2:123456789012:secret:prod/db-a1b2c3",\n'
        '    "Name": "prod/db",\n'
        '    "VersionId": "EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE",\n'
        f'    "SecretString": "{ESCAPED}",\n'
        '    "VersionStages": ["AWSCURRENT"],\n'
        '    "CreatedDate": "2024-03-01T10:00:00+00:00"\n'
        "}\n"
    )
    assert (ESCAPED, "secret_value") in found(text, backend)
    assert '"SecretString": "<secret_value>",' in masked(text, backend)


@pytest.mark.parametrize(
    "value",
    [
        r"a\"b\\\"c",  # an escaped quote after an escaped backslash: still inside
        "plain text secret with spaces",
        r"ends with a backslash \\",  # `\\` then the real closing quote
        r"C:\\Users\\admin \u00e9 \/path",
        "x",
    ],
)
def test_the_secret_string_ends_at_its_real_closing_quote(backend, value):
    text = f'{{"SecretString":"{value}","VersionId":"v1"}}'
    assert found(text, backend) == [(value, "secret_value")]


def test_it_redacts_a_secret_binary(backend):
    text = '{"Name": "tls-key", "SecretBinary": "c2VjcmV0IGJpbmFyeSBrZXk+/w==", "VersionId": "v1"}'
    assert found(text, backend) == [("c2VjcmV0IGJpbmFyeSBrZXk+/w==", "secret_value")]


def test_it_redacts_a_secure_string_parameter_value(backend):
    text = (
        '{\n    "Parameter": {\n        "Name": "/prod/db/password",\n        "Type": "SecureString",\n'
        '        "Value": "S3cr3t!pass",\n        "Version": 3,\n'
        '        "LastModifiedDate": "2024-03-01T10:00:00.123000+00:00",\n'
        '        "ARN": "arn:aws:ssm:us-east-1:123456789012:parameter/prod/db/password",\n'
        '        "DataType": "text"\n    }\n}\n'
    )
    assert found(text, backend)[0] == ("S3cr3t!pass", "secret_value")


def test_only_the_secure_string_parameters_of_a_list_are_redacted(backend):
    text = (
        '{"Parameters": [{"ARN": "arn:aws:ssm:us-east-1:123456789012:parameter/app/url", "DataType": "text",'
        ' "LastModifiedDate": "2024-01-01T00:00:00Z", "Name": "/app/url", "Type": "String",'
        ' "Value": "https://example.com", "Version": 1},'
        ' {"DataType": "text", "Name": "/app/token", "Type": "SecureString", "Value": "tok\\"en-42", "Version": 2},'
        ' {"Name": "/app/list", "Type": "StringList", "Value": "a,b,c", "Version": 1}]}'
    )
    secrets = [value for value, kind in found(text, backend) if kind == "secret_value"]
    assert secrets == ['tok\\"en-42']


def test_it_redacts_the_secret_of_get_secret_value_as_text(backend):
    # `--output text`: the top-level scalars sorted by key, tab-separated, no label (awscli/text.py)
    text = (
        "arn:aws:secretsmanager:us-west-2:123456789012:secret:MyTestSecret-a1b2c3\t1523477145.713\tMyTestSecret\t"
        '{"user":"diego","password":"EXAMPLE-PASSWORD"}\tEXAMPLE1-90ab-cdef-fedc-ba987SECRET1\n'
        "VERSIONSTAGES\tAWSCURRENT\n"
    )
    assert masked(text, backend) == (
        "<secret_arn>\t1523477145.713\tMyTestSecret\t<secret_value>\tEXAMPLE1-90ab-cdef-fedc-ba987SECRET1\n"
        "VERSIONSTAGES\tAWSCURRENT\n"
    )


def test_it_redacts_secure_string_parameters_as_text_only(backend):
    text = (
        "PARAMETERS\tarn:aws:ssm:us-east-1:123456789012:parameter/app/env\ttext\t1582155010.2\t/app/env\tString"
        "\tproduction\t1\n"
        "PARAMETERS\tarn:aws:ssm:us-east-1:123456789012:parameter/app/pw\ttext\t2024-05-02T09:14:23.004000+00:00"
        "\t/app/pw\tSecureString\thunter2 with\ttab\t3\r\n"
        "PARAMETER\tarn:aws:ssm:us-east-1:123456789012:parameter/app/key\ttext\t1582155010.2\t/app/key\tSecureString"
        "\tsk_live_EXAMPLE\t12"
    )
    secrets = [value for value, kind in found(text, backend) if kind == "secret_value"]
    assert secrets == ["hunter2 with\ttab", "sk_live_EXAMPLE"]


@pytest.mark.parametrize(
    "text",
    [
        '{"Tags": [{"Key": "Environment", "Value": "production"}]}',
        '{"Parameter": {"Name": "/app/env", "Type": "String", "Value": "production", "Version": 1}}',
        "The SecretString field holds the secret; read it with get-secret-value.",
        'Set "SecretString" in the request, or "SecretBinary" for binary data.',
        '{"Type": "SecureString"}, {"Key": "env", "Value": "production"}',  # another object
        '{"Type": "SecureString", "Tags": {"Value": "production"}}',  # a nested object
        '"SecretString": ""',
        "PARAMETERS\tSecureString\tproduction",  # no version after it: not a parameter record
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-a1b2c3\tis the secret we rotate\n",
    ],
)
def test_ordinary_values_and_prose_are_left_alone(backend, text):
    assert [kind for _, kind in found(text, backend) if kind == "secret_value"] == []


def test_an_unterminated_secret_string_is_not_taken(backend):
    assert found('"SecretString": "abc\n"Name": "x"', backend) == []


@pytest.mark.parametrize(
    ("unit", "expected"),
    [
        ('"SecretString":"', {}),
        ('"SecretString": "\\', {"secret_value": 5555}),
        ('"SecretString":"' + "a\\\\" * 20, {"secret_value": 1315}),
        ('"Type":"SecureString",', {}),
        ('"Type": "SecureString", "Name": "x", ', {}),
        ('"Type":"SecureString","Value":"\\', {"secret_value": 3125}),
        ("PARAMETERS\t", {}),
        ("\nPARAMETERS\tx\tSecureString\t" + "a\t" * 20, {}),
        (
            "\narn:aws:secretsmanager:us-east-1:123456789012:secret:x\t2024-01-01\tn\t" + "v\t" * 20,
            {"secret_arn": 1834},
        ),
    ],
)
def test_hostile_inputs_for_the_secret_rules_are_scanned_to_the_end_with_the_right_answer(backend, unit, expected):
    text = unit * (200_000 // len(unit))
    assert Counter(match.kind for match in engine.scan(text, backend=backend)) == expected


def test_both_backends_agree_on_secret_values():
    pieces = [
        '"SecretString": "',
        '"SecretBinary":"',
        '"Type": "SecureString", ',
        '"Value": "',
        '"Name": "x", ',
        "\\",
        '\\"',
        '"',
        "abc",
        "\n",
        "\t",
        "PARAMETERS\tarn:aws:ssm:us-east-1:123456789012:parameter/p\t",
        "SecureString\t",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:s-a1b2c3\t2024-01-01\t",
        "7",
        "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111",
        ", ",
        "{",
        "}",
    ]
    assert_backends_agree(pieces, seed=11, texts=300, most=30)
