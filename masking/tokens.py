"""Token grammar: `AWS_<PREFIX>_<NNN>` (see docs/contracts.md).

PREFIX is one to four upper-case segments joined by underscores, each starting with a letter (so the
number, all digits, is never mistaken for part of it); NNN has at least 3 digits and grows past 999.
A model may rewrite `_` as `\\_` (Markdown) and that again as `\\\\_` inside JSON: both are recognised
and canonicalised. Redaction markers (`AWS_<PREFIX>_REDACTED`) are not tokens: never restored.
"""

import re
import threading
from typing import NamedTuple

try:
    import hyperscan
except ImportError:  # pragma: no cover - exercised on platforms without the wheel
    hyperscan = None

REDACTED_SUFFIX = "REDACTED"
PREFIX_PATTERN = r"[A-Z][A-Z0-9]{0,11}(?:_[A-Z][A-Z0-9]{0,11}){0,3}"
MAX_NUMBER_DIGITS = 12
_MAX_SEGMENT, _MAX_SEGMENTS, _MAX_ESCAPES = 12, 4, 2

# The longest text find_tokens can return: "AWS", then each of up to four prefix segments and the
# number preceded by an underscore carrying up to two backslashes.
TOKEN_MAX_LEN = len("AWS") + _MAX_SEGMENTS * (_MAX_ESCAPES + 1 + _MAX_SEGMENT) + (_MAX_ESCAPES + 1 + MAX_NUMBER_DIGITS)

_PREFIX_RE = re.compile(PREFIX_PATTERN)
# The left boundary is checked after the literal "AWS", not before it: a pattern that starts with
# "AWS" lets the regex engine jump from one "AWS" to the next instead of trying every position
# (ten times faster on a 16 KB answer). `AWS(?<![A-Za-z0-9_]AWS)` is `(?<![A-Za-z0-9_])AWS`.
_TOKEN_RE = re.compile(
    rf"AWS(?<![A-Za-z0-9_]AWS)(?:\\{{0,2}}_[A-Z][A-Z0-9]{{0,11}}){{1,4}}\\{{0,2}}_[0-9]{{3,{MAX_NUMBER_DIGITS}}}(?![A-Za-z0-9_])"
)


class TokenMatch(NamedTuple):
    start: int
    end: int
    token: str


def is_valid_prefix(prefix: str) -> bool:
    return _PREFIX_RE.fullmatch(prefix) is not None


def format_token(prefix: str, number: int) -> str:
    if not is_valid_prefix(prefix) or not 0 < number < 10**MAX_NUMBER_DIGITS:
        raise ValueError("token prefix or number outside the token grammar")
    return f"AWS_{prefix}_{number:03d}"


def redaction_marker(prefix: str) -> str:
    return f"AWS_{prefix}_{REDACTED_SUFFIX}"


def find_tokens(text: str) -> list[TokenMatch]:
    if "AWS" not in text:
        return []
    if "\\" not in text:  # the usual answer: no escaped underscores to canonicalise
        return [TokenMatch(*m.span(), m.group()) for m in _TOKEN_RE.finditer(text)]
    return [TokenMatch(*m.span(), m.group().replace("\\", "")) for m in _TOKEN_RE.finditer(text)]


_TOKEN_SPLIT = re.compile(f"({_TOKEN_RE.pattern})")


def split_tokens(text: str) -> list[str]:
    """`text` cut around its tokens: [text, token, text, ..., token, text], tokens as written
    (`canonical()` them to look them up). One pass of the regex engine, no per-token Python call:
    restoring an answer is then a list walk and a join."""
    if "AWS" not in text:
        return [text]
    return _TOKEN_SPLIT.split(text)


def canonical(token: str) -> str:
    """A token as `find_tokens` gives it: without the Markdown / JSON escapes of its underscores."""
    return token.replace("\\", "") if "\\" in token else token


# --- tokens in JSON text, found in its UTF-8 bytes ----------------------------------------------------

# A token as it stands in a JSON string: each backslash of an escaped underscore is doubled. The
# pattern starts with "AWS", so the regex engine jumps from one "AWS" to the next, and it checks the
# left boundary right there (as `AWS(?<!...AWS)` does in _TOKEN_RE), where in JSON the character before
# a token may be written as an escape. A token is taken at once when no word character stands before
# it, or an escape with a single backslash: a control character (\n) or a \u code point (never an
# ASCII one: such a document goes to the parser). Before other escapes (\\\n: a backslash, then a
# newline; \\n: a backslash, then an "n") it is taken with an empty group that says so, and
# `split_json_tokens` reads those escapes. With any other word character before it, no match.
# A match reads at most TOKEN_MAX_LEN bytes and the six before: linear time, whatever the document.
_JSON_SEPARATOR = rb"(?:_|\\\\_|\\\\\\\\_)"  # an underscore, its backslash escaped at most twice
_JSON_TOKEN_SPLIT = re.compile(
    rb"(AWS"
    rb"(?:(?<![A-Za-z0-9_]AWS)|(?<=[^\\]\\[bfnrt]AWS)|(?<=[^\\]\\u[0-9A-Fa-f]{4}AWS)"  # a boundary
    rb"|(?:(?<=\\[bfnrt]AWS)|(?<=\\u[\x00-\xff]{4}AWS))())"  # maybe one: read the escapes
    # Possessive: a prefix segment starts with a letter, the number with a digit, and neither can end
    # elsewhere, so giving characters back never finds another match.
    rb"(?:%s[A-Z][A-Z0-9]{0,11}+){1,4}+%s[0-9]{3,%d}+)(?![A-Za-z0-9_])"
    % (_JSON_SEPARATOR, _JSON_SEPARATOR, MAX_NUMBER_DIGITS)
)
# The same tokens with no left boundary, as `split_json_tokens` once read every document: only for a
# document that is not JSON (a \u escape whose four characters are not hex digits, then a token).
_JSON_TOKEN_SPLIT_UNBOUNDED = re.compile(
    rb"(AWS(?:(?:\\\\){0,2}_[A-Z][A-Z0-9]{0,11}){1,4}(?:\\\\){0,2}_[0-9]{3,%d})(?![A-Za-z0-9_])" % MAX_NUMBER_DIGITS
)
# A \u escape of a printable ASCII character could spell or border a token: the bytes cannot tell.
_ASCII_ESCAPE = re.compile(rb"\\u00[2-7]")
_WORD_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_CONTROL_ESCAPES = frozenset(b"bfnrt")  # \n, \t, ...: a control character, which ends a word


