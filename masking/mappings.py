"""Operator access to the mappings in Redis: look up, list, revoke, extend, export.

Key layout (docs/contracts.md): the default tenant keeps the seed-compatible names
`aws:mask:<original>` / `aws:unmask:<token>`; any other tenant `aws:t:<slug>:mask:...` /
`aws:t:<slug>:unmask:...`. Listing goes through bounded SCANs, never KEYS.
"""

import csv
import re
from dataclasses import dataclass, field
from typing import TextIO

import redis

from masking.connection import get_redis
from masking.store import mask_key, new_mapping_epoch, unmask_key

SCAN_COUNT = 500
MAX_SCANNED_KEYS = 20_000
PAGE_SIZE = 50

_TOKEN_RE = re.compile(r"^AWS_([A-Z0-9]+(?:_[A-Z0-9]+)*)_(\d{3,})$")
_GLOB_SPECIAL = re.compile(r"([\\*?\[\]^])")


@dataclass(frozen=True, slots=True)
class Mapping:
    token: str
    tenant: str
    ttl: int | None  # seconds left; None when the key never expires
    # Kept out of repr so a mapping in a log line or a traceback never shows it.
    original: str = field(repr=False)

    @property
    def prefix(self) -> str:
        return token_prefix(self.token)


@dataclass(frozen=True, slots=True)
class Page:
    mappings: list[Mapping]
    next_cursor: int  # 0 when the scan is complete
    scanned_limit_hit: bool  # the page stopped at MAX_SCANNED_KEYS, not at PAGE_SIZE


def token_prefix(token: str) -> str:
    """`AWS_IAM_ROLE_001` -> `IAM_ROLE`; empty for text that is not a token."""
    match = _TOKEN_RE.match(token)
    return match.group(1) if match else ""


def _token_order(token: str) -> tuple[str, int]:
    match = _TOKEN_RE.match(token)
    return (match.group(1), int(match.group(2))) if match else (token, 0)


def is_token(text: str) -> bool:
    return bool(_TOKEN_RE.match(text))


def _glob_escape(text: str) -> str:
    return _GLOB_SPECIAL.sub(r"\\\1", text)


def _ttl(value: int) -> int | None:
    return None if value < 0 else value


def find_by_token(token: str, tenant: str, client: redis.Redis | None = None) -> Mapping | None:
    found = _load_tokens([token], tenant, client or get_redis())
    return found[0] if found else None


def find_by_original(original: str, tenant: str, client: redis.Redis | None = None) -> Mapping | None:
    client = client or get_redis()
    token = client.get(mask_key(original, tenant))
    return find_by_token(token.decode(), tenant, client) if token else None


def find_by_tokens(tokens: list[str], tenant: str, client: redis.Redis | None = None) -> list[Mapping]:
    return _load_tokens(tokens, tenant, client or get_redis())


def _load_tokens(tokens: list[str], tenant: str, client: redis.Redis) -> list[Mapping]:
    """The live mappings among `tokens`, in order: one pipelined round trip."""
    with client.pipeline(transaction=False) as pipe:
        for token in tokens:
            key = unmask_key(token, tenant)
            pipe.get(key)
            pipe.ttl(key)
        replies = pipe.execute()
    found = []
    for token, original, ttl in zip(tokens, replies[::2], replies[1::2], strict=True):
        if original is not None:
            found.append(Mapping(token, tenant, _ttl(ttl), original.decode()))
    return found


