"""What a gateway worker remembers between requests, so a conversation is not masked from scratch
on every turn.

A client such as Claude Code sends the whole conversation again on every turn: the system prompt,
the tool definitions and every earlier message, identical, with one new message at the end. The
same identifiers come back turn after turn. Two per-process caches make that repetition cheap:

- `MappingCache`: original <-> token, per tenant, as the store's mask script returned them. A
  request whose identifiers are all known skips the script (and the answer skips the MGET). An
  entry is used for `MAPPING_CACHE_SECONDS` at most (and never for more than half the tenant's TTL),
  after which the script runs again and refreshes the mapping's TTL in Redis: a mapping in use
  still never expires.
- `ScanCache`: text -> the engine's matches, per rule set (with what masking.masker made of them:
  the plan under a policy, the masked form with the tokens it got, each redone when those change).
  The engine is a pure function of the text and the rules, so an unchanged message is not scanned
  again.

Both are bounded. The mapping cache belongs to a *mapping epoch*: a random value in Redis
(`aws:mapping:epoch`) that every masked request reads before it forwards anything, which also
proves Redis is reachable (fail closed). Revoking a mapping or restoring a backup writes a new
epoch; a Redis that lost its data has none and gets a new one. A changed epoch empties the
mapping cache, so no worker goes on using a mapping Redis no longer has. Within one request, a
mapping revoked after that read is still used until the request ends.
"""

import time
from collections.abc import Iterable, Sequence

MAPPING_CACHE_SECONDS = 60.0
MAX_MAPPINGS = 100_000  # per worker, all tenants together; past it the cache starts over
MAX_SCANNED_CHARS = 32 * 1024 * 1024  # characters of cached texts and their masked forms, per worker
MIN_SCANNED_CHARS = 256  # shorter texts are cheaper to scan than to remember


class MappingCache:
    """original -> token and token -> original per tenant, for the current mapping epoch."""

    def __init__(self, max_entries: int = MAX_MAPPINGS) -> None:
        self.max_entries = max_entries
        self.epoch: bytes | None = None
        # Moves whenever an original may have lost its token or got another one (the cache emptied,
        # an entry overwritten): what was masked under one version, while its entries are still in
        # date, is what masking again would give (masking.masker remembers masked texts by it).
        self.version = 0
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}  # (tenant, original) -> (token, until)
        self._originals: dict[tuple[str, str], tuple[str, float]] = {}  # (tenant, token) -> (original, until)

    def __len__(self) -> int:
        return len(self._tokens)

    def use_epoch(self, epoch: bytes) -> None:
        """Forget everything learnt under another epoch."""
        if epoch != self.epoch:
            self.clear()
            self.epoch = epoch

    def clear(self) -> None:
        self._tokens.clear()
        self._originals.clear()
        self.version += 1

    def tokens(self, tenant: str, originals: Iterable[str]) -> list[str] | None:
        """The token of every original, or None as soon as one is unknown or due for a refresh."""
        found = self.tokens_until(tenant, originals)
        return None if found is None else found[0]

    def tokens_until(self, tenant: str, originals: Iterable[str]) -> tuple[list[str], float] | None:
        """`tokens()`, and until when (time.monotonic()) all of them may be used."""
        now = time.monotonic()
        found = []
        until = float("inf")
        get = self._tokens.get
        for original in originals:
            entry = get((tenant, original))
            if entry is None or entry[1] < now:
                return None
            found.append(entry[0])
            if entry[1] < until:
                until = entry[1]
        return found, until

    def originals(self, tenant: str, tokens: Iterable[str]) -> dict[str, str]:
        """token -> original for the tokens known here (the others must be looked up)."""
        now = time.monotonic()
        found = {}
        get = self._originals.get
        for token in tokens:
            entry = get((tenant, token))
            if entry is not None and entry[1] >= now:
                found[token] = entry[0]
        return found

    def remember(self, tenant: str, originals: Sequence[str], tokens: Sequence[str], ttl_seconds: int) -> float:
        """Mappings the store just confirmed (and refreshed): usable for a while, well inside their
        TTL. Returns until when (time.monotonic())."""
        if len(self._tokens) + len(originals) > self.max_entries:
            self.clear()
        until = _until(ttl_seconds)
        moved = False
        for original, token in zip(originals, tokens, strict=True):
            key = (tenant, original)
            entry = self._tokens.get(key)
            moved = moved or (entry is not None and entry[0] != token)
            self._tokens[key] = (token, until)
            self._originals[(tenant, token)] = (original, until)
        if moved:
            self.version += 1
        return until

    def remember_originals(self, tenant: str, found: dict[str, str], ttl_seconds: int) -> None:
        """token -> original pairs read from the store (restoring an answer)."""
        if len(self._originals) + len(found) > self.max_entries:
            self.clear()
        until = _until(ttl_seconds)
        for token, original in found.items():
            self._originals[(tenant, token)] = (original, until)


def _until(ttl_seconds: int) -> float:
    """How long a mapping the store just confirmed may be used here: well inside its TTL."""
    return time.monotonic() + min(MAPPING_CACHE_SECONDS, ttl_seconds / 2)


class ByEnds:
    """value per (scope, a long string or bytes), bounded by the size its entries are said to cost.

    Looked up by the string's length and its two ends, then compared whole: a string read from a
    request is a new object each time, and hashing all of it (siphash over 32 KB for 16 K
    characters outside Latin-1) costs several times the comparison, which stops at the first
    difference. Two strings that share scope, length and ends share the slot: the last one put keeps it."""

    EDGE = 48  # characters (or bytes) taken from each end for the key

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.size = 0
        self._found: dict[tuple, tuple] = {}  # key -> (the whole string, its value)

    def __len__(self) -> int:
        return len(self._found)

    def get(self, scope, whole):
        entry = self._found.get((scope, len(whole), whole[: self.EDGE], whole[-self.EDGE :]))
        if entry is None or (entry[0] is not whole and entry[0] != whole):
            return None
        return entry[1]

    def put(self, scope, whole, value, cost: int) -> None:
        """Remember `value`, unless its `cost` is over a quarter of the bound; past the bound, start over."""
        if cost > self.max_size // 4:
            return
        if self.size + cost > self.max_size:
            self.clear()
        self._found[(scope, len(whole), whole[: self.EDGE], whole[-self.EDGE :])] = (whole, value)
        self.size += cost

    def clear(self) -> None:
        self._found.clear()
        self.size = 0


class ScanCache(ByEnds):
    """The engine's answer per (rule set, text), for texts of MIN_SCANNED_CHARS or more, bounded by
    the characters it holds."""

    def __init__(self, max_chars: int = MAX_SCANNED_CHARS) -> None:
        super().__init__(max_chars)

    def get(self, rules: tuple, text: str):
        return super().get(rules, text) if len(text) >= MIN_SCANNED_CHARS else None

    def put(self, rules: tuple, text: str, found) -> None:  # the text, and its masked form kept beside the matches
        if len(text) >= MIN_SCANNED_CHARS:
            super().put(rules, text, found, 2 * len(text))


mappings = MappingCache()
scans = ScanCache()


class Generation:
    """A value read from Redis that says whether something a worker remembers is still good: each
    change of it (the first read included) starts a new generation."""

    def __init__(self) -> None:
        self.value: bytes | None = None
        self.number = 0

    def observe(self, value: bytes | None) -> None:
        if value != self.value or self.number == 0:
            self.value = value
            self.number += 1


# `aws:auth:version`, read with the mapping epoch: the API clients the proxy remembers (masking/proxy.py)
# are looked up again once it moves (a client or tenant was changed, deactivated or deleted).
api_keys = Generation()
