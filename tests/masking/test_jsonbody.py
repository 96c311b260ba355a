import json

import pytest

from masking import jsonbody
from masking.errors import InvalidPayload


@pytest.mark.parametrize(
    "body",
    [b'{"n": 98765432109876543210}', b'{"n": -9223372036854775809}', b'{"n": NaN}', b'"\\ud800"', b'"\xff"'],
)
def test_orjson_is_not_trusted_with_what_it_would_read_inexactly_or_refuse(body):
    assert jsonbody.fast_loads(body) is None


def test_an_ordinary_body_is_read_by_orjson():
    assert jsonbody.fast_loads('{"text": "ünï 日本 i-0123456789abcdef0", "n": 1234567890123456}'.encode()) == {
        "text": "ünï 日本 i-0123456789abcdef0",
        "n": 1234567890123456,
    }


@pytest.mark.parametrize("number", ["98765432109876543210987654321", "-9223372036854775809", "NaN", "-Infinity"])
def test_a_body_goes_back_meaning_exactly_what_the_client_wrote(number):
    body = f'{{"n": {number}, "text": "x"}}'.encode()

    payload, finite = jsonbody.parse(body)

    assert jsonbody.dump(payload, finite) == f'{{"n":{number},"text":"x"}}'.encode()


def test_a_lone_surrogate_stays_escaped_as_the_client_sent_it():
    payload, finite = jsonbody.parse(b'{"text": "\\ud800 x"}')

    assert jsonbody.dump(payload, finite) == b'{"text":"\\ud800 x"}'


@pytest.mark.parametrize(
    ("body", "reason"), [(b'{"a": "\xff"}', "not valid UTF-8"), (b'{"a": ', "not valid JSON"), (b"", "not valid JSON")]
)
def test_a_body_that_cannot_be_read_is_refused_saying_why(body, reason):
    with pytest.raises(InvalidPayload, match=reason):
        jsonbody.parse(body)


def test_dump_writes_compact_utf8_like_the_standard_encoder():
    payload = {"a": [1, 2.5, None, True], "t": '日本 "q" \\ \n'}

    assert jsonbody.dump(payload) == json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def test_a_huge_number_deep_inside_a_tool_input_is_still_noticed():
    body = b'{"messages": [{"content": [{"type": "tool_use", "input": {"a": [1, {"b": 98765432109876543210}]}}]}]}'

    assert jsonbody.fast_loads(body) is None
    payload, finite = jsonbody.parse(body)
    assert b"98765432109876543210" in jsonbody.dump(payload, finite)


# --- long strings read aside (a conversation resends its earlier turns byte for byte) -----------------

LONG = 'Request: the fleet\'s output, ünïcödé ✓ 日本語, "quoted", back\\slash, tab\t, line\n. ' * 40
native = pytest.mark.skipif(jsonbody._long_values is None, reason="masking._restore is not built")


def generated_bodies(seed: int, count: int) -> list[bytes]:
    """JSON bodies mixing long and short strings, as values and as keys, escapes written every way
    (ensure_ascii or not, \\/ and \\u escapes), nesting, numbers, and whitespace."""
    import random

    rng = random.Random(seed)
    pieces = [LONG, LONG[:1100], "short", "", "AWS_EC2_001", "\u2028", "x" * 1030, '\\"' * 600, "\\" * 1200]

    def value(depth):
        roll = rng.random()
        if depth > 3 or roll < 0.5:
            return rng.choice(pieces + [1, 2.5, None, True, -(2**63)])
        if roll < 0.75:
            return [value(depth + 1) for _ in range(rng.randint(0, 4))]
        return {rng.choice(pieces): value(depth + 1) for _ in range(rng.randint(0, 4))}

    bodies = []
    for _ in range(count):
        document = {"model": "m", "messages": [{"role": "user", "content": value(0)}], "system": value(1)}
        text = json.dumps(document, ensure_ascii=rng.random() < 0.5, indent=rng.choice([None, 1]))
        if rng.random() < 0.3:
            text = text.replace("/", "\\/").replace(" fleet", " \\u0066leet")  # escapes the encoder never writes
        bodies.append(text.encode())
    return bodies


@native
def test_a_body_with_long_strings_reads_exactly_as_the_standard_parser_reads_it_every_time():
    jsonbody.read_lately.clear()
    read_aside = 0
    for body in generated_bodies(seed=3, count=600) * 2:  # the second time, the long strings were read lately
        expected = json.loads(body)
        assert jsonbody.parse(body) == (expected, True), body[:200]
        if jsonbody._long_values(body, jsonbody.LONG_STRING_BYTES):  # not parsed whole as a fallback:
            assert jsonbody._read_aside(body) == expected, body[:200]  # read aside, and right
            read_aside += 1
    assert read_aside > 500 and len(jsonbody.read_lately) > 0


@native
def test_a_long_string_read_lately_is_not_decoded_again():
    body = json.dumps({"messages": [{"role": "user", "content": LONG}], "other": LONG[:1100]}).encode()

    first, _ = jsonbody.parse(body)
    again, _ = jsonbody.parse(bytes(bytearray(body)))  # the same bytes, another object

    assert again == first
    assert again["messages"][0]["content"] is first["messages"][0]["content"]


@native
def test_long_values_finds_values_never_keys_and_reads_escaped_quotes_right():
    body = json.dumps({"k" * 1100: "v" * 1100, "q": '\\"' * 600 + '"'}).encode()

    spans = jsonbody._long_values(body, 1024)

    assert [json.loads(b'"' + body[start:end] + b'"') for start, end in spans] == ["v" * 1100, '\\"' * 600 + '"']


@native
@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"a": "' + b"x" * 2000 + b'\xff"}', "not valid UTF-8"),
        (b'{"a": "' + b"x" * 2000 + b'\n"}', "not valid JSON"),  # a raw line break inside a string
        (b'{"a": "' + b"x" * 2000 + b'"', "not valid JSON"),
        (b'{"a": "' + b"x" * 2000, "not valid JSON"),
    ],
)
def test_a_bad_long_string_is_refused_as_the_whole_body_would_be(body, reason):
    with pytest.raises(InvalidPayload, match=reason):
        jsonbody.parse(body)
    with pytest.raises(InvalidPayload, match=reason):
        jsonbody.parse(body)  # never remembered as read


@native
def test_a_long_string_with_a_lone_surrogate_goes_back_escaped_as_the_client_sent_it():
    body = b'{"text": "' + b"x" * 2000 + b'\\ud800"}'

    payload, finite = jsonbody.parse(body)

    assert jsonbody.dump(payload, finite) == b'{"text":"' + b"x" * 2000 + b'\\ud800"}'


@native
def test_a_client_string_that_looks_like_a_placeholder_is_left_alone():
    looks_like = "\x00" + "0" * 16 + ":0"
    body = json.dumps({"a": LONG, "b": looks_like, "c": "\x00" + jsonbody._PLACEHOLDER + ":9"}).encode()

    assert jsonbody.parse(body)[0] == json.loads(body)


@native
@pytest.mark.parametrize("unit", [b'"', b"\\", b'\\"', b'"' + b"a" * 1100 + b'":', b'"' + b"\\\\" * 600 + b'",'])
def test_hostile_bodies_are_read_through_once(unit):
    body = b"[" + unit * (1_000_000 // len(unit)) + b"]"

    jsonbody._long_values(body, 1024)  # linear: each quote found once, each backslash read once
    with pytest.raises(InvalidPayload):
        jsonbody.parse(body)
