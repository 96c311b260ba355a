"""Find AWS identifiers in text: `scan(text) -> [Match(start, end, kind)]`, pure, no I/O.

Two backends give the same answers. "hyperscan" runs every rule's gate in one linear-time pass over
the UTF-8 bytes and confirms each hit with the rule's bounded regex; "python" runs the bounded
regexes alone (used when the hyperscan module cannot be imported, or when MASKING_ENGINE=python).
Overlaps are resolved in one pass: leftmost start, then the most specific rule, then the longest.
"""

import os
import re
import threading
from collections.abc import Iterable, Sequence
from functools import lru_cache
from itertools import compress, islice, repeat
from operator import gt, itemgetter, neg
from typing import NamedTuple

from masking.patterns import KINDS, POLICIES, PROTECT, RULES, Kind, Rule

try:
    import hyperscan
except ImportError:  # pragma: no cover - exercised on platforms without the wheel
    hyperscan = None

__all__ = ["BACKENDS", "KINDS", "POLICIES", "Kind", "Match", "available_backends", "default_backend", "scan"]

BACKENDS = ("hyperscan", "python")
ENV_BACKEND = "MASKING_ENGINE"


class Match(NamedTuple):
    start: int
    end: int
    kind: str


def available_backends() -> tuple[str, ...]:
    return BACKENDS if hyperscan is not None else ("python",)


def default_backend() -> str:
    wanted = os.environ.get(ENV_BACKEND, "").strip().lower()
    if wanted not in ("", *BACKENDS):
        raise ValueError(f"{ENV_BACKEND} must be one of {', '.join(BACKENDS)}")
    return "python" if wanted == "python" or hyperscan is None else "hyperscan"


class RuleSet:
    """Rules compiled once: the Python regexes always, one Hyperscan database when available."""

    def __init__(self, rules: Sequence[Rule], priority_base: int = 0):
        self.rules = tuple(rules)
        self.priority_base = priority_base
        self.regexes = [re.compile(rule.regex.encode()) for rule in self.rules]
        self.valued = [rx.groupindex.get("v", 0) for rx in self.regexes]
        # Rules whose Hyperscan hits are final: no confirming regex, classifier or trimming.
        self.plain = [
            rule.kind if rule.gate is None and rule.classify is None and not rule.trim else None for rule in self.rules
        ]
        self.lead = [(rule.gate or "").startswith("(?:^|") for rule in self.rules]
        # `rule.run` as a translation table: its bytes to 1, all others to 0.
        self.runs = [bytes(int(c in rule.run) for c in range(256)) if rule.run else None for rule in self.rules]
        # Where the callback puts each rule's hits: list 0 when they are final as they are (built-in
        # plain rules only: their priority is their rule id), 1 when each is confirmed in turn, 2...
        # one list per rule whose hits are turned into candidates all at once (`from_gates`).
        builtin = priority_base == 0
        self.batched = [rule_id for rule_id, rule in enumerate(self.rules) if rule.from_gates]
        self.route = [
            2 + self.batched.index(rule_id) if rule.from_gates else 0 if builtin and kind else 1
            for rule_id, (rule, kind) in enumerate(zip(self.rules, self.plain, strict=True))
        ]
        # Hits come as candidates `(start, rule id, -end, kind)`; kind is None but for plain rules.
        kinds = self.plain if builtin else [None] * len(self.rules)
        self.collect = lambda rule_id, start, end, flags, lists: lists[rule_id].append(
            (start, rule_id, -end, kinds[rule_id])
        )
        self._db = None
        self._local = threading.local()

    def database(self):
        if self._db is None:
            self._db = compile_database(
                [rule.gate or rule.regex for rule in self.rules], [rule.lookback == 0 for rule in self.rules]
            )
        return self._db

    def hit_lists(self) -> tuple[list[list], list[list]]:
        """This thread's lists for the callback (one per route), and the list for each rule id."""
        lists = getattr(self._local, "lists", None)
        if lists is None:
            lists = self._local.lists = [[] for _ in range(2 + len(self.batched))]
            self._local.routes = list(map(lists.__getitem__, self.route))
        return lists, self._local.routes

    def scratch(self):
        # Hyperscan releases the GIL while scanning: each thread needs its own scratch space.
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = hyperscan.Scratch(self.database())
        return scratch