def scan_page(
    tenant: str,
    *,
    original_prefix: str = "",
    prefix: str = "",
    cursor: int = 0,
    page_size: int = PAGE_SIZE,
    max_scanned: int = MAX_SCANNED_KEYS,
    client: redis.Redis | None = None,
) -> Page:
    """One page of a tenant's mappings, optionally only originals starting with `original_prefix`
    and only tokens of one token `prefix` (a kind). Resume with `cursor=page.next_cursor`.

    SCAN may return a key twice across pages and a page may hold a little more than
    `page_size` (a SCAN batch is never split); both are fine for an operator's listing."""
    client = client or get_redis()
    if original_prefix:
        pattern = f"{_glob_escape(mask_key(original_prefix, tenant))}*"
    elif prefix:
        pattern = f"{_glob_escape(unmask_key(f'AWS_{prefix}_', tenant))}[0-9]*"
    else:
        pattern = f"{_glob_escape(unmask_key('', tenant))}*"
    keys, next_cursor, limit_hit = _scan(client, pattern, cursor, page_size, max_scanned)
    if original_prefix:
        tokens = [t.decode() for t in client.mget(keys) if t is not None] if keys else []
    else:
        start = len(unmask_key("", tenant))
        tokens = [key.decode()[start:] for key in keys]
    if prefix:
        tokens = [t for t in tokens if token_prefix(t) == prefix]
    tokens = sorted(set(tokens), key=_token_order)
    return Page(_load_tokens(tokens, tenant, client) if tokens else [], next_cursor, limit_hit)


def _scan(client: redis.Redis, pattern: str, cursor: int, wanted: int, max_scanned: int) -> tuple[list, int, bool]:
    # COUNT starts at the page size (an unfiltered listing fills a page in one batch) and doubles
    # while batches come back sparse, so a selective pattern still gets through the keyspace.
    keys: list[bytes] = []
    scanned, count = 0, max(1, min(wanted, SCAN_COUNT))
    while True:
        cursor, batch = client.scan(cursor, match=pattern, count=count)
        keys.extend(batch)
        scanned += count
        if cursor == 0 or len(keys) >= wanted:
            return keys, cursor, False
        if scanned >= max_scanned:
            return keys, cursor, True
        count = min(count * 2, SCAN_COUNT)


def revoke(token: str, tenant: str, client: redis.Redis | None = None) -> bool:
    """Delete both directions of a mapping at once; False when there was none.

    WATCH makes it all-or-nothing against a concurrent get-or-create or revoke: the
    transaction is retried if either key changes between the read and the delete."""
    client = client or get_redis()
    token_key = unmask_key(token, tenant)

    def delete_both(pipe: redis.client.Pipeline) -> bool:
        original = pipe.get(token_key)
        if original is None:
            return False
        original_key = mask_key(original.decode(), tenant)
        pipe.watch(original_key)
        points_back = pipe.get(original_key) == token.encode()
        pipe.multi()
        pipe.delete(token_key)
        if points_back:
            pipe.delete(original_key)
        return True

    revoked = client.transaction(delete_both, token_key, value_from_callable=True)
    if revoked:
        new_mapping_epoch(client)  # workers stop using the mapping they remember (masking/cache.py)
    return revoked


def extend(token: str, tenant: str, seconds: int, client: redis.Redis | None = None) -> int | None:
    """Add `seconds` to both directions' TTL; returns the new TTL, None when there is no mapping.
    A mapping without expiry keeps none."""
    client = client or get_redis()
    token_key = unmask_key(token, tenant)

    def add_time(pipe: redis.client.Pipeline) -> int | None:
        original = pipe.get(token_key)
        if original is None:
            return None
        original_key = mask_key(original.decode(), tenant)
        pipe.watch(original_key)
        points_back = pipe.get(original_key) == token.encode()
        ttl = pipe.ttl(token_key)
        if ttl < 0:
            return _ttl(ttl)
        pipe.multi()
        pipe.expire(token_key, ttl + seconds)
        if points_back:
            pipe.expire(original_key, ttl + seconds)
        return ttl + seconds

    return client.transaction(add_time, token_key, value_from_callable=True)


CSV_HEADER = ["token", "kind", "tenant", "ttl_seconds", "original"]


def write_csv(out: TextIO, mappings: list[Mapping], kinds: dict[str, str], with_originals: bool) -> None:
    """CSV of `mappings`; the original column says "hidden" unless `with_originals`.
    Cells that a spreadsheet would read as a formula are quoted with a leading apostrophe."""
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for m in mappings:
        original = _spreadsheet_safe(m.original) if with_originals else "hidden"
        ttl = "" if m.ttl is None else m.ttl
        writer.writerow([m.token, kinds.get(m.prefix, ""), m.tenant, ttl, original])


def _spreadsheet_safe(value: str) -> str:
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
