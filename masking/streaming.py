"""Restore tokens in a streamed Messages answer (server-sent events) without waiting for its end.

Upstream chunks split events, lines and UTF-8 characters anywhere, and the model splits tokens
across deltas (`AWS_EC` then `2_001`). Each content block keeps back only the tail that could
still become a token (at most a token's length) and sends everything before it at once; the tail
is released as soon as it cannot be a token any more, and at `content_block_stop` at the latest."""

import functools
import json
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson

from masking.payload import block_slots, read_slots, response_slots, write_slots
from masking.sse import EVENT_END, SSEEvent, SSEParser, decode_event, encode_json, json_string, last_char, loads
from masking.tokens import TOKEN_MAX_LEN, canonical, split_tokens

__all__ = ["SSEParser", "StreamRestorer", "TokenCache", "hold_start"]  # SSEParser: from masking.sse

Lookup = Callable[[list[str]], Awaitable[dict[str, str | None]]]

_WORD = re.compile(r"[A-Za-z0-9_]")
# Every prefix of a token (Markdown- and JSON-escaped underscores included): a held tail must match.
_TOKEN_PREFIX = re.compile(r"A(?:W(?:S(?:\\{0,2}_[A-Z0-9]+)*(?:\\{0,2}_?)?)?)?")
_RUN_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_\\"  # a token's, escapes too
_TAIL_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_\\")  # what a _TOKEN_PREFIX match ends in
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
# The texts of the other events that may hold a token (the events' data parsed).
_SLOTS = {
    "content_block_start": lambda payload: block_slots(payload.get("content_block")),
    "message_start": lambda payload: response_slots(payload.get("message")),
    "error": response_slots,
}


class TokenCache:
    """Originals looked up once per request: each new token costs at most one store round trip."""

    def __init__(self, lookup: Lookup) -> None:
        self._lookup = lookup
        self.known: dict[str, str | None] = {}
        self.restored: list[str] = []  # each occurrence restored, in order (`restored_counts`)
        self.unresolved_count = 0  # occurrences left as they are
        self._escaped: dict[str, str] = {}  # originals as they are written inside a JSON string
        self.missing: list[str] = []  # the tokens restore_known found not known, last time it did

    @property
    def restored_counts(self) -> Counter[str]:
        """Occurrences restored, by token."""
        return Counter(self.restored)

    async def originals(self, tokens: list[str]) -> dict[str, str | None]:
        missing = [t for t in dict.fromkeys(tokens) if t not in self.known]
        if missing:
            found = await self._lookup(missing)  # unknown tokens are absent: remember them as None
            self.known.update({token: found.get(token) for token in missing})
        return self.known

    def restore_known(self, text: str, json_escaped: bool = False, before: str = "", after: str = "") -> str | None:
        """`text` with its tokens replaced, or None when one of them is not known yet (its lookup is
        for `restore`; the tokens to look up are left in `missing`). `before` and `after` are its
        neighbours (token boundaries). Synchronous: the usual path, every token prefetched."""
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
        try:
            originals = list(map(self.known.__getitem__, tokens))
        except KeyError:
            self.missing = tokens
            return None
        if json_escaped:
            originals = [original if original is None else self._json_escaped(original) for original in originals]
        if None in originals:  # unknown to the store: left as written
            self.unresolved_count += originals.count(None)
            pairs = list(zip(parts[1::2], tokens, originals, strict=True))
            self.restored += [token for _, token, original in pairs if original is not None]
            originals = [written if original is None else original for written, _, original in pairs]
        else:  # the usual delta: every token restored
            self.restored += tokens
        parts[1::2] = originals
        return "".join(parts)

    def _json_escaped(self, original: str) -> str:
        escaped = self._escaped.get(original)
        if escaped is None:
            escaped = self._escaped[original] = json.dumps(original, ensure_ascii=False)[1:-1]
        return escaped

    async def restore(self, text: str, json_escaped: bool = False, before: str = "", after: str = "") -> str:
        """`restore_known`, the tokens not known yet looked up first (one store round trip)."""
        if (restored := self.restore_known(text, json_escaped, before, after)) is None:
            await self.originals(self.missing)
            restored = self.restore_known(text, json_escaped, before, after)
        return restored


def hold_start(text: str, before: str = "") -> int:
    """Where the tail of `text` that could still grow into a token begins (len(text): nothing to hold)."""
    if text[-1:] not in _TAIL_CHARS:  # usually: a held tail ends in a token's character
        return len(text)
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