def compile_database(expressions: Sequence[str], leftmost: Sequence[bool] | None = None):
    """One Hyperscan database; `leftmost[i]`: report where expression i starts (default: all)."""
    leftmost = leftmost or [True] * len(expressions)
    database = hyperscan.Database()
    database.compile(
        expressions=[expression.encode() for expression in expressions],
        ids=list(range(len(expressions))),
        flags=[hyperscan.HS_FLAG_SOM_LEFTMOST if som else 0 for som in leftmost],
    )
    return database


_BUILTIN = RuleSet(RULES)
_default_backend = None


def _choose_default() -> str:
    global _default_backend
    _default_backend = default_backend()
    return _default_backend


def warm_up() -> None:
    """Compile the built-in rules now (~1 s for Hyperscan's database), not on the first request."""
    if (_default_backend or _choose_default()) == "hyperscan":
        _BUILTIN.scratch()


# Every built-in identifier contains one of these; text without any of them cannot match.
_MAYBE = re.compile(r"[0-9:=-]|ucket|UCKET|A[A-Z]{2}A|oGZXIvYXdz|cloudfront|(?i:zone)")


def scan(text: str, extra_rules: Iterable = (), backend: str | None = None) -> list[Match]:
    """The identifiers in `text`, in order, non-overlapping. `extra_rules`: see masking.rules."""
    extra = tuple(extra_rules)
    backend = backend or _default_backend or _choose_default()
    # A short text with no character any identifier needs costs less to rule out here than to scan;
    # a long one is scanned faster by Hyperscan than by this regex.
    if not extra and (len(text) < 512 or backend == "python") and not _MAYBE.search(text):
        return []
    is_ascii = text.isascii()
    data = text.encode("ascii") if is_ascii else text.encode("utf-8", "surrogatepass")
    candidates: list[tuple] = []
    protected: list[tuple[int, int]] = []
    find = _hyperscan_candidates if backend == "hyperscan" else _python_candidates
    find(_BUILTIN, data, candidates, protected)
    if extra:
        compiled = tuple(rule for rule in extra if hasattr(rule, "rule"))
        if compiled:
            find(_extra_rule_set(compiled), data, candidates, protected)
        for index, rule in enumerate(rule for rule in extra if not hasattr(rule, "rule")):
            _database_candidates(rule, len(RULES) + len(compiled) + index, data, candidates)
    matches = _resolve(candidates, protected)
    return matches if is_ascii else _to_text_offsets(data, matches)


@lru_cache(maxsize=64)
def _extra_rule_set(custom_rules: tuple) -> RuleSet:
    return RuleSet([custom.rule for custom in custom_rules], priority_base=len(RULES))


def _database_candidates(rule, priority: int, data: bytes, candidates: list) -> None:
    """A rule handed over as a compiled Hyperscan database (`.kind`, `.database`): leftmost-longest."""
    hits: list[tuple[int, int, int]] = []
    rule.database.scan(data, match_event_handler=_collect, context=hits, scratch=_scratch_for(rule.database))
    candidates += [(start, priority, neg_end, rule.kind) for start, _, neg_end in hits]


_foreign_scratch = threading.local()


def _scratch_for(database):
    cache = getattr(_foreign_scratch, "by_id", None)
    if cache is None or len(cache) > 64:
        cache = _foreign_scratch.by_id = {}
    entry = cache.get(id(database))
    if entry is None or entry[0] is not database:
        entry = cache[id(database)] = (database, hyperscan.Scratch(database))
    return entry[1]


def _collect(rule_id: int, start: int, end: int, flags: int, hits: list) -> None:
    # Shaped as a candidate: (start, priority, -end); sorted, the leftmost, most specific, longest first.
    hits.append((start, rule_id, -end))


def _hyperscan_candidates(rule_set: RuleSet, data: bytes, candidates: list, protected: list) -> None:
    # The callback sorts the hits out as they come: dense input holds one identifier every 8 bytes.
    lists, routes = rule_set.hit_lists()
    try:
        rule_set.database().scan(data, match_event_handler=rule_set.collect, context=routes, scratch=rule_set.scratch())
        _from_hits(rule_set, data, lists, candidates, protected)
    finally:
        for hits in lists:
            hits.clear()


