"""The C passes (masking/_restore.c) give what the Python they stand in for gives: a JSON answer
restored from the request's tokens (masking.answers.restore_from_python), wherever the C pass answers
at all, and a stream's run of plain text deltas (masking.streaming.plain_run_by_regex)."""

import random
import shutil
from collections import Counter

import pytest

from masking import answers, streaming

native = pytest.mark.skipif(answers._native_restore is None, reason="masking._restore is not built")

TABLE = {
    b"AWS_EC2_001": b"i-0123456789abcdef0",
    b"AWS_VPC_002": b"vpc-0a1b2c3d4e5f67890",
    b"AWS_S3_BUCKET_003": b'my\\"odd\\\\bucket',
    b"AWS_IAM_ROLE_ARN_004": "arn:aws:iam::123456789012:role/ünïcödé".encode(),
}
KINDS = {b"AWS_EC2_001": "ec2_instance", b"AWS_VPC_002": "vpc", b"AWS_S3_BUCKET_003": "s3_bucket"}
KINDS[b"AWS_IAM_ROLE_ARN_004"] = "iam_role_arn"
# Pieces that meet at every boundary the grammar cares about: tokens known and unknown, near-tokens,
# JSON escapes before and inside tokens (control letters, \u escapes, escaped backslashes and
# underscores), word characters, non-ASCII text, quotes.
PIECES = [
    *(token.decode() for token in TABLE),
    "AWS_EC2_999",
    "AWS_REGION",
    "AWS",
    "AWS_",
    "AWS_EC2_",
    "AWS_EC2_12",
    "AWS_EC2_0012345678901",
    "AWS_A_B_C_D_E_001",
    "AWS_ABCDEFGHIJKLM_001",
    "AWS_EC2_001A",
    "AWS\\\\_EC2\\\\_001",
    "AWS\\\\\\\\_VPC\\\\\\\\_002",
    "AWS_EC2\\\\_001",
    "\\n",
    "\\\\n",
    "\\\\\\n",
    "\\t",
    "\\b",
    "\\u00e9",
    "\\u00E9",
    "\\u0041",
    "\\\\u00e9",
    "\\u12",
    '\\"',
    "\\\\",
    "x",
    "n",
    "_",
    "9",
    " ",
    "é",
    "日本",
    '"',
    ":",
]


def generated(seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    bodies = []
    for _ in range(count):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 12)))
        bodies.append(('{"type":"text","text":"' + text + '"}').encode() if rng.random() < 0.7 else text.encode())
    return bodies


@native
def test_the_c_pass_restores_what_the_python_pass_restores_wherever_it_answers():
    answered = 0
    for body in generated(seed=5, count=20_000):
        expected = answers.restore_from_python(body, TABLE)
        got = answers._native_restore(body, TABLE)
        if got is not None:
            answered += 1
            assert expected is not None and got == expected, body
    assert answered > 5_000  # the usual answers take the C pass


@native
def test_with_the_kinds_both_passes_count_the_tokens_by_kind_instead_of_listing_them():
    answered = 0
    for body in generated(seed=6, count=20_000):
        listed = answers.restore_from_python(body, TABLE)
        expected = answers.restore_from_python(body, TABLE, KINDS)
        assert (expected is None) == (listed is None), body
        if expected is not None:
            assert expected == (listed[0], dict(Counter(KINDS[token] for token in listed[1]))), body
        got = answers._native_restore(body, TABLE, KINDS)
        assert (got is None) == (answers._native_restore(body, TABLE) is None), body
        if got is not None:
            answered += 1
            assert got == expected, body
    assert answered > 5_000


@native
def test_a_token_whose_kind_is_not_given_is_left_to_the_general_path():
    body = b'{"text":"AWS_EC2_001 in AWS_VPC_002"}'
    kinds = {b"AWS_EC2_001": "ec2_instance"}
    assert answers._native_restore(body, TABLE, kinds) is None
    assert answers.restore_from_python(body, TABLE, kinds) is None
    assert answers._native_restore(body, TABLE, KINDS)[1] == {"ec2_instance": 1, "vpc": 1}


@native
@pytest.mark.parametrize(
    "body",
    [
        b'{"text":"AWS_EC2_001 runs in\\nAWS_VPC_002, AWS_EC2_001."}',
        b'{"text":"no tokens at all"}',
        b'{"text":"AWS_REGION=eu-west-1\\nAWS_EC2_001"}',
        "AWS_IAM_ROLE_ARN_004 and ünïcödé".encode(),
    ],
)
def test_the_usual_answers_take_the_c_pass(body):
    assert answers._native_restore(body, TABLE) is not None
    assert answers._native_restore(body, TABLE) == answers.restore_from_python(body, TABLE)


