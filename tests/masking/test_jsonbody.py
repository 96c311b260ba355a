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
