"""The token grammar: formatting, finding (full grammar only), escaped forms, redaction markers."""

import json
import random
from concurrent.futures import ThreadPoolExecutor

import pytest

from masking.engine import KINDS
from masking.tokens import (
    TOKEN_MAX_LEN,
    canonical,
    canonical_json_token,
    find_tokens,
    format_token,
    is_valid_prefix,
    redaction_marker,
    split_json_tokens,
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


# --- tokens in JSON bytes ---------------------------------------------------------------------------

FRAGMENTS = [
    "AWS_EC2_001", "AWS_VPC_002", r"AWS\_EC2\_003", r"AWS\\_S3_BUCKET_004", "AWS_EC2_0", "AWS", "A", "x", "_",
    "1", "\n", "\t", "\\", "\\n", '"', "é", " ", "\x01", "日", "n", "u00e9", "{", ":",
]  # fmt: skip


def json_tokens(document: bytes) -> list[str]:
    return [canonical_json_token(token) for token in split_json_tokens(document)[1::2]]


def test_tokens_in_json_bytes_are_the_tokens_of_its_decoded_strings_whatever_the_writer_escapes():
    rng = random.Random(5)
    for _ in range(3000):
        texts = ["".join(rng.choices(FRAGMENTS, k=rng.randint(0, 12))) for _ in range(2)]
        document = {"content": [{"type": "text", "text": texts[0]}], "note": texts[1]}
        expected = tokens(texts[0]) + tokens(texts[1])
        for raw in (json.dumps(document).encode(), json.dumps(document, ensure_ascii=False).encode()):
            assert json_tokens(raw) == expected, raw


def test_restoring_json_bytes_piece_by_piece_gives_the_document_restored_text_by_text():
    rng = random.Random(7)
    for _ in range(1000):
        text = "".join(rng.choices(FRAGMENTS, k=rng.randint(0, 12)))
        parts = split_json_tokens(json.dumps({"text": text}).encode())
        for i in range(1, len(parts), 2):
            parts[i] = json.dumps(f'<"{canonical_json_token(parts[i])}">').encode()[1:-1]
        expected = "".join(f'<"{canonical(p)}">' if i % 2 else p for i, p in enumerate(split_tokens(text)))
        assert json.loads(b"".join(parts)) == {"text": expected}


def test_json_bytes_cut_around_tokens_join_back_to_the_same_bytes():
    raw = b'{"a":"see AWS_EC2_001.\\nAWS_VPC_002, xAWS_EC2_003 AWS_EC2_004AWS_EC2_005 \\\\nAWS_EC2_006"}'

    parts = split_json_tokens(raw)

    assert b"".join(parts) == raw
    assert parts[1::2] == [b"AWS_EC2_001", b"AWS_VPC_002"]


def test_a_json_escape_of_an_ascii_letter_leaves_the_bytes_undecided():
    assert split_json_tokens(b'{"a":"\\u0041WS_EC2_001"}') is None
    assert split_json_tokens(b'{"a":"AWS_EC2_001\\u0041"}') is None
    assert json_tokens(b'{"a":"\\u00e9AWS_EC2_001\\u00e9"}') == ["AWS_EC2_001"]
    assert json_tokens(b'{"a":"\\\\u00e9AWS_EC2_001"}') == []


def test_the_escapes_before_a_token_are_read_whatever_backslashes_precede_them():
    raw = rb'{"a":"\\\nAWS_EC2_001 \\nAWS_EC2_002 \\\u00e9AWS_EC2_003 \u00e9AWS_EC2_004 \tAWS_EC2_005"}'

    parts = split_json_tokens(raw)

    assert b"".join(parts) == raw
    expected = ["AWS_EC2_001", "AWS_EC2_003", "AWS_EC2_004", "AWS_EC2_005"]
    assert json_tokens(raw) == tokens(json.loads(raw)["a"]) == expected


def test_bytes_that_are_not_json_are_cut_as_they_always_were():
    # \u before four characters that are not hex digits: the token starts at the first "AWS" that
    # can start one, as when every "AWS" was a candidate and the character before was checked next.
    raw = b'{"a":"\\uAWS_AWS_A_B_C_D_001 xAWS_EC2_001 AWS_EC2_002"}'

    assert split_json_tokens(raw) == [b'{"a":"\\uAWS_', b"AWS_A_B_C_D_001", b" xAWS_EC2_001 ", b"AWS_EC2_002", b'"}']


@pytest.mark.parametrize(
    "unit", [b"xAWS_EC2_001 ", b"\\\\nAWS_EC2_001", b"AWS_A_", b"_AWS", b"\\\\\\\\nAWS_A_B_C_D_001"]
)
def test_a_megabyte_of_tokens_that_are_parts_of_words_is_one_piece_at_once(unit):
    document = b'{"a":"' + unit * (1_000_000 // len(unit)) + b'"}'

    assert split_json_tokens(document) == [document]  # no piece joined again and again: linear time


def test_each_run_of_tokens_that_are_parts_of_words_joins_the_bytes_around_it():
    raw = b'{"a":"AWS_EC2_001 \\\\nAWS_EC2_002 \\\\nAWS_EC2_003 AWS_EC2_004 \\\\nAWS_EC2_005 AWS_EC2_006"}'

    parts = split_json_tokens(raw)

    assert parts[1::2] == [b"AWS_EC2_001", b"AWS_EC2_004", b"AWS_EC2_006"]
    assert parts[2] == b" \\\\nAWS_EC2_002 \\\\nAWS_EC2_003 "
    assert b"".join(parts) == raw


def test_json_bytes_are_cut_alike_in_threads_at_once():
    documents = [b'{"a":"' + b"x \\u00e9 AWS_EC2_001 " * 20_000 + end + b'"}' for end in (b"", b"\\u0041")]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(split_json_tokens, documents * 8))

    assert results == [split_json_tokens(documents[0]), None] * 8
    assert len(results[0]) == 40_001
