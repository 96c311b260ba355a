"""Token grammar: `AWS_<PREFIX>_<NNN>` (see docs/contracts.md).

PREFIX is one to four upper-case segments joined by underscores, each starting with a letter (so the
number, all digits, is never mistaken for part of it); NNN has at least 3 digits and grows past 999.
A model may rewrite `_` as `\\_` (Markdown) and that again as `\\\\_` inside JSON: both are recognised
and canonicalised. Redaction markers (`AWS_<PREFIX>_REDACTED`) are not tokens: never restored.
"""

import re
from typing import NamedTuple

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

# A token as it stands in a JSON string: each backslash of an escaped underscore is doubled. No left
# boundary here, so the regex engine jumps from one "AWS" to the next; `split_json_tokens` checks it,
# since in JSON the character before a token may be written as an escape (`\n`).
_JSON_TOKEN_SPLIT = re.compile(
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
    if b"\\u00" in document and _ASCII_ESCAPE.search(document):
        return None
    if b"AWS" not in document:
        return [document]
    parts = _JSON_TOKEN_SPLIT.split(document)
    if len(parts) == 1:
        return parts
    out, word = [parts[0]], _WORD_BYTES
    for i in range(1, len(parts), 2):
        before = out[-1]
        if before and before[-1] not in word:  # the usual case, decided inline
            out += (parts[i], parts[i + 1])
        elif _word_before(before, len(out) > 1):  # "xAWS_EC2_001": part of a word, not a token
            out[-1] = before + parts[i] + parts[i + 1]
        else:
            out += (parts[i], parts[i + 1])
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