def split_json_tokens(document: bytes) -> list[bytes] | None:
    """JSON text cut around the tokens in its strings, as `split_tokens` cuts a text: [bytes, token,
    bytes, ..., token, bytes], tokens as the JSON writes them (`canonical_json_token()` them). None
    when the bytes alone cannot tell (a `\\u` escape of an ASCII character): parse the document then.

    Outside its strings JSON has only numbers, literals and punctuation, so every token found is in
    a string, and a token's characters are never escaped by a JSON writer; the one thing to decode
    is the character before it, which may be an escape such as `\\n`."""
    if _has_ascii_escape(document):
        return None
    if b"AWS" not in document:
        return [document]
    parts = _JSON_TOKEN_SPLIT.split(document)  # [bytes, token, mark, bytes, ...]
    if len(parts) == 1:
        return parts
    marks = parts[2::3]  # None, or b"" where the escapes before the token are to be read
    del parts[2::3]
    if marks.count(None) == len(marks):  # the usual answer: every token decided by the pattern
        return parts
    # Each decided on the bytes since the token before: a token ends in a digit, so what became of it
    # never changes how the escapes after it read.
    merged = []  # the tokens that turn out to be part of a word, in order
    at = -1
    while (at := _index(marks, b"", at + 1)) >= 0:
        before = parts[2 * at]  # never empty: the pattern saw a word character before the token
        if before[-1] == 0x5F:  # \u, 4 characters not all hex, the token: no JSON; read it the old way
            return _split_unbounded(document)
        if _word_before(before, True):  # a backslash, "nAWS_EC2_001": part of a word, not a token
            merged.append(at)
    return _merged(parts, merged) if merged else parts


def _has_ascii_escape(document: bytes) -> bool:
    """`_ASCII_ESCAPE.search(document)`, by Hyperscan when it is there: a third of the regex engine's
    time on a 16 KB answer (and `b"\\u00" in document` takes twice the regex engine's)."""
    global _ascii_escapes
    if hyperscan is None:  # pragma: no cover - exercised on platforms without the wheel
        return _ASCII_ESCAPE.search(document) is not None
    if _ascii_escapes is None:
        database = hyperscan.Database()
        database.compile(expressions=[_ASCII_ESCAPE.pattern], ids=[0], flags=[hyperscan.HS_FLAG_SINGLEMATCH])
        _ascii_escapes = database
    scratch = getattr(_scratch, "space", None)
    if scratch is None:  # Hyperscan releases the GIL while scanning: one scratch space per thread
        scratch = _scratch.space = hyperscan.Scratch(_ascii_escapes)
    try:
        _ascii_escapes.scan(document, match_event_handler=_stop, scratch=scratch)
    except hyperscan.ScanTerminated:
        return True
    return False


_ascii_escapes = None  # _ASCII_ESCAPE as a Hyperscan database, compiled on first use
_scratch = threading.local()


def _stop(*_) -> bool:
    return True  # the first match settles it


def _index(items: list, value, start: int) -> int:
    try:
        return items.index(value, start)
    except ValueError:
        return -1


def _split_unbounded(document: bytes) -> list[bytes]:
    parts = _JSON_TOKEN_SPLIT_UNBOUNDED.split(document)
    return _merged(parts, [at for at in range(len(parts) // 2) if _word_before(parts[2 * at], at > 0)])


def _merged(parts: list[bytes], merged: list[int]) -> list[bytes]:
    """[bytes, token, bytes, ...] with the tokens numbered `merged` (in order) joined to the bytes
    around them: each run of such tokens and the bytes around it become one piece, in one join."""
    out, copied, run = [], 0, 0
    while run < len(merged):
        first = last = merged[run]
        run += 1
        while run < len(merged) and merged[run] == last + 1:
            last = merged[run]
            run += 1
        out += parts[copied : 2 * first]
        out.append(b"".join(parts[2 * first : 2 * last + 3]))
        copied = 2 * last + 3
    out += parts[copied:]
    return out


def _word_before(before: bytes, after_a_token: bool) -> bool:
    """Whether the text that ends in `before` ends in a word character, once JSON escapes are read."""
    if not before:
        return after_a_token  # right after a token: its last digit
    last = before[-1]
    if last not in _WORD_BYTES:
        return False
    if last in _CONTROL_ESCAPES and before[-2:-1] == b"\\":
        return not _escapes(before, len(before) - 1)  # \n and the like: a control character
    if before[-6:-4] == b"\\u":
        return not _escapes(before, len(before) - 5)  # no \u escape of an ASCII letter is left here
    return True


def _escapes(text: bytes, at: int) -> bool:
    """Whether text[at] is escaped: the run of backslashes just before it is odd."""
    run = 0
    while run < at and text[at - 1 - run] == 0x5C:
        run += 1
    return run % 2 == 1


def canonical_json_token(token: bytes) -> str:
    """A token from `split_json_tokens`, as `find_tokens` gives it."""
    return (token.replace(b"\\", b"") if b"\\" in token else token).decode("ascii")