@functools.lru_cache(maxsize=64)
def _run_of(prefix: bytes) -> re.Pattern:
    """A regex for a plain text and the end of its delta (framed by `prefix`), then for the deltas
    like it that follow: group 1 is the first text, group 2 the last of the others not empty."""
    others = b"(?:%s(?:%s|(%s)%s))*+" % (re.escape(prefix), _END, _PLAIN_TEXT, _END)
    return re.compile(b"(%s)%s%s" % (_PLAIN_TEXT, _END, others))


def plain_run_by_regex(buf: bytes, start: int, pattern: re.Pattern) -> tuple[int, int, int] | None:
    """`StreamRestorer._plain_run` by the regex (`pattern` is `_run_of(prefix)`)."""
    match = pattern.match(buf, start)
    if match is None:
        return None
    text = match.span(2)
    if text[0] < 0:
        text = match.span(1)
    return match.end(), text[0], text[1]


try:  # scripts/build_speedups.py builds it (`make run`, `make test`)
    from masking._restore import plain_run as _c_plain_run
    from masking._restore import restore_delta as _c_restore_delta
except ImportError:  # no C compiler where it was installed: the regex and the Python path do the same
    _c_plain_run = _c_restore_delta = None


@dataclass(slots=True)
class _Block:
    held: str = ""
    last: str = ""  # the last character sent, for the token's left boundary
    delta_type: str | None = None


