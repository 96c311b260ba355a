"""Checks on operator-defined rules before they reach a gateway, and the "test this rule" preview.

The engine (`masking.rules.compile_rule`) decides whether a pattern can run in linear time on both
backends. On top of that a rule must not match text that is plainly not an identifier (our own
tokens included, which would then be masked twice), and must match each of its own examples, as
the gateway will run it: through `engine.scan` with the built-in kinds, the most specific winning.
"""

from collections import Counter

from masking import rules
from masking.engine import KINDS, Match, scan
from masking.tokens import REDACTED_SUFFIX, format_token, is_valid_prefix

RuleError = rules.RuleError
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


def compile_rule(pattern: str, kind: str, prefix: str) -> rules.CustomRule:
    """The rule as `engine.scan(text, extra_rules=[...])` takes it; RuleError if the engine refuses it."""
    return rules.compile_rule(pattern, kind, prefix)


def find(compiled: rules.CustomRule, text: str) -> list[Match]:
    """The rule's own matches in `text`, as the gateway would find them."""
    return [match for match in scan(text, [compiled]) if match.kind == compiled.kind.name]


def validate(pattern: str, kind: str, prefix: str, examples: list[str]) -> rules.CustomRule:
    """The compiled rule; RuleError when it is unusable, too broad, or misses one of its examples."""
    compiled = compile_rule(pattern, kind, prefix)
    for sample in HARMLESS_SAMPLES:
        hits = find(compiled, sample)
        if hits:
            raise RuleError(f"Too broad: it matches {sample[hits[0].start : hits[0].end]!r} in {sample!r}.")
    if not examples:
        raise RuleError("Give at least one example the rule must match.")
    for example in examples:
        if not find(compiled, example):
            raise RuleError(f"It does not match its own example {example!r}.")
    return compiled


def check_names(kind: str, prefix: str) -> dict[str, str]:
    """Field errors for a custom kind name and token prefix (they must not shadow a built-in kind)."""
    errors = {}
    if not rules.KIND_NAME_RE.fullmatch(kind):
        errors["kind"] = "Lower-case letters, digits and underscores, starting with a letter."
    elif kind in KINDS:
        errors["kind"] = f"{kind} is a built-in kind; pick another name."
    if not is_valid_prefix(prefix) or prefix.endswith(REDACTED_SUFFIX):
        errors["prefix"] = "1 to 4 upper-case words (letters and digits) joined by single underscores."
    elif prefix in {k.prefix for k in KINDS.values()}:
        errors["prefix"] = f"{prefix} is the prefix of a built-in kind; pick another."
    return errors


def preview(pattern: str, kind: str, prefix: str, text: str) -> tuple[str, list[tuple[Match, str]]]:
    """What the gateway would mask in `text` with this rule added: the masked text (token numbers
    are illustrative) and each match with its text. Built-in kinds are included."""
    compiled = compile_rule(pattern, kind, prefix)
    text = text[:MAX_PREVIEW_CHARS]
    prefixes = {name: k.prefix for name, k in KINDS.items()} | {kind: prefix}
    tokens: dict[str, str] = {}
    counts: Counter = Counter()
    pieces, found, position = [], [], 0
    for match in scan(text, [compiled]):
        value = text[match.start : match.end]
        if value not in tokens:
            counts[prefixes[match.kind]] += 1
            tokens[value] = format_token(prefixes[match.kind], counts[prefixes[match.kind]])
        pieces += [text[position : match.start], tokens[value]]
        found.append((match, value))
        position = match.end
    pieces.append(text[position:])
    return "".join(pieces), found
