"""Restore tokens in a streamed Messages answer (server-sent events) without waiting for its end.

Upstream chunks split events, lines and UTF-8 characters anywhere, and the model splits tokens
across deltas (`AWS_EC` then `2_001`). Each content block keeps back only the tail that could
still become a token (at most a token's length) and sends everything before it at once; the tail
is released as soon as it cannot be a token any more, and at `content_block_stop` at the latest."""

import codecs
import functools
import json
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson

from masking.payload import block_slots, read_slots, response_slots, write_slots
from masking.tokens import TOKEN_MAX_LEN, canonical, split_tokens

Lookup = Callable[[list[str]], Awaitable[dict[str, str | None]]]

_WORD = re.compile(r"[A-Za-z0-9_]")
# Every prefix of a token (Markdown- and JSON-escaped underscores included): a held tail must match.
_TOKEN_PREFIX = re.compile(r"A(?:W(?:S(?:\\{0,2}_[A-Z0-9]+)*(?:\\{0,2}_?)?)?)?")
_RUN_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_\\"  # a token's, escapes too
# Escaped forms are longer than the canonical token: at most two backslashes per underscore.
_MAX_HOLD = 3 * TOKEN_MAX_LEN
_DELTA_FIELDS = {"text_delta": "text", "thinking_delta": "thinking", "input_json_delta": "partial_json"}
_DELTA = "content_block_delta"
_DELTA_HEAD = b"event: content_block_delta\ndata: "  # the usual delta event: this, one JSON line, a blank line
_DATA_AT = len(_DELTA_HEAD)
# The usual delta framing, compact as the Claude API sends it or with spaces as json.dumps writes it:
# index, delta type and text field name fill it in. The text ends the line, then `"}}`.
_DELTA_SHAPES = (
    _DELTA_HEAD + b'{"type":"content_block_delta","index":%d,"delta":{"type":"%s","%s":"',
    _DELTA_HEAD + b'{"type": "content_block_delta", "index": %d, "delta": {"type": "%s", "%s": "',
)
# The text of such an event, if it can go out as it is: no line end; escapes but no \\u (which could
# spell a letter); no "AWS"; not ending in "A" or "AW" (a token's start). The end of the JSON and of
# the event follow it. Possessive: a backslash always starts an escape pair, read left to right.
# _OTHER is [^"\\\n\rA] written as ranges, which the regex engine tests faster.
_OTHER = rb"[\x00-\t\x0b\x0c\x0e-!#-@B-\[\]-\xff]*+"
_PLAIN_TEXT = rb'%s(?:(?:\\["\\/bfnrt]|A(?!WS|W?"))%s)*+' % (_OTHER, _OTHER)
_END = b'"}}\n\n'
_UNESCAPED = {ord("n"): "\n", ord("t"): "\t", ord("r"): "\r", ord("b"): "\b", ord("f"): "\f", ord("/"): "/"}
_ASCII = [chr(byte) for byte in range(0x80)]
# The end of an event in a stream with carriage returns: two line ends (CRLF, CR or LF) in a row. A
# CR that may be the first half of a CRLF split across chunks does not end a line yet.
_EVENT_END = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r|\n)")


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
        return [event for block in blocks if (event := _event_of(block))]


def _event_of(block: str) -> SSEEvent | None:
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