def _from_hits(rule_set: RuleSet, data: bytes, lists: list[list], candidates: list, protected: list) -> None:
    candidates += lists[0]
    for rule_id, gates in zip(rule_set.batched, lists[2:], strict=True):
        if gates:
            rule = rule_set.rules[rule_id]
            found = rule.from_gates(data, gates, rule_set.priority_base + rule_id)
            if rule.kind == PROTECT:
                protected += [(start, -neg_end) for start, _, neg_end, _ in found]
            else:
                candidates += found
    hits = lists[1]
    if not hits:
        return
    hits.sort()  # by start, then for each rule the longest gate first: its regex sees the widest window
    plain, base, lead = rule_set.plain, rule_set.priority_base, rule_set.lead
    rules, regexes, valued, size = rule_set.rules, rule_set.regexes, rule_set.valued, len(data)
    confirmed_until: dict[int, int] = {}
    ends_only = []
    for start, rule_id, neg_end, _ in hits:
        kind = plain[rule_id]
        if kind:
            candidates.append((start, base + rule_id, neg_end, kind))
            continue
        rule = rules[rule_id]
        end = -neg_end
        if rule.lookback:
            ends_only.append((end, rule_id))
            continue
        if rule.gate is None:
            _add(rule_set, rule_id, rule, data, start, end, candidates, protected)
            continue
        if start < confirmed_until.get(rule_id, 0):
            continue  # inside what this rule already matched: the same identifier again
        if rule.whole is not None and (span := rule.whole(data, start, end)) is not None:
            confirmed_until[rule_id] = span[1]
            _add(rule_set, rule_id, rule, data, *span, candidates, protected)
            continue
        # The gate starts where the match does, or one byte before (a consumed context byte).
        regex, limit = regexes[rule_id], min(size, end + rule.reach)
        if start and lead[rule_id]:  # the byte at `start` is context, the match is one further
            match = regex.match(data, start + 1, limit) or regex.match(data, start, limit)
        else:
            match = regex.match(data, start, limit) or regex.match(data, start + 1, limit)
        while match is not None:
            confirmed_until[rule_id] = stop = match.end()
            _add(rule_set, rule_id, rule, data, *match.span(valued[rule_id]), candidates, protected)
            if end - stop <= 2:
                break  # the usual case: one identifier per gate
            match = regex.search(data, stop, limit)  # a run (ARN heads back to back): search on inside it
    if ends_only:
        _confirm_ends(rule_set, data, sorted(ends_only), candidates, protected)


def _confirm_ends(rule_set: RuleSet, data: bytes, ends: list, candidates: list, protected: list) -> None:
    """Rules whose gate only tells where a match ends. The regex searches from `lookback` bytes
    before each end exactly as the Python backend searches the whole text (same matches), but
    only near the gates: a match never ends past the last gate of its rule (+ reach)."""
    rules, regexes, valued = rule_set.rules, rule_set.regexes, rule_set.valued
    last_end = {rule_id: end for end, rule_id in ends}
    searched_until: dict[int, int] = {}
    for end, rule_id in ends:
        rule, position = rules[rule_id], searched_until.get(rule_id, 0)
        if end <= position:
            continue
        regex, limit = regexes[rule_id], min(len(data), last_end[rule_id] + rule.reach)
        position = max(position, end - rule.lookback)
        if rule.run:  # past the gate's terminator (2 bytes at most), the identifier reaches back to
            # the last byte that cannot be part of it
            boundary = position + data[position : end - 2].translate(rule_set.runs[rule_id]).rfind(0) + 1
            position = max(position, boundary - rule.label)
        while (match := regex.search(data, position, limit)) is not None:
            if limit < len(data) and match.end() + 2 > limit:  # what follows the match was cut off (a
                # lookahead saw the end of the text): look at it whole, as the Python backend does
                start = match.start()
                if (match := regex.match(data, start)) is None:
                    position = start + 1
                    continue
            kept = _add(rule_set, rule_id, rule, data, *match.span(valued[rule_id]), candidates, protected)
            position = max(match.end(), match.start() + 1) if kept else match.start() + 1
            if match.end() >= end - 2:  # reached this gate (which may have consumed a terminator)
                break
        else:
            position = limit
        searched_until[rule_id] = position


