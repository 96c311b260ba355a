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
