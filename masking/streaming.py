"""Restore tokens in a streamed Messages answer (server-sent events) without waiting for its end.

Upstream chunks split events, lines and UTF-8 characters anywhere, and the model splits tokens
across deltas (`AWS_EC` then `2_001`). Each content block keeps back only the tail that could
still become a token (at most a token's length) and sends everything before it at once; the tail
is released as soon as it cannot be a token any more, and at `content_block_stop` at the latest."""

import codecs
import json
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson

from masking.payload import block_slots, read_slots, response_slots, write_slots
from masking.tokens import TOKEN_MAX_LEN, find_tokens

Lookup = Callable[[list[str]], Awaitable[dict[str, str | None]]]

_WORD = re.compile(r"[A-Za-z0-9_]")
# Every prefix of a token (Markdown- and JSON-escaped underscores included): a held tail must match.
_TOKEN_PREFIX = re.compile(r"A(?:W(?:S(?:\\{0,2}_[A-Z0-9]+)*(?:\\{0,2}_?)?)?)?")
_TRAILING_RUN = re.compile(r"[A-Za-z0-9_\\]*\Z")
# Escaped forms are longer than the canonical token: at most two backslashes per underscore.
_MAX_HOLD = 3 * TOKEN_MAX_LEN
_DELTA_FIELDS = {"text_delta": "text", "thinking_delta": "thinking", "input_json_delta": "partial_json"}


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
        matches = [
            m for m in find_tokens(before + text + after) if len(before) <= m.start and m.end <= len(before) + len(text)
        ]
        if not matches:
            return text
        originals = await self.originals([m.token for m in matches])
        out, pos, shift = [], 0, len(before)
        for match in matches:
            original = originals.get(match.token)
            if original is None:
                self.unresolved_count += 1
                continue
            self.restored_counts[match.token] += 1
            out.append(text[pos : match.start - shift])
            out.append(json.dumps(original, ensure_ascii=False)[1:-1] if json_escaped else original)
            pos = match.end - shift
        out.append(text[pos:])
        return "".join(out)


def hold_start(text: str, before: str = "") -> int:
    """Where the tail of `text` that could still grow into a token begins (len(text): nothing to hold)."""
    run = _TRAILING_RUN.search(text, max(0, len(text) - _MAX_HOLD)).start()
    for pos in range(run, len(text)):
        if text[pos] != "A":
            continue
        left = text[pos - 1] if pos else before
        if left and _WORD.match(left):
            continue
        if _TOKEN_PREFIX.fullmatch(text, pos) and len(text) - pos - text.count("\\", pos) <= TOKEN_MAX_LEN:
            return pos
    return len(text)


class _Block:
    __slots__ = ("held", "last", "delta_type")

    def __init__(self) -> None:
        self.held = ""
        self.last = ""  # the last character sent, for the token's left boundary
        self.delta_type: str | None = None


class StreamRestorer:
    """Turns upstream SSE bytes into client SSE bytes with originals restored."""

    def __init__(self, lookup: Lookup | TokenCache) -> None:
        self.parser = SSEParser()
        self.cache = lookup if isinstance(lookup, TokenCache) else TokenCache(lookup)
        self._blocks: dict[int, _Block] = {}

    async def feed(self, chunk: bytes) -> bytes:
        return b"".join([await self._event(event) for event in self.parser.feed(chunk)])

    async def finish(self) -> bytes:
        out = [await self._event(event) for event in self.parser.feed(b"", final=True)]
        for index in list(self._blocks):
            out.append(await self._flush(index))
        return b"".join(out)

    async def _event(self, event: SSEEvent) -> bytes:
        try:
            payload = _loads(event.data)
        except ValueError:
            return event.encode()
        kind = payload.get("type") if isinstance(payload, dict) else None
        if kind == "content_block_delta":
            return await self._delta(event, payload)
        if kind == "content_block_stop":
            return await self._flush(payload.get("index")) + event.encode()
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
            return event.encode()
        return _encode(event.event, payload) if changed else event.encode()

    async def _delta(self, event: SSEEvent, payload: dict) -> bytes:
        delta = payload.get("delta")
        field = _DELTA_FIELDS.get(delta.get("type")) if isinstance(delta, dict) else None
        if field is None or not isinstance(delta.get(field), str):
            if isinstance(delta, dict) and delta.get("type") == "citations_delta":
                payload = _exact(event)
                if await self._restore_slots(block_slots({"type": "text", "text": "", **payload["delta"]})):
                    return _encode(event.event, payload)
            return event.encode()
        index = payload.get("index")
        block = self._blocks.get(index)
        if block is None:
            block = self._blocks[index] = _Block()
        block.delta_type = delta["type"]
        text = block.held + delta[field]
        if "AWS" not in text and text[-1:] != "A" and text[-2:] != "AW":  # the common case: no token, none starting
            block.held, block.last = "", text[-1:] or block.last
            if text == delta[field]:
                return event.encode()
            delta[field] = text
            return _encode(event.event, payload)
        cut = hold_start(text, block.last)
        json_escaped = field == "partial_json"
        ready = await self.cache.restore(text[:cut], json_escaped, block.last, text[cut : cut + 1]) if cut else ""
        block.held = text[cut:]
        if cut:
            block.last = text[cut - 1]
        if not ready:
            return b""
        if ready == delta[field] and not block.held:
            return event.encode()
        delta[field] = ready
        return _encode(event.event, payload)

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
        data = orjson.dumps(payload).decode()
    except orjson.JSONEncodeError:  # a lone surrogate or a huge integer: the standard encoder
        data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return SSEEvent(event, data).encode()