class TokenCache:
    """Originals looked up once per request: each new token costs at most one store round trip."""

    def __init__(self, lookup: Lookup) -> None:
        self._lookup = lookup
        self.known: dict[str, str | None] = {}
        self.restored_counts: Counter[str] = Counter()  # occurrences restored, by token
        self.unresolved_count = 0  # occurrences left as they are
        self._escaped: dict[str, str] = {}  # originals as they are written inside a JSON string

    async def originals(self, tokens: list[str]) -> dict[str, str | None]:
        missing = [t for t in dict.fromkeys(tokens) if t not in self.known]
        if missing:
            found = await self._lookup(missing)  # unknown tokens are absent: remember them as None
            self.known.update({token: found.get(token) for token in missing})
        return self.known

    @property
    def restored(self) -> int:
        return sum(1 for original in self.known.values() if original is not None)

    @property
    def unresolved(self) -> list[str]:
        return [token for token, original in self.known.items() if original is None]

    async def restore(self, text: str, json_escaped: bool = False, before: str = "", after: str = "") -> str:
        """`text` with its tokens replaced; `before` and `after` are its neighbours (token boundaries)."""
        if "AWS" not in text:  # a token restored lies within `text`
            return text
        parts = split_tokens(before + text + after)  # [text, token, text, ..., token, text]
        while len(parts) > 1 and len(parts[0]) < len(before):  # a token starting in `before` is none of text's
            parts[:3] = ["".join(parts[:3])]
        while len(parts) > 1 and len(parts[-1]) < len(after):  # nor one ending in `after`
            parts[-3:] = ["".join(parts[-3:])]
        if len(parts) == 1:
            return text
        parts[0], parts[-1] = parts[0][len(before) :], parts[-1][: len(parts[-1]) - len(after)]
        tokens = [canonical(token) for token in parts[1::2]] if "\\" in text else parts[1::2]
        originals = self.known
        if not all(map(originals.__contains__, tokens)):
            originals = await self.originals(tokens)
        for at, token in enumerate(tokens, 1):
            original = originals.get(token)
            if original is None:
                self.unresolved_count += 1
                continue
            self.restored_counts[token] += 1
            if json_escaped:
                if original not in self._escaped:
                    self._escaped[original] = json.dumps(original, ensure_ascii=False)[1:-1]
                original = self._escaped[original]
            parts[2 * at - 1] = original
        return "".join(parts)


def hold_start(text: str, before: str = "") -> int:
    """Where the tail of `text` that could still grow into a token begins (len(text): nothing to hold)."""
    # Where the trailing run of a token's characters starts, at most _MAX_HOLD back.
    run = max(0, len(text) - _MAX_HOLD, len(text.rstrip(_RUN_CHARS)))
    pos = text.find("A", run)  # usually -1: no "A" in the trailing run
    while pos != -1:
        left = text[pos - 1] if pos else before
        if not (left and _WORD.match(left)) and _TOKEN_PREFIX.fullmatch(text, pos):
            if len(text) - pos - text.count("\\", pos) <= TOKEN_MAX_LEN:
                return pos
        pos = text.find("A", pos + 1)
    return len(text)


def _last_char(buf: bytes, start: int, stop: int) -> str:
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


@functools.lru_cache(maxsize=64)
def _run_of(prefix: bytes) -> re.Pattern:
    """A regex for a plain text and the end of its delta (framed by `prefix`), then for the deltas
    like it that follow: group 1 is the first text, group 2 the last of the others not empty."""
    others = b"(?:%s(?:%s|(%s)%s))*+" % (re.escape(prefix), _END, _PLAIN_TEXT, _END)
    return re.compile(b"(%s)%s%s" % (_PLAIN_TEXT, _END, others))


class _Block:
    __slots__ = ("held", "last", "delta_type")

    def __init__(self) -> None:
        self.held = ""
        self.last = ""  # the last character sent, for the token's left boundary
        self.delta_type: str | None = None


