"""Operator-defined rules for the engine: `compile_rule(pattern, kind_name, prefix)`.

A rule is accepted only if both backends can run it safely: it compiles in Hyperscan (a linear-time
automaton) when that is installed, it has no look-around or back-reference and no repetition nested
in another (Python's `re`, the fallback, would backtrack), and it cannot match the empty string.
The result goes to `engine.scan(text, extra_rules=[...])`.
"""

import re
from dataclasses import dataclass

from masking import engine
from masking.patterns import KINDS, Kind, Rule
from masking.tokens import REDACTED_SUFFIX, is_valid_prefix

KIND_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,62}")
MAX_PATTERN_LEN = 1000
_REJECTED_OPS = {
    "ASSERT": "look-around",
    "ASSERT_NOT": "look-around",
    "GROUPREF": "a back-reference",
    "GROUPREF_EXISTS": "a conditional group",
    "ATOMIC_GROUP": "an atomic group",
    "POSSESSIVE_REPEAT": "a possessive repeat",
}
_REPEATS = {"MAX_REPEAT", "MIN_REPEAT"}


class RuleError(ValueError):
    """Why a pattern cannot be used; safe to show to the operator (it never echoes matched text)."""


@dataclass(frozen=True, slots=True)
class CustomRule:
    pattern: str
    kind: Kind
    rule: Rule


def compile_rule(pattern: str, kind_name: str, prefix: str) -> CustomRule:
    _check_names(kind_name, prefix)
    _check_pattern(pattern)
    rule = Rule(kind_name, pattern)
    if engine.hyperscan is not None:
        try:
            engine.compile_database([pattern])
        except engine.hyperscan.error as exc:
            raise RuleError(f"not accepted by the linear-time matcher: {exc}") from None
    return CustomRule(pattern, Kind(kind_name, prefix), rule)


def _check_names(kind_name: str, prefix: str) -> None:
    if not KIND_NAME_RE.fullmatch(kind_name) or kind_name in KINDS:
        raise RuleError("the kind name must be lower-case letters, digits and _ and not a built-in kind")
    builtin_prefixes = {kind.prefix for kind in KINDS.values()}
    if not is_valid_prefix(prefix) or prefix in builtin_prefixes or prefix.endswith(REDACTED_SUFFIX):
        raise RuleError("the prefix must be 1-4 upper-case words joined by _ (each <= 12 chars), not a built-in one")


def _check_pattern(pattern: str) -> None:
    if not pattern or len(pattern) > MAX_PATTERN_LEN:
        raise RuleError(f"the pattern must be 1 to {MAX_PATTERN_LEN} characters")
    if not pattern.isascii():
        raise RuleError("the pattern must be ASCII (write other characters as escapes of their UTF-8 bytes)")
    try:
        parsed = re._parser.parse(pattern)  # the stdlib's own parser: the tree `re` will run
    except re.error as exc:
        raise RuleError(f"not a valid regular expression: {exc}") from None
    if parsed.getwidth()[0] == 0:
        raise RuleError("the pattern can match the empty string")
    problem = _unsafe(parsed.data, inside_repeat=False)
    if problem:
        raise RuleError(f"the pattern uses {problem}, which cannot run in linear time")


def _unsafe(items, inside_repeat: bool) -> str | None:
    for op, argument in items:
        name = str(op)
        if name in _REJECTED_OPS:
            return _REJECTED_OPS[name]
        for child, in_repeat in _children(name, argument):
            if inside_repeat and name in _REPEATS and argument[1] > 1:
                return "a repetition inside another repetition"
            problem = _unsafe(child, inside_repeat or in_repeat)
            if problem:
                return problem
    return None


def _children(name: str, argument):
    if name in _REPEATS:
        yield argument[2], argument[1] > 1
    elif name == "SUBPATTERN":
        yield argument[3], False
    elif name == "BRANCH":
        for branch in argument[1]:
            yield branch, False