class StreamRestorer:
    """Turns upstream SSE bytes into client SSE bytes with originals restored.

    Events are cut from the bytes at their blank line (a line feed never occurs inside a UTF-8
    character, so a complete event is complete UTF-8). An event that cannot change is relayed as
    the upstream sent it, byte for byte; only an event with something to restore, or a tail to hold
    back, is encoded again. The usual delta ("event: content_block_delta" and one data line) is read
    in place: once one delta of a block is parsed, a run of the next ones (same framing up to the
    text) is relayed with one regex match while their texts have no \\u escape, no "AWS" and no
    token start; one with a token or a held tail is read in place too (its text one JSON string),
    and written compact. A delta whose tokens are all known (prefetched) is restored without
    awaiting anything. Other events, and those of a stream with carriage returns, take the general
    path (`masking.sse` rules), parsed only if they could hold a token."""

    def __init__(self, lookup: Lookup | TokenCache, table: dict[bytes, bytes] | None = None) -> None:
        self.cache = lookup if isinstance(lookup, TokenCache) else TokenCache(lookup)
        # The request's tokens as written -> originals JSON-escaped (MaskResult.restore): what the C
        # pass restores a delta from (`_in_place_c`); None or empty: the Python path only.
        self._table = table or None
        self._blocks: dict[int, _Block] = {}
        self._pending = b""  # the start of an event whose end has not arrived yet
        self._scanned = 0  # how far into _pending no event end can begin
        self._cr = False  # a carriage return was seen: lines may end in \r\n, \r or \n
        # The exact bytes that start the last usual delta event read, up to its text's opening quote
        # (the same for every delta of a block), with that block's index and delta type.
        self._prefix: bytes | None = None
        self._prefix_index, self._prefix_kind = 0, ""
        self._head = b""  # the compact framing of such a delta, up to its text (exclusive)
        self._run: re.Pattern | None = None  # _run_of(self._prefix), where the C pass is not built

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
                # end in one's start. One call takes the whole run (`plain_run`).
                block = self._blocks.get(self._prefix_index)
                plain = self._plain_run(buf, pos + len(prefix)) if block is None or not block.held else None
                if plain is not None:
                    if block is None:
                        block = self._blocks[self._prefix_index] = _Block()
                    block.delta_type = self._prefix_kind
                    end, start, stop = plain
                    if stop > start:
                        block.last = last_char(buf, start, stop)
                    pos = scan = end
                    continue
            if cr:
                match = EVENT_END.search(buf, scan)
                if match is None:
                    break
                end = match.end()
            else:
                end = find(b"\n\n", scan)
                if end == -1:
                    break
                end += 2
            # A delta of the known framing: its text (between the quotes that end the framing and
            # start `"}}`) read and written in place when it is one valid JSON string.
            if (
                known
                and not cr
                and buf.startswith(_END, end - 5)
                and (replaced := self._in_place_c(buf, pos + len(prefix), end - 5)) is not _LATER
            ):
                pass  # the C pass restored it, or found nothing to change (None)
            elif (
                known
                and not cr
                and buf.startswith(_END, end - 5)
                and (text := json_string(buf, pos + len(prefix) - 1, end - 4)) is not None
            ):
                replaced = self._in_place(text)
                if replaced is _LATER:
                    await self.cache.originals(self.cache.missing)
                    replaced = self._in_place(text)
            elif not cr and buf.startswith(_DELTA_HEAD, pos) and find(b"\n", pos + _DATA_AT, end - 2) == -1:
                try:
                    payload = orjson.loads(buf[pos + _DATA_AT : end - 2])
                except orjson.JSONDecodeError:
                    replaced = await self._general(buf[pos:end])
                else:
                    if type(payload) is dict and payload.get("type") == "content_block_delta":
                        replaced = self._delta_now(_DELTA, payload, None if known else buf, pos)
                        if replaced is _LATER:
                            replaced = await self._delta(_DELTA, buf[pos + _DATA_AT : end - 2], payload, True)
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
                out.append(b"\n\n" + flushed if unended else flushed)  # that event ended before the held text
                unended = False
        return b"".join(out)

    async def _general(self, raw: bytes) -> bytes | None:
        """One event's bytes (any framing) -> its replacement, or None to relay it as it is."""
        if not (b"AWS" in raw or b"\\u" in raw or b"content_block_delta" in raw or b"content_block_stop" in raw):
            return None  # no text in it is, or can spell, a token; no block to update or flush
        event = decode_event(raw, self._cr)
        return None if event is None else await self._event(event, raw)  # None: comments, empty lines

    async def _event(self, event: SSEEvent, raw: bytes, payload=None) -> bytes | None:
        """The event's replacement bytes, or None when it goes out unchanged."""
        if payload is None:
            try:
                payload = loads(event.data)
            except ValueError:
                return None
        kind = payload.get("type") if isinstance(payload, dict) else None
        if kind == "content_block_delta":
            return await self._delta(event.event, event.data, payload)
        if kind == "content_block_stop":
            flushed = await self._flush(payload.get("index"))
            return flushed + raw if flushed else None
        if (slots_of := _SLOTS.get(kind) if type(kind) is str else None) is None:
            return None
        payload = json.loads(event.data)  # exact numbers: this event is encoded again if it changes
        changed = await self._restore_slots(slots_of(payload))
        return encode_json(event.event, payload) if changed else None

    async def _delta(self, name: str | None, data: str | bytes, payload: dict, tried: bool = False) -> bytes | None:
        """A content_block_delta event (`name`, its `data` and that data parsed): `_delta_now` once its
        unknown tokens are looked up (`tried`: it said _LATER already); citations restored."""
        delta = payload.get("delta")
        if isinstance(delta, dict) and delta.get("type") == "citations_delta":
            payload = json.loads(data)  # exact numbers: this event is encoded again if it changes
            changed = await self._restore_slots(block_slots({"type": "text", "text": "", **payload["delta"]}))
            return encode_json(name, payload) if changed else None
        replaced = _LATER if tried else self._delta_now(name, payload)
        if replaced is _LATER:  # nothing changed yet: the same again once the tokens are known
            await self.cache.originals(self.cache.missing)
            replaced = self._delta_now(name, payload)
        return replaced

    def _delta_now(self, name: str | None, payload: dict, buf: bytes | None = None, pos: int = 0) -> bytes | None:
        """A text delta's replacement (None: unchanged), without waiting: _LATER when a token in it
        is not known yet or it is a citation (then `_delta`). With the event's `buf` and `pos`, its
        framing is remembered when it is the usual one: the next deltas of its block are read in place."""
        delta = payload.get("delta")
        kind = delta.get("type") if type(delta) is dict else None
        field = _DELTA_FIELDS.get(kind) if type(kind) is str else None  # no list or object as a key
        if field is None or type(delta.get(field)) is not str:
            return _LATER if kind == "citations_delta" else None
        index = payload.get("index")
        if buf is not None and type(index) is int:
            for shape in _DELTA_SHAPES:
                if buf.startswith(prefix := shape % (index, kind.encode(), field.encode()), pos):
                    self._prefix, self._prefix_index, self._prefix_kind = prefix, index, kind
                    self._run = _run_of(prefix)
                    self._head = _DELTA_SHAPES[0][:-1] % (index, kind.encode(), field.encode())  # orjson's
                    break
        new = self._text(index, kind, delta[field])
        if type(new) is not str:
            return new  # None or _LATER
        if not new:
            return b""
        delta[field] = new
        return encode_json(name, payload)

    def _text(self, index, kind: str, text: str) -> str | bytes | None:
        """A delta's text to send ("": nothing, None: the delta as it came, _LATER: a token is not known)."""
        try:
            block = self._blocks.get(index)
        except TypeError:  # a list or an object: no block of ours (relayed as it is)
            return None
        if block is None:
            block = self._blocks[index] = _Block()
        block.delta_type, sent = kind, text
        text = block.held + text
        if "AWS" not in text and text[-1:] != "A" and text[-2:] != "AW":  # no token, none starting
            block.held, block.last = "", text[-1:] or block.last
            return None if text == sent else text
        cut = hold_start(text, block.last)
        json_escaped = kind == "input_json_delta"
        ready = self.cache.restore_known(text[:cut], json_escaped, block.last, text[cut : cut + 1]) if cut else ""
        if ready is None:
            return _LATER  # nothing changed yet
        block.held = text[cut:]
        if cut:
            block.last = text[cut - 1]
        if ready and ready == sent and not block.held:
            return None
        return ready

    def _plain_run(self, buf: bytes, start: int) -> tuple[int, int, int] | None:
        """The run of plain deltas (`_run_of(self._prefix)`) from `start`, just after the first one's
        framing: (its end, the span of its last text not empty, else of its first), or None when the
        first is not plain. In C where it is built (masking/_restore.c, byte speed), else the regex."""
        if _c_plain_run is not None:
            return _c_plain_run(buf, start, self._prefix)
        return plain_run_by_regex(buf, start, self._run)

    def _in_place_c(self, buf: bytes, start: int, stop: int) -> bytes | None:
        """A delta of the known framing whose text is buf[start:stop] (inside its quotes), restored in
        C from the request's tokens (masking/_restore.c `restore_delta`): its replacement (None:
        unchanged), or _LATER when the C pass cannot settle it (then `_in_place`, in Python): an
        input_json_delta, a tail held back or to hold, a \\u escape, a token it does not know."""
        table = self._table
        if table is None or _c_restore_delta is None or self._prefix_kind == "input_json_delta":
            return _LATER
        block = self._blocks.get(self._prefix_index)
        if block is not None and block.held:
            return _LATER
        after_word = block is not None and _WORD.match(block.last) is not None
        done = _c_restore_delta(buf, start, stop, table, after_word)
        if done is None:
            return _LATER
        if block is None:
            block = self._blocks[self._prefix_index] = _Block()
        block.delta_type = self._prefix_kind
        if stop > start:
            block.last = last_char(buf, start, stop)
        text, found = done
        if text is None:
            return None
        self.cache.restored += [token.decode() for token in found]
        return self._head + b'"' + text + _END

    def _in_place(self, text: str) -> bytes | None:
        """A delta of the known framing (either shape) whose text is `text`: its replacement, written
        compact as `encode_json` would (None: unchanged; _LATER: a token is not known yet)."""
        new = self._text(self._prefix_index, self._prefix_kind, text)
        if type(new) is not str:
            return new
        if not new:
            return b""
        try:
            return self._head + orjson.dumps(new) + b"}}\n\n"
        except orjson.JSONEncodeError:
            delta = {"type": self._prefix_kind, _DELTA_FIELDS[self._prefix_kind]: new}
            return encode_json(_DELTA, {"type": _DELTA, "index": self._prefix_index, "delta": delta})

    async def _flush(self, index) -> bytes:
        try:
            block = self._blocks.pop(index, None)
        except TypeError:  # an index that is a list or an object: no block of ours
            return b""
        if block is None or not block.held:
            return b""
        field = _DELTA_FIELDS[block.delta_type]
        text = await self.cache.restore(block.held, field == "partial_json", block.last)
        delta = {"type": "content_block_delta", "index": index, "delta": {"type": block.delta_type, field: text}}
        return encode_json("content_block_delta", delta)

    async def _restore_slots(self, slots: list) -> bool:
        if not slots:
            return False
        texts = read_slots(slots)
        restored = [await self.cache.restore(text) for text in texts]
        if restored == texts:
            return False
        write_slots(slots, restored)
        return True


_LATER = b"later"  # _delta_now: this delta waits for a lookup (never returned as an event's bytes)