class StreamRestorer:
    """Turns upstream SSE bytes into client SSE bytes with originals restored.

    Events are cut from the bytes at their blank line (a line feed never occurs inside a UTF-8
    character, so a complete event is complete UTF-8). An event that cannot change is relayed as
    the upstream sent it, byte for byte; only an event with something to restore, or a tail to hold
    back, is encoded again. The usual delta ("event: content_block_delta" and one data line) is read
    in place: once one delta of a block is parsed, the next ones (same framing up to the text) are
    relayed without a JSON parse when their text has no \\u escape, no "AWS" and no token start, a
    whole run of them matched by one regex. Other events, and the events of a stream with carriage
    returns (CRLF or CR line ends), take the general path (`SSEParser` rules), parsed only if they
    could hold a token."""

    def __init__(self, lookup: Lookup | TokenCache) -> None:
        self.cache = lookup if isinstance(lookup, TokenCache) else TokenCache(lookup)
        self._blocks: dict[int, _Block] = {}
        self._pending = b""  # the start of an event whose end has not arrived yet
        self._scanned = 0  # how far into _pending no event end can begin
        self._cr = False  # a carriage return was seen: lines may end in \r\n, \r or \n
        # The exact bytes that start the last usual delta event read, up to its text's opening quote
        # (the same for every delta of a block), with that block's index and delta type.
        self._prefix: bytes | None = None
        self._prefix_index = 0
        self._prefix_kind = ""
        self._run: re.Pattern | None = None  # _run_of(self._prefix)

    async def feed(self, chunk: bytes) -> bytes:
        buf = self._pending + chunk if self._pending else chunk
        if not self._cr and b"\r" in chunk:
            self._cr, self._scanned = True, 0
        cr, out, pos, run = self._cr, [], 0, 0  # buf[run:pos]: events relayed as they are, not yet in out
        scan, find, size = self._scanned, buf.find, len(buf)
        while pos < size:
            prefix = self._prefix
            known = prefix is not None and buf.startswith(prefix, pos)
            if known:
                # Deltas of the block seen last, in the upstream's own framing, one after the other:
                # relayed as they are while their texts have no \u escape and no token, and cannot
                # end in one's start. One regex match takes the whole run.
                block = self._blocks.get(self._prefix_index)
                match = self._run.match(buf, pos + len(prefix)) if block is None or not block.held else None
                if match is not None:
                    if block is None:
                        block = self._blocks[self._prefix_index] = _Block()
                    block.delta_type = self._prefix_kind
                    start, stop = match.span(2)
                    if start < 0:
                        start, stop = match.span(1)
                    if stop > start:
                        block.last = _last_char(buf, start, stop)
                    pos = scan = match.end()
                    continue
            if cr:
                match = _EVENT_END.search(buf, scan)
                if match is None:
                    break
                end = match.end()
            else:
                end = find(b"\n\n", scan)
                if end == -1:
                    break
                end += 2
            if not cr and buf.startswith(_DELTA_HEAD, pos) and find(b"\n", pos + _DATA_AT, end - 2) == -1:
                try:
                    payload = orjson.loads(buf[pos + _DATA_AT : end - 2])
                except orjson.JSONDecodeError:
                    replaced = await self._general(buf[pos:end])
                else:
                    # A delta in the known framing is here because its text is not plain or its
                    # block holds a tail back: _delta decides (as _unchanged_delta would, when it can).
                    if not known and self._unchanged_delta(payload, buf, pos):
                        replaced = None
                    elif type(payload) is dict and payload.get("type") == "content_block_delta":
                        replaced = await self._delta(_DELTA, buf[pos + _DATA_AT : end - 2], payload)
                    else:
                        event = SSEEvent(_DELTA, buf[pos + _DATA_AT : end - 2].decode())
                        replaced = await self._event(event, buf[pos:end], payload)
            else:
                replaced = await self._general(buf[pos:end])
            if replaced is not None:
                if run < pos:
                    out.append(buf[run:pos])
                if replaced:
                    out.append(replaced)
                run = end
            pos = scan = end
        if pos == size:
            self._pending, self._scanned = b"", 0
            if not run:
                return buf  # the usual chunk: whole events, all relayed as they came
        else:
            self._pending = buf[pos:]
            self._scanned = max(0, size - pos - (4 if cr else 1))
        if run < pos:
            out.append(buf[run:pos])
        return out[0] if len(out) == 1 else b"".join(out)

    async def finish(self) -> bytes:
        out, raw, unended = [], self._pending, False
        self._pending = b""
        if raw:  # the upstream ended without closing its last event
            replaced = await self._general(raw)
            unended = replaced is None
            out.append(raw if unended else replaced)
        for index in list(self._blocks):
            if flushed := await self._flush(index):
                if unended:  # end that event before the held text follows it
                    out.append(b"\n\n")
                    unended = False
                out.append(flushed)
        return b"".join(out)

    def _unchanged_delta(self, payload, buf: bytes, pos: int) -> bool:
        """A text delta with no token and none starting in a block that holds nothing back: the
        event goes out as it came (its block's state is updated here). The delta's framing is
        remembered when it is the usual one, so that the next deltas of its block are read in place."""
        if type(payload) is not dict or payload.get("type") != "content_block_delta":
            return False
        delta = payload.get("delta")
        if type(delta) is not dict:
            return False
        kind = delta.get("type")
        field = _DELTA_FIELDS.get(kind)
        text = delta.get(field) if field else None
        if type(text) is not str:
            return False
        index = payload.get("index")
        if type(index) is int:
            for shape in _DELTA_SHAPES:
                prefix = shape % (index, kind.encode(), field.encode())
                if buf.startswith(prefix, pos):
                    self._prefix, self._prefix_index, self._prefix_kind = prefix, index, kind
                    self._run = _run_of(prefix)
                    break
        if "AWS" in text or text[-1:] == "A" or text[-2:] == "AW":
            return False
        block = self._blocks.get(index)
        if block is None:
            block = self._blocks[index] = _Block()
        elif block.held:
            return False
        block.delta_type = kind
        if text:
            block.last = text[-1]
        return True

    async def _general(self, raw: bytes) -> bytes | None:
        """One event's bytes (any framing) -> its replacement, or None to relay it as it is."""
        if not (b"AWS" in raw or b"\\u" in raw or b"content_block_delta" in raw or b"content_block_stop" in raw):
            return None  # no text in it is, or can spell, a token; no block to update or flush
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            return None
        if self._cr:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        event = _event_of(text.strip("\n"))
        if event is None:
            return None  # comments and empty lines
        return await self._event(event, raw)

    async def _event(self, event: SSEEvent, raw: bytes, payload=None) -> bytes | None:
        """The event's replacement bytes, or None when it goes out unchanged."""
        if payload is None:
            try:
                payload = _loads(event.data)
            except ValueError:
                return None
        kind = payload.get("type") if isinstance(payload, dict) else None
        if kind == "content_block_delta":
            return await self._delta(event.event, event.data, payload)
        if kind == "content_block_stop":
            flushed = await self._flush(payload.get("index"))
            return flushed + raw if flushed else None
        if kind == "content_block_start":
            payload = _exact(event)
            changed = await self._restore_slots(block_slots(payload.get("content_block")))
        elif kind == "message_start":
            payload = _exact(event)
            changed = await self._restore_slots(response_slots(payload.get("message")))
        elif kind == "error":
            payload = _exact(event)
            changed = await self._restore_slots(response_slots(payload))
        else:
            return None
        return _encode(event.event, payload) if changed else None

    async def _delta(self, name: str | None, data: str | bytes, payload: dict) -> bytes | None:
        """A content_block_delta event (`name`, its `data` and that data parsed)."""
        delta = payload.get("delta")
        field = _DELTA_FIELDS.get(delta.get("type")) if isinstance(delta, dict) else None
        if field is None or not isinstance(delta.get(field), str):
            if isinstance(delta, dict) and delta.get("type") == "citations_delta":
                payload = json.loads(data)  # exact numbers: this event is encoded again if it changes
                if await self._restore_slots(block_slots({"type": "text", "text": "", **payload["delta"]})):
                    return _encode(name, payload)
            return None
        index = payload.get("index")
        block = self._blocks.get(index)
        if block is None:
            block = self._blocks[index] = _Block()
        block.delta_type = delta["type"]
        text = block.held + delta[field]
        if "AWS" not in text and text[-1:] != "A" and text[-2:] != "AW":  # no token, none starting
            block.held, block.last = "", text[-1:] or block.last
            if text == delta[field]:
                return None
            delta[field] = text
            return _encode(name, payload)
        cut = hold_start(text, block.last)
        json_escaped = field == "partial_json"
        ready = await self.cache.restore(text[:cut], json_escaped, block.last, text[cut : cut + 1]) if cut else ""
        block.held = text[cut:]
        if cut:
            block.last = text[cut - 1]
        if not ready:
            return b""
        if ready == delta[field] and not block.held:
            return None
        delta[field] = ready
        return _encode(name, payload)

    async def _flush(self, index) -> bytes:
        block = self._blocks.pop(index, None)
        if block is None or not block.held:
            return b""
        field = _DELTA_FIELDS[block.delta_type]
        text = await self.cache.restore(block.held, field == "partial_json", block.last)
        delta = {"type": "content_block_delta", "index": index, "delta": {"type": block.delta_type, field: text}}
        return _encode("content_block_delta", delta)

    async def _restore_slots(self, slots: list) -> bool:
        if not slots:
            return False
        texts = read_slots(slots)
        restored = [await self.cache.restore(text) for text in texts]
        if restored == texts:
            return False
        write_slots(slots, restored)
        return True


def _loads(data: str):
    """orjson (several times faster on the hundreds of small delta events of an answer), or the
    standard parser for what orjson refuses (NaN, lone surrogates). orjson reads an integer past
    64 bits as a float: events that may carry arbitrary numbers are parsed again with `_exact`."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def _exact(event: SSEEvent):
    return json.loads(event.data)


def _encode(event: str | None, payload: dict) -> bytes:
    try:
        data = orjson.dumps(payload)  # one line: orjson escapes line ends
    except orjson.JSONEncodeError:  # a lone surrogate or a huge integer: the standard encoder
        return SSEEvent(event, json.dumps(payload, ensure_ascii=False, separators=(",", ":"))).encode()
    return (b"data: " if event is None else b"event: " + event.encode() + b"\ndata: ") + data + b"\n\n"
