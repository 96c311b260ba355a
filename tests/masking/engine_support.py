"""Helpers for the engine tests: every test runs against each available backend."""

from masking import engine

BACKENDS = engine.available_backends()


def found(text: str, backend: str, extra_rules=()) -> list[tuple[str, str]]:
    """(matched text, kind) for each match, in order."""
    return [(text[m.start : m.end], m.kind) for m in engine.scan(text, extra_rules, backend=backend)]


def values(text: str, backend: str) -> list[str]:
    return [value for value, _ in found(text, backend)]


def masked(text: str, backend: str) -> str:
    """The text with every match replaced by `<kind>`: shows exactly what is kept around each one."""
    pieces, position = [], 0
    for match in engine.scan(text, backend=backend):
        pieces += [text[position : match.start], f"<{match.kind}>"]
        position = match.end
    return "".join(pieces) + text[position:]
