"""What holds for every kind: offsets in str characters, order, no overlaps, tokens never re-matched,
both backends agreeing, the backend choice, threads, hostile input."""

import threading

import pytest

from masking import engine
from tests.masking.engine_support import BACKENDS, found, masked

MIXED = (
    '{"Reservations": [{"OwnerId": "123456789012", "Instances": [{"InstanceId": "i-0a1b2c3d4e5f67890",\n'
    '"PrivateIpAddress": "10.0.1.5", "PrivateDnsName": "ip-10-0-1-5.us-west-2.compute.internal",\n'
    '"IamInstanceProfile": {"Arn": "arn:aws:iam::123456789012:instance-profile/web"}}]}]}\n'
    "aws s3 cp s3://prod-backups/x . && docker pull 123456789012.dkr.ecr.us-east-1.amazonaws.com/web\n"
    "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
    "t3.large in us-east-1, kernel 6.1.84-99, at 09:12:44, i-node, sg-rules, https://sts.amazonaws.com\n"
)


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


def test_offsets_are_str_offsets_after_emoji_accents_and_cjk(backend):
    text = "héllo 😀 日本語 i-0123456789abcdef0 — ünïcode 🚀 arn:aws:s3:::bücket-x vpc-12345678 ✓"
    assert found(text, backend) == [
        ("i-0123456789abcdef0", "ec2_instance"),
        ("arn:aws:s3:::b", "s3_arn"),
        ("vpc-12345678", "vpc"),
    ]


def test_a_lone_surrogate_in_the_text_does_not_break_scanning(backend):
    text = "broken \ud800 json then i-0123456789abcdef0"
    assert found(text, backend) == [("i-0123456789abcdef0", "ec2_instance")]


def test_matches_are_ordered_and_never_overlap_and_the_rest_is_unchanged(backend):
    matches = engine.scan(MIXED, backend=backend)
    assert [m.start for m in matches] == sorted(m.start for m in matches)
    assert all(a.end <= b.start for a, b in zip(matches, matches[1:], strict=False))
    rebuilt, position = [], 0
    for match in matches:
        rebuilt += [MIXED[position : match.start], MIXED[match.start : match.end]]
        position = match.end
    assert "".join(rebuilt) + MIXED[position:] == MIXED
    assert masked(MIXED, backend).endswith(
        "t3.large in us-east-1, kernel 6.1.84-99, at 09:12:44, i-node, sg-rules, https://sts.amazonaws.com\n"
    )


def test_both_backends_find_exactly_the_same_spans():
    if len(BACKENDS) < 2:
        pytest.skip("hyperscan is not installed here")
    text = MIXED * 20 + "ﬁ ß " + MIXED
    assert engine.scan(text, backend="hyperscan") == engine.scan(text, backend="python")


@pytest.mark.parametrize(
    "text",
    [
        "AWS_EC2_001",
        "AWS_IAM_ROLE_001 and AWS_ACCOUNT_1000",
        "AWS\\_EC2\\_001",
        "AWS\\\\_S3\\\\_BUCKET\\\\_002",
        "AWS_SECRET_KEY_REDACTED",
        '"Account": "AWS_ACCOUNT_001"',
        "s3://AWS_S3_BUCKET_001/key",
    ],
)
def test_it_never_matches_tokens_or_redaction_markers(backend, text):
    assert found(text, backend) == []


def test_it_masks_identifiers_next_to_tokens(backend):
    assert (
        masked("AWS_EC2_001 runs in vpc-12345678 (AWS_VPC_002)", backend) == "AWS_EC2_001 runs in <vpc> (AWS_VPC_002)"
    )


def test_the_most_specific_kind_wins_at_the_same_place(backend):
    assert found("ip-10-0-1-23.ec2.internal", backend) == [("ip-10-0-1-23.ec2.internal", "ec2_private_dns")]
    assert found("arn:aws:ec2:us-east-1:123456789012:vpc/vpc-12345678", backend) == [
        ("arn:aws:ec2:us-east-1:123456789012:vpc/vpc-12345678", "arn")
    ]


@pytest.mark.parametrize("text", ["", "hello world", "no identifiers here: just words."])
def test_it_returns_nothing_for_text_without_identifiers(backend, text):
    assert engine.scan(text, backend=backend) == []


def test_matches_expose_start_end_and_kind():
    (match,) = engine.scan("i-0123456789abcdef0")
    assert (match.start, match.end, match.kind) == (0, 19, "ec2_instance")
    assert engine.KINDS[match.kind].prefix == "EC2"


def test_the_backend_can_be_forced_from_the_environment(monkeypatch):
    monkeypatch.setenv("MASKING_ENGINE", "python")
    assert engine.default_backend() == "python"
    monkeypatch.setenv("MASKING_ENGINE", "regex-magic")
    with pytest.raises(ValueError, match="MASKING_ENGINE"):
        engine.default_backend()


def test_it_falls_back_to_python_when_hyperscan_is_missing(monkeypatch):
    monkeypatch.delenv("MASKING_ENGINE", raising=False)
    monkeypatch.setattr(engine, "hyperscan", None)
    assert engine.default_backend() == "python"
    assert engine.available_backends() == ("python",)
    assert found("in vpc-12345678", engine.default_backend()) == [("vpc-12345678", "vpc")]


def test_concurrent_scans_from_threads_agree(backend):
    expected = engine.scan(MIXED * 5, backend=backend)
    results, errors = [], []

    def work():
        try:
            for _ in range(20):
                results.append(engine.scan(MIXED * 5, backend=backend) == expected)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(results) == 80 and all(results)


@pytest.mark.parametrize(
    ("unit", "expected_kinds"),
    [
        ("arn:aws:", set()),
        ("a-", set()),
        ("1234567890", set()),
        (":", set()),
        ("ab:", set()),
        ("1.", set()),
        ("i-", set()),
        ("s3://", set()),
        ("account ", set()),
        ("AKIA", set()),
        ("arn:aws:s3:::", {"s3_arn"}),
    ],
)
def test_hostile_input_is_scanned_to_the_end_with_the_right_answer(backend, unit, expected_kinds):
    text = unit * (200_000 // len(unit))
    matches = engine.scan(text, backend=backend)
    assert {m.kind for m in matches} == expected_kinds
    if expected_kinds:  # a run of ARN heads longer than an ARN can be: no head is left unmasked
        assert "arn:aws" not in masked(text, backend)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("sg-abcdefab", "security_group"),
        ("AKIAABCDEFGHIJKLMNOP", "access_key_id"),
        ("Bucket: logs", "s3_bucket"),
        ("dabcdefghijklm.cloudfront.net", "cloudfront_domain"),
        ("secret_key = " + "abcdefghij" * 4, "secret_access_key"),
        ("hosted zone id ZABCDEFGHIJ", "route53_zone"),
        ("FwoGZXIvYXdz" + "abcdefghij" * 3, "session_token"),
    ],
)
def test_the_quick_pre_check_never_hides_an_identifier_without_digits(backend, text, kind):
    assert [k for _, k in found(text, backend)] == [kind]
