"""Checks on operator-defined rules before they reach a gateway, and the "test this rule" preview.

A rule must compile in the engine's linear-time syntax (no back-references or look-around, so no
catastrophic backtracking on a hostile prompt), must not match text that is plainly not an
identifier (including our own tokens, which would then be masked twice), and must match each of
its own examples.
"""

import re
from dataclasses import dataclass

import hyperscan

from masking.engine import KINDS

KIND_RE = re.compile(r"^[a-z][a-z0-9_]{1,62}[a-z0-9]$")
PREFIX_RE = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$")
MAX_PREVIEW_CHARS = 100_000

HARMLESS_SAMPLES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please summarise the following error and suggest a fix.",
    "hello world",
    "a",
    "0",
    "42",
    "3.14159",
    "2026-11-25",
    "2026-11-25T21:32:10Z",
    "21:32:10",
    "HTTP/1.1 200 OK",
    "GET /index.html",
    "https://example.com/docs/getting-started",
    "/usr/local/bin/python3",
    "user@example.com",
    '{"name": "value", "count": 1, "enabled": true}',
    "def main():\n    return 0",
    "SELECT id, name FROM users WHERE id = 1;",
    "Error: connection refused (retrying in 5 seconds)",
    "us-east-1",
    "t3.micro",
    "AWS_EC2_001",
    "AWS_IAM_ROLE_042",
    "AWS_SECRET_KEY_REDACTED",
    " \t\n",
]


class RuleError(ValueError):
    """A rule the engine cannot or should not use; the message is shown to the operator."""


@dataclass(frozen=True, slots=True)
class Found:
    start: int
    end: int
    text: str


def compile_pattern(pattern: str) -> hyperscan.Database:
    """The pattern compiled as the engine runs it (Hyperscan: linear time); RuleError if it cannot be."""
    database = hyperscan.Database()
    try:
        database.compile(
            expressions=[pattern.encode()],
            ids=[0],
            flags=[hyperscan.HS_FLAG_SOM_LEFTMOST | hyperscan.HS_FLAG_UTF8],
        )
    except hyperscan.error as exc:
        raise RuleError(f"Not valid in the engine's linear-time syntax: {exc}") from None
    return database


def find(database: hyperscan.Database, text: str) -> list[Found]:
    """Leftmost-longest, non-overlapping matches, as the engine replaces them."""
    data = text.encode()
    longest: dict[int, int] = {}

    def on_match(_id, start, end, _flags, _context):
        longest[start] = max(end, longest.get(start, end))

    database.scan(data, match_event_handler=on_match)
    found, position = [], 0
    for start in sorted(longest):
        if start >= position:
            end = longest[start]
            found.append(Found(len(data[:start].decode()), len(data[:end].decode()), data[start:end].decode()))
            position = end
    return found


def validate(pattern: str, examples: list[str]) -> None:
    """RuleError when the rule is unusable: bad syntax, matches harmless text, misses an example."""
    database = compile_pattern(pattern)
    for sample in HARMLESS_SAMPLES:
        hits = find(database, sample)
        if hits:
            raise RuleError(f"Too broad: it matches {hits[0].text!r} in the harmless sample {sample!r}.")
    if not examples:
        raise RuleError("Give at least one example the rule must match.")
    for example in examples:
        if not find(database, example):
            raise RuleError(f"It does not match its own example {example!r}.")


def check_names(kind: str, prefix: str) -> dict[str, str]:
    """Field errors for a custom kind name and token prefix (they must not shadow a built-in kind)."""
    errors = {}
    if not KIND_RE.match(kind):
        errors["kind"] = "Lower-case letters, digits and underscores, starting with a letter."
    elif kind in KINDS:
        errors["kind"] = f"{kind} is a built-in kind; pick another name."
    if not PREFIX_RE.match(prefix) or prefix.endswith("REDACTED"):
        errors["prefix"] = "Upper-case letters and digits, words joined by single underscores."
    elif prefix in {k.prefix for k in KINDS.values()}:
        errors["prefix"] = f"{prefix} is the prefix of a built-in kind; pick another."
    return errors


def preview(pattern: str, prefix: str, text: str) -> tuple[str, list[Found]]:
    """What the rule would mask in `text`: the masked text (illustrative token numbers) and the matches."""
    found = find(compile_pattern(pattern), text[:MAX_PREVIEW_CHARS])
    numbers: dict[str, int] = {}
    pieces, position = [], 0
    for hit in found:
        number = numbers.setdefault(hit.text, len(numbers) + 1)
        pieces += [text[position : hit.start], f"AWS_{prefix or 'CUSTOM'}_{number:03d}"]
        position = hit.end
    pieces.append(text[position:MAX_PREVIEW_CHARS])
    return "".join(pieces), found


@dataclass(frozen=True, slots=True)
class EngineRule:
    """A saved rule as handed to `engine.scan(text, extra_rules=...)`."""

    kind: str
    prefix: str
    database: hyperscan.Database


def engine_rule(rule) -> EngineRule:
    return EngineRule(rule.kind, rule.prefix, compile_pattern(rule.pattern))