def _python_candidates(rule_set: RuleSet, data: bytes, candidates: list, protected: list) -> None:
    lowered = None
    for rule_id, rule in enumerate(rule_set.rules):
        if rule.needles:
            lowered = data.lower() if lowered is None else lowered
            if not any(needle in lowered for needle in rule.needles):
                continue
        regex, group, position = rule_set.regexes[rule_id], rule_set.valued[rule_id], 0
        while (match := regex.search(data, position)) is not None:
            start, end = match.span(group)
            kept = _add(rule_set, rule_id, rule, data, start, end, candidates, protected)
            position = max(match.end(), match.start() + 1) if kept else match.start() + 1


def _add(rule_set: RuleSet, rule_id: int, rule: Rule, data: bytes, start: int, end: int, candidates, protected):
    if rule.trim:
        while end > start and data[end - 1] in rule.trim:
            end -= 1
    kind = rule.classify(data, start, end) if rule.classify is not None else rule.kind
    if kind:
        priority = rule_set.priority_base + rule_id
        candidates.append((start, priority, -end, kind))
        if rule.more is not None:  # the rest of a list the label starts (both backends come here)
            candidates += [(begin, priority, -stop, kind) for begin, stop in rule.more(data, start, end)]
    elif kind == PROTECT:
        protected.append((start, end))
    return kind is not None


_first, _third, _fourth = itemgetter(0), itemgetter(2), itemgetter(3)


def _resolve(candidates: list, protected: list) -> list[Match]:
    """Candidates are (start, priority, -end, kind): sorted, the first one at each place wins and
    the ones it overlaps lose. Done in C (map, compress) but the loop over overlaps, if any."""
    candidates.sort()
    if len(candidates) < 16 and not protected:  # a short string: the columns would cost more than they save
        spans, taken_until = [], 0
        for start, _, neg_end, kind in candidates:
            if start >= taken_until:
                taken_until = -neg_end
                spans.append(_new_match(Match, (start, taken_until, kind)))
        return spans
    starts = list(map(_first, candidates))
    ends = list(map(neg, map(_third, candidates)))
    spans = zip(starts, ends, map(_fourth, candidates), strict=True)
    if protected:
        spans = compress(spans, _unprotected(starts, ends, _merge(protected)))
    elif any(map(gt, ends, islice(starts, 1, None))):
        spans = compress(spans, _first_at_each_place(starts, ends))
    return list(map(_new_match, repeat(Match), spans))


def _first_at_each_place(starts: list[int], ends: list[int]) -> list[bool]:
    keep, taken_until = [], 0
    append = keep.append
    for start, end in zip(starts, ends, strict=True):
        if start >= taken_until:
            taken_until = end
            append(True)
        else:
            append(False)
    return keep


def _unprotected(starts: list[int], ends: list[int], protected: list[tuple[int, int]]) -> list[bool]:
    """The same, and no span may overlap a protected one."""
    keep, taken_until, guard, guards = [], 0, 0, len(protected)
    for start, end in zip(starts, ends, strict=True):
        if start < taken_until:
            keep.append(False)
            continue
        while guard < guards and protected[guard][1] <= start:
            guard += 1
        if guard < guards and protected[guard][0] < end:
            keep.append(False)
            continue
        keep.append(True)
        taken_until = end
    return keep


_new_match = tuple.__new__


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    spans.sort()
    merged = [spans[0]]
    for start, end in spans[1:]:
        if start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _to_text_offsets(data: bytes, spans: list[Match]) -> list[Match]:
    """Byte offsets to str offsets, widened to whole characters, in one pass over the text."""
    matches, byte_pos, char_pos, size = [], 0, 0, len(data)

    def char_offset(offset: int) -> int:
        nonlocal byte_pos, char_pos
        char_pos += len(data[byte_pos:offset].decode("utf-8", "surrogatepass"))
        byte_pos = offset
        return char_pos

    for start, end, kind in spans:
        while start > 0 and data[start] & 0xC0 == 0x80:
            start -= 1
        while end < size and data[end] & 0xC0 == 0x80:
            end += 1
        matches.append(Match(char_offset(start), char_offset(end), kind))
    return matches
