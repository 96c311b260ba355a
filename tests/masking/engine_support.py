"""Helpers for the engine tests: every test runs against each available backend."""

import random

import pytest

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


def assert_backends_agree(pieces: list[str], seed: int, texts: int, most: int) -> None:
    """Hyperscan and the Python backend find the same matches in `texts` texts made of 1 to `most`
    of `pieces` drawn at random (`seed`: the same texts every run)."""
    if len(BACKENDS) < 2:
        pytest.skip("hyperscan is not installed")
    rng = random.Random(seed)
    for _ in range(texts):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, most)))
        assert engine.scan(text, backend="hyperscan") == engine.scan(text, backend="python"), text
