"""Request and answer bodies: read exactly, written back fast.

orjson reads and writes about twice (reading) to twenty times (writing) as fast as the standard
library, but it would silently turn an integer past 64 bits into a float and refuse NaN or lone
surrogates, which the Claude API's clients may send. Those bodies take the standard library, so a
document always goes back upstream meaning exactly what the client wrote.

A conversation sends its earlier turns again, byte for byte, on every turn. Reading a long string
is most of what parsing costs (a 16 KB text outside Latin-1 becomes a two-byte-per-character
string), so a request's long string values are read aside (`_read_aside`): each is found in the
body's bytes (`long_values`, masking/_restore.c), looked up among the strings read lately by its
exact bytes (`read_lately`), and decoded on its own only when it is new; the rest of the body is
parsed with a placeholder in each one's place, which the walk for huge floats then replaces.
"""

import json
import secrets

import orjson

from masking.cache import ByEnds
from masking.errors import InvalidPayload

try:  # scripts/build_speedups.py builds it (`make run`, `make test`)
    from masking._restore import long_values as _long_values
except ImportError:  # no C compiler where it was installed: every body is parsed whole
    _long_values = None

LONG_STRING_BYTES = 1024  # a string value this long (as written) is read aside, and remembered
MAX_READ_LATELY_BYTES = 16 * 1024 * 1024  # bytes of strings remembered, as written and read, per worker

# orjson reads an integer past 64 bits as a float (silently inexact); no exact integer or ordinary
# float reaches this size, so a float this large sends the body to the standard parser.
_HUGE = float(2**63)


def fast_loads(body: bytes) -> object | None:
    """orjson, about twice as fast as the standard parser, where it reads the document exactly;
    None where it cannot (invalid UTF-8, NaN, lone surrogates, maybe-huge integers)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return document if _settle([document]) else None


# long strings as written (between their quotes) -> as read: cost counted as both, in bytes
read_lately = ByEnds(MAX_READ_LATELY_BYTES)
# What stands in a long string's place while the rest is parsed: a NUL character and a random name
# of this process's (which no client writes by chance), then the string's number in the body.
_PLACEHOLDER = secrets.token_hex(8)


def _read_aside(body: bytes) -> object | None:
    """`fast_loads(body)` with its long string values read aside, those read lately not decoded
    again; None where it has none, or where this cannot answer: then the body is parsed whole."""
    spans = _long_values(body, LONG_STRING_BYTES)
    if not spans:
        return None
    aside: dict[str, str] = {}
    pieces, pos = [], 0
    for number, (start, end) in enumerate(spans):
        written = body[start:end]
        text = read_lately.get(None, written)
        if text is None:
            try:
                text = orjson.loads(body[start - 1 : end + 1])  # with its quotes
            except orjson.JSONDecodeError:  # invalid UTF-8 or JSON, a lone surrogate: the whole body's way
                return None
            read_lately.put(None, written, text, len(written) + 2 * len(text))
        aside[f"\x00{_PLACEHOLDER}:{number}"] = text
        pieces += (body[pos:start], f"\\u0000{_PLACEHOLDER}:{number}".encode())  # between its quotes
        pos = end
    pieces.append(body[pos:])
    try:
        holder = [orjson.loads(b"".join(pieces))]
    except orjson.JSONDecodeError:
        return None
    return holder[0] if _settle(holder, aside) else None


def _settle(document, aside: dict[str, str] | None = None) -> bool:
    """Whether orjson read `document` exactly: False if any number in it is a float of 2**63 or more
    (then the standard parser must read the body). Each placeholder `_read_aside` left in it is
    replaced by its string on the way. A walk of its containers, which for a Messages body (a few
    hundred nodes at most, the texts being single strings) costs far less than scanning its bytes."""
    stack = [document]
    while stack:
        node = stack.pop()
        for key, value in node.items() if type(node) is dict else enumerate(node):
            kind = type(value)
            if kind is str:
                if aside and value in aside:  # never hash a long string for nothing
                    node[key] = aside[value]
            elif kind is dict or kind is list:
                stack.append(value)
            elif kind is float and not -_HUGE < value < _HUGE:
                return False
    return True


def parse(body: bytes) -> tuple[object, bool]:
    """A request body and whether orjson may write it back, or InvalidPayload (400) saying why."""
    payload = _read_aside(body) if _long_values is not None and len(body) > LONG_STRING_BYTES else None
    if payload is None:
        payload = fast_loads(body)
    if payload is not None:
        return payload, True
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidPayload("The request body is not valid UTF-8.") from None
    try:
        return loads(text)
    except ValueError:
        raise InvalidPayload("The request body is not valid JSON.") from None


class _NotFinite(ValueError):
    pass


def _not_finite(name: str) -> float:
    raise _NotFinite(name)


# The standard parser (orjson's would silently turn integers past 64 bits into floats), told to
# stop at NaN / Infinity, which orjson would write back as null.
_FINITE_JSON = json.JSONDecoder(parse_constant=_not_finite)


def loads(text: str | bytes) -> tuple[object, bool]:
    """The document, and whether orjson may write it back (not when it holds NaN or Infinity)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    try:
        return _FINITE_JSON.decode(text), True
    except _NotFinite:
        return json.loads(text), False


def dump(payload: object, finite: bool = True) -> bytes:
    """Compact UTF-8 JSON. orjson is some 20 times faster than the standard encoder on a 16 KB prompt."""
    if finite:
        try:
            return orjson.dumps(payload)
        except orjson.JSONEncodeError:  # a lone surrogate, or an integer past 64 bits: the standard way
            pass
    try:
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:  # a lone surrogate sent as \\ud800: keep it escaped, as the client did
        return json.dumps(payload, separators=(",", ":")).encode()


def _json_string(text: str) -> bytes:
    """`text` as it stands between the quotes of a JSON string."""
    try:
        return orjson.dumps(text)[1:-1]
    except orjson.JSONEncodeError:  # a lone surrogate: escaped, as the standard encoder writes it
        return json.dumps(text).encode()[1:-1]


MAX_ESCAPED = 10_000  # strings `escaped` remembers; past it, it starts over


class _Escaped(dict):
    def __missing__(self, text: str) -> bytes:
        if len(self) >= MAX_ESCAPED:
            self.clear()
        value = self[text] = _json_string(text)
        return value


# text -> as it stands between the quotes of a JSON string (`escaped[text]`): originals, restored
# into answers again and again, are escaped once.
escaped = _Escaped()
