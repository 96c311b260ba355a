import json

from masking.sse import SSEEvent, SSEParser, decode_event, encode_json, json_string, last_char, loads


def test_the_parser_yields_the_same_events_wherever_the_bytes_are_cut():
    raw = 'event: a\ndata: {"x": "ü🚀"}\n\n: a comment\nevent: b\r\ndata: one\r\ndata: two\r\n\r\n'.encode()
    expected = [("a", '{"x": "ü🚀"}'), ("b", "one\ntwo")]
    for cut in range(len(raw) + 1):
        parser = SSEParser()
        events = parser.feed(raw[:cut]) + parser.feed(raw[cut:]) + parser.feed(b"", final=True)
        assert [(e.event, e.data) for e in events] == expected, cut


def test_the_parser_accepts_one_byte_at_a_time_with_bare_carriage_returns():
    raw = "event: a\rdata: é\r\revent: b\rdata: 2\r\r".encode()
    parser = SSEParser()
    events = [event for i in range(len(raw)) for event in parser.feed(raw[i : i + 1])]
    events += parser.feed(b"", final=True)
    assert [(e.event, e.data) for e in events] == [("a", "é"), ("b", "2")]


def test_an_event_decoded_from_its_bytes_has_its_line_ends_normalised_and_comments_are_none():
    assert decode_event(b"event: a\r\ndata: x\r\ndata: y\r\n\r\n", cr=True) == SSEEvent("a", "x\ny")
    assert decode_event(b"event: a\ndata: \xc3\n\n") is None  # no UTF-8
    assert decode_event(b": a comment\n\n") is None


def test_encoded_json_events_are_one_line_and_read_back_the_same():
    payload = {"type": "x", "text": "line\nend ü", "n": 2**70}  # past 64 bits: the standard encoder
    raw = encode_json("x", payload)
    assert raw.startswith(b"event: x\ndata: {") and raw.endswith(b"}\n\n") and raw.count(b"\n") == 3
    [event] = SSEParser().feed(raw, final=True)
    assert (event.event, json.loads(event.data)) == ("x", payload)
    assert encode_json(None, {"a": "\ud800"}) == b'data: {"a":"\\ud800"}\n\n'
    assert loads('{"a": NaN}')["a"] != 0  # orjson refuses NaN: the standard parser reads it


def test_the_last_character_of_a_json_string_is_read_from_its_bytes():
    for text in ["ab", "aü", "a🚀", 'a"', "a\\", "a\n", "a\\n", "a\t", "x/"]:
        raw = json.dumps(text, ensure_ascii=False).encode()
        assert last_char(raw, 1, len(raw) - 1) == text[-1], text


def test_a_json_string_is_read_from_its_bytes_with_its_escapes_and_anything_else_is_none():
    for text in ["", "ab", 'say "hi"\n', "ü 日本 🚀", "C:\\tmp\t/", "AWS_EC2_001"]:
        for ensure_ascii in (False, True):
            raw = b"xx" + json.dumps(text, ensure_ascii=ensure_ascii).encode() + b"}}"
            assert json_string(raw, 2, len(raw) - 2) == text, (text, ensure_ascii)
    # An unescaped quote or line end, an escaped closing quote, a bad escape, a lone surrogate, no
    # UTF-8, no string, two strings, no closing quote, nothing.
    for raw in [b'"a"b"', b'"a\nb"', b'"a\\"', b'"a\\x"', b'"\\ud800"', b'"\xc3"', b"12", b'"a" "b"', b'"', b""]:
        assert json_string(raw, 0, len(raw)) is None, raw
