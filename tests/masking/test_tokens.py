"""The token grammar: formatting, finding (full grammar only), escaped forms, redaction markers."""

import pytest

from masking.engine import KINDS
from masking.tokens import (
    TOKEN_MAX_LEN,
    canonical,
    find_tokens,
    format_token,
    is_valid_prefix,
    redaction_marker,
    split_tokens,
)


def tokens(text: str) -> list[str]:
    return [match.token for match in find_tokens(text)]


def test_it_formats_tokens_zero_padded_and_growing_past_999():
    assert format_token("EC2", 1) == "AWS_EC2_001"
    assert format_token("IAM_ROLE", 42) == "AWS_IAM_ROLE_042"
    assert format_token("VPC", 1000) == "AWS_VPC_1000"


@pytest.mark.parametrize(("prefix", "number"), [("ec2", 1), ("EC2_", 1), ("EC2", 0), ("EC2", 10**12), ("1X", 5)])
def test_it_refuses_to_format_outside_the_grammar(prefix, number):
    with pytest.raises(ValueError):
        format_token(prefix, number)


def test_every_built_in_prefix_fits_the_grammar():
    assert all(is_valid_prefix(kind.prefix) for kind in KINDS.values())
    assert len({kind.prefix for kind in KINDS.values()}) == len(KINDS)


def test_it_finds_tokens_with_their_positions():
    text = "AWS_EC2_001 in AWS_VPC_002."
    assert [(m.start, m.end, m.token) for m in find_tokens(text)] == [(0, 11, "AWS_EC2_001"), (15, 26, "AWS_VPC_002")]


def test_a_shorter_token_is_never_found_inside_a_longer_one():
    assert tokens("AWS_EC2_1000 and AWS_EC2_100") == ["AWS_EC2_1000", "AWS_EC2_100"]
    assert tokens("AWS_EC2_1000x AWS_EC2_100_") == []


def test_it_finds_multi_word_prefixes():
    assert tokens("AWS_IAM_ROLE_001 AWS_S3_BUCKET_010 AWS_CLOUDFRONT_HOST_003") == [
        "AWS_IAM_ROLE_001",
        "AWS_S3_BUCKET_010",
        "AWS_CLOUDFRONT_HOST_003",
    ]


def test_it_tolerates_markdown_escaped_underscores_and_their_json_escaping():
    found = find_tokens(r"see AWS\_EC2\_001 and AWS\\_IAM\\_ROLE\\_002")
    assert [m.token for m in found] == ["AWS_EC2_001", "AWS_IAM_ROLE_002"]
    assert found[0].start == 4 and found[0].end == 4 + len(r"AWS\_EC2\_001")


@pytest.mark.parametrize(
    "text", ["AWS_EC2_01", "AWS_EC2", "AWS__EC2_001", "aws_ec2_001", "XAWS_EC2_001", "AWS_EC2_REDACTED", "AWS_001"]
)
def test_it_ignores_what_is_not_a_token(text):
    assert tokens(text) == []


def test_redaction_markers_are_never_tokens():
    marker = redaction_marker("SECRET_KEY")
    assert marker == "AWS_SECRET_KEY_REDACTED"
    assert tokens(f"key {marker} here") == []


def test_token_max_len_bounds_every_token_find_tokens_can_return():
    longest = "AWS" + "\\\\_ABCDEFGHIJKL" * 4 + "\\\\_" + "9" * 12
    (match,) = find_tokens(longest)
    assert match.end - match.start == len(longest) == TOKEN_MAX_LEN
    assert tokens(longest.replace("9" * 12, "9" * 13)) == []


def test_split_tokens_cuts_a_text_around_its_tokens_as_written():
    text = r"AWS_EC2_001 then AWS\_VPC\_002, not XAWS_EC2_003 nor AWS_EC2_REDACTED; AWS_EC2_001."

    parts = split_tokens(text)

    assert parts[1::2] == ["AWS_EC2_001", r"AWS\_VPC\_002", "AWS_EC2_001"]
    assert "".join(parts) == text
    assert [canonical(token) for token in parts[1::2]] == ["AWS_EC2_001", "AWS_VPC_002", "AWS_EC2_001"]


def test_a_text_without_tokens_is_one_piece():
    assert split_tokens("AWS docs, AWS_ and AWS_EC2_01") == ["AWS docs, AWS_ and AWS_EC2_01"]


def test_split_tokens_agrees_with_find_tokens_on_what_a_token_is():
    text = "AWS_EC2_001x AWS_EC2_001 _AWS_EC2_002 (AWS_IAM_ROLE_1234) AWS_EC2_01 AWS\\_S3\\_007 " * 3

    assert [canonical(token) for token in split_tokens(text)[1::2]] == [match.token for match in find_tokens(text)]
