"""Server-sent events (`text/event-stream`): parsing bytes that arrive in any pieces, and encoding.

An event ends at an empty line; lines end in LF, CRLF or a bare CR; a line starting with ":" is a
comment; the `data` lines of one event are joined with line feeds. Nothing here knows about tokens:
`masking.streaming` builds on it to restore them in a streamed answer, reading the usual events in
place (`json_string`, and `last_char` of a JSON string in their bytes)."""

import codecs
import json
import re
from dataclasses import dataclass

import orjson

_UNESCAPED = {ord("n"): "\n", ord("t"): "\t", ord("r"): "\r", ord("b"): "\b", ord("f"): "\f", ord("/"): "/"}
_ASCII = [chr(byte) for byte in range(0x80)]
# The end of an event in a stream with carriage returns: two line ends (CRLF, CR or LF) in a row. A
# CR that may be the first half of a CRLF split across chunks does not end a line yet.
EVENT_END = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r|\n)")


@dataclass(slots=True)
class SSEEvent:
    event: str | None
    data: str

    def encode(self) -> bytes:
        head = f"event: {self.event}\n" if self.event is not None else ""
        if "\n" not in self.data:  # the usual one-line JSON
            return f"{head}data: {self.data}\n\n".encode()
        data = "".join(f"data: {line}\n" for line in self.data.split("\n"))
        return f"{head}{data}\n".encode()


class SSEParser:
    """Incremental `text/event-stream` parser; feed it bytes as they arrive, in any pieces."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._pending = ""

    def feed(self, chunk: bytes, final: bool = False) -> list[SSEEvent]:
        text = self._pending + self._decoder.decode(chunk, final)
        held_cr = text.endswith("\r") and not final  # maybe the first half of a \r\n split across chunks
        if held_cr:
            text = text[:-1]
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        blocks = text.split("\n\n")  # an event ends at an empty line
        self._pending = ("" if final else blocks.pop()) + ("\r" if held_cr else "")
        return [event for block in blocks if (event := event_of(block))]


def event_of(block: str) -> SSEEvent | None:
    """The event of one block of lines (LF line ends, no empty line), or None for comments only."""
    if block.startswith("event: "):  # the usual shape, "event: <name>\ndata: <one line>", read directly
        end = block.find("\n")
        if end > 0 and block.startswith("data: ", end + 1) and block.find("\n", end + 1) == -1:
            return SSEEvent(block[7:end], block[end + 7 :])
    name, data = None, []
    for line in block.split("\n"):
        if not line or line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
    if not data and name is None:
        return None
    return SSEEvent(name, "\n".join(data))


def decode_event(raw: bytes, cr: bool = False) -> SSEEvent | None:
    """The event of one event's bytes (`cr`: lines may end in CRLF or CR), or None when they are
    comments and empty lines only, or no UTF-8."""
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        return None
    if cr:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return event_of(text.strip("\n"))


def encode_json(event: str | None, payload) -> bytes:
    """An event whose data is `payload` as compact JSON on one line, UTF-8 as it is."""
    try:
        data = orjson.dumps(payload)  # one line: orjson escapes line ends
    except orjson.JSONEncodeError:  # a lone surrogate or a huge integer: the standard encoder
        try:
            return SSEEvent(event, json.dumps(payload, ensure_ascii=False, separators=(",", ":"))).encode()
        except UnicodeEncodeError:  # a lone surrogate is no UTF-8: every non-ASCII character escaped
            return SSEEvent(event, json.dumps(payload, separators=(",", ":"))).encode()
    return (b"data: " if event is None else b"event: " + event.encode() + b"\ndata: ") + data + b"\n\n"


def loads(data: str | bytes):
    """Event data as JSON: orjson (several times faster on the hundreds of small delta events of an
    answer), or the standard parser for what orjson refuses (NaN, lone surrogates). orjson reads an
    integer past 64 bits as a float: events that may carry arbitrary numbers are parsed again with
    `json.loads` before they are encoded again."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def last_char(buf: bytes, start: int, stop: int) -> str:
    """The last character of the JSON string buf[start:stop] (not empty, escapes but no \\u, valid)."""
    last = buf[stop - 1]
    if last >= 0x80:  # the end of a UTF-8 sequence: back to its first byte
        begin = stop - 1
        while begin > start and buf[begin] & 0xC0 == 0x80 and stop - begin < 4:
            begin -= 1
        return buf[begin:stop].decode("utf-8", "replace")[-1]
    if last == 0x22 or last == 0x5C:  # a quote or a backslash is the second half of an escape
        return _ASCII[last]
    if last in _UNESCAPED and buf[stop - 2] == 0x5C:
        backslashes = stop - 1 - len(buf[start : stop - 1].rstrip(b"\\")) - start
        if backslashes % 2:  # the last of an odd run of backslashes escapes this letter
            return _UNESCAPED[last]
    return _ASCII[last]


def json_string(buf: bytes, start: int, stop: int) -> str | None:
    """The JSON string buf[start:stop] (its quotes included), escapes read; None when those bytes
    are no JSON string (an unescaped quote or a line end inside, a bad escape, no UTF-8)."""
    try:
        value = orjson.loads(buf[start:stop])
    except orjson.JSONDecodeError:
        return None
    return value if type(value) is str else None