@native
@pytest.mark.parametrize(
    "body",
    [
        b'{"text":"AWS_EC2_999"}',  # not one of the request's tokens: looked up
        b'{"text":"\\u0041WS_EC2_001"}',  # an escaped letter could spell a token
        b'{"text":"\\u00e9AWS_EC2_001"}',  # a \\u escape right before a token
        b'{"text":"AWS\\\\_EC2\\\\_001"}',  # a Markdown-escaped underscore
    ],
)
def test_what_the_bytes_alone_do_not_settle_is_left_to_the_general_path(body):
    assert answers._native_restore(body, TABLE) is None


@native
@pytest.mark.parametrize("unit", [b"AWS", b"AWS_", b"AWS_A", b"AWS_EC2_001", b"\\\\", b"\\nAWS_A_B_C_D_E"])
def test_hostile_answers_are_read_to_the_end_with_the_right_answer(unit):
    body = unit * (1_000_000 // len(unit))
    assert answers._native_restore(body, TABLE) == answers.restore_from_python(body, TABLE)
    assert answers._native_restore(body, TABLE, KINDS) == answers.restore_from_python(body, TABLE, KINDS)


def test_the_c_pass_is_built_wherever_a_c_compiler_is():
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler here: the Python pass is used")
    assert answers._native_restore is not None, "run scripts/build_speedups.py (make run / make test do)"


# --- streams: runs of plain text deltas --------------------------------------------------------------

PREFIX = (
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"'
)
DELTA_TEXTS = [
    "",
    "plain words ",
    "ünïcödé ✓ 日本語",
    'an escaped \\" quote',
    "a newline\\n and a tab\\t",
    "a backslash \\\\ ",
    "\\u00e9 is a \\u escape",
    "ends in A",
    "ends in AW",
    "AWS_EC2_001 a token",
    "an AWS mention",
    "A W S apart",
    "AWAY and AWARE",
    "A",
    "AW",
    'raw " quote',
    "raw \n line",
]


def stream_bytes(rng: random.Random) -> bytes:
    events = []
    for _ in range(rng.randint(1, 12)):
        if rng.random() < 0.1:
            events.append(b'event: ping\ndata: {"type": "ping"}\n\n')
        else:
            events.append(PREFIX + rng.choice(DELTA_TEXTS).encode() + b'"}}\n\n')
    data = b"".join(events)
    return data[: rng.randint(min(len(PREFIX), len(data)), len(data))] if rng.random() < 0.3 else data  # cut anywhere


@native
def test_the_c_pass_reads_the_same_runs_of_plain_deltas_as_the_regex():
    rng = random.Random(11)
    pattern = streaming._run_of(PREFIX)
    found = 0
    for _ in range(20_000):
        buf = stream_bytes(rng)
        start = len(PREFIX)
        got = streaming._c_plain_run(buf, start, PREFIX)
        assert got == streaming.plain_run_by_regex(buf, start, pattern), buf
        found += got is not None
    assert found > 2_000


@native
@pytest.mark.parametrize("unit", [b"A", b"\\\\", b"x" * 40, b"AW"])
def test_a_long_delta_is_read_to_its_end(unit):
    buf = PREFIX + unit * (1_000_000 // len(unit)) + b'"}}\n\n'
    pattern = streaming._run_of(PREFIX)
    assert streaming._c_plain_run(buf, len(PREFIX), PREFIX) == streaming.plain_run_by_regex(buf, len(PREFIX), pattern)


@native
def test_the_c_delta_pass_takes_exactly_the_valid_utf8_that_the_python_path_reads():
    rng = random.Random(3)
    some_bytes = [0x41, 0x20, 0xC3, 0xA9, 0xE2, 0x9C, 0x93, 0xED, 0xA0, 0x80, 0xF0, 0x9F, 0x98, 0xF4, 0x90, 0xBF, 0xC0]
    some_bytes += [0xF5, 0xE0, 0xC2]
    for _ in range(50_000):
        text = bytes(rng.choice(some_bytes) for _ in range(rng.randint(1, 8))) + b" ."
        try:
            text.decode("utf-8")
        except UnicodeDecodeError:
            valid = False
        else:
            valid = True
        assert (streaming._c_restore_delta(text, 0, len(text), {}, False) is not None) == valid, text
