"""Unmask texts: tokens back to their originals, for the REST API, the CLI and the proxy.

Unknown tokens (another tenant's, expired, revoked, or never issued) stay as they are and are
reported. One call makes one store round trip at most (the proxy's async calls first use what the
worker remembers, masking/cache.py) and publishes one unmasking event with counts by kind, never an
original.
"""

import functools
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from masking import cache, events, store
from masking.masker import byte_size, kind_of, string_slots, with_strings
from masking.models import DEFAULT_TENANT
from masking.tokens import canonical, split_tokens


@dataclass(slots=True)
class UnmaskResult:
    texts: list[str]
    unresolved: list[str]  # tokens not found for this tenant, each once, in order of appearance
    restored: int = 0


async def alookup_originals(tokens: list[str], tenant: store.TenantRef) -> dict[str, str]:
    """token -> original, from what this worker remembers (masking/cache.py), else from the store."""
    slug = store.tenant_slug(tenant)
    found = cache.mappings.originals(slug, tokens)
    if len(found) == len(tokens):  # every token remembered (and none named twice)
        return found
    missing = [token for token in tokens if token not in found]
    if missing:
        stored = await store.alookup_originals(missing, tenant)
        cache.mappings.remember_originals(slug, stored, await store.attl_seconds(tenant))
        found.update(stored)
    return found


def _find_all(texts: list[str]) -> tuple[list[list[str]], list[str]]:
    """Each text cut around its tokens, and every token named, once each, in order of appearance."""
    pieces = [split_tokens(text) for text in texts]
    unique = dict.fromkeys(canonical(token) for parts in pieces for token in parts[1::2])
    return pieces, list(unique)


def _apply_unmasking(pieces: list[list[str]], unique, originals) -> tuple[UnmaskResult, Counter, int]:
    restored_tokens: Counter = Counter()
    unresolved_count = 0
    texts = []
    for parts in pieces:  # [text, token, text, ...]: each token replaced in place, then joined
        for i in range(1, len(parts), 2):
            token = canonical(parts[i])
            original = originals.get(token)
            if original is None:
                unresolved_count += 1
            else:
                restored_tokens[token] += 1
                parts[i] = original
        texts.append(parts[0] if len(parts) == 1 else "".join(parts))
    restored_by_kind: Counter = Counter()
    for token, count in restored_tokens.items():
        restored_by_kind[kind_of(token)] += count
    result = UnmaskResult(
        texts=texts,
        unresolved=[token for token in unique if token not in originals],
        restored=sum(restored_tokens.values()),
    )
    return result, restored_by_kind, unresolved_count


def _unmasking_event(result, by_kind, unresolved, texts, tenant, source, request_id, started) -> tuple[dict, dict]:
    event = events.build_event(
        events.UNMASKING,
        tenant=store.tenant_slug(tenant),
        source=source,
        request_id=request_id,
        counts_by_kind=by_kind,
        unresolved=unresolved,
        duration_ms=(time.perf_counter() - started) * 1000,
        bytes=byte_size(texts),
    )
    return event, store.unmask_counters(result.restored, unresolved)


def unmask_texts(
    texts: list[str], tenant: store.TenantRef = DEFAULT_TENANT, source: str = "api", request_id: str | None = None
) -> UnmaskResult:
    """Restore every token this tenant owns; unknown tokens stay as they are and are reported."""
    started = time.perf_counter()
    pieces, unique = _find_all(texts)
    result, by_kind, unresolved = _apply_unmasking(pieces, unique, store.lookup_originals(unique, tenant))
    events.publish_event(*_unmasking_event(result, by_kind, unresolved, texts, tenant, source, request_id, started))
    return result


async def aunmask_texts(
    texts: list[str], tenant: store.TenantRef = DEFAULT_TENANT, source: str = "api", request_id: str | None = None
) -> UnmaskResult:
    started = time.perf_counter()
    pieces, unique = _find_all(texts)
    originals = await alookup_originals(unique, tenant)
    result, by_kind, unresolved = _apply_unmasking(pieces, unique, originals)
    await events.apublish_event(
        *_unmasking_event(result, by_kind, unresolved, texts, tenant, source, request_id, started)
    )
    return result


def publish_proxy_unmasking(
    restored: Mapping[str, int] | None,
    unresolved: int,
    tenant: store.TenantRef,
    request_id: str | None,
    started: float,
    size: int,
    counted: Callable[[], Mapping[str, int]] | Mapping[str, int] | None = None,
) -> None:
    """The unmasking event of an answer the proxy restored in its bytes (masking.answers) or piecewise,
    as it streamed (masking.streaming): `restored` counts the occurrences restored by token (or
    `counted` by kind, or `counted()` when the event is built), `size` is the answer's, in bytes as the
    upstream sent them. Built and published once the proxy next waits (events.publish_soon), or with
    the next batch (events.publish_stem) when `counted` is given by kind."""
    duration_ms = (time.perf_counter() - started) * 1000
    if isinstance(counted, Mapping):
        slug = store.tenant_slug(tenant)
        events.publish_stem(_unmasking_stem(slug, tuple(counted.items()), unresolved), request_id, duration_ms, size)
        return

    def build() -> events.Built:
        if counted is not None:  # a callable: a Mapping took the stem above
            by_kind = counted()  # build_event copies it
            total = sum(by_kind.values())
        else:
            by_kind, total = _by_kind(restored)
        event = events.build_event(
            events.UNMASKING,
            tenant=store.tenant_slug(tenant),
            source="proxy",
            request_id=request_id,
            counts_by_kind=by_kind,
            unresolved=unresolved,
            duration_ms=duration_ms,
            bytes=size,
        )
        return event, store.fixed_unmask_counters(total, unresolved)

    events.publish_soon(build)


def _by_kind(restored: Mapping[str, int]) -> tuple[dict[str, int], int]:
    by_kind: dict[str, int] = {}
    kinds = _kinds
    total = 0
    for token, count in restored.items():
        kind = kinds.get(token) or _remember_kind(token)
        by_kind[kind] = by_kind.get(kind, 0) + count
        total += count
    return by_kind, total


MAX_KINDS_REMEMBERED = 10_000
_kinds: dict[str, str] = {}  # token -> kind, for the proxy's events: the same tokens come back


def _remember_kind(token: str) -> str:
    if len(_kinds) >= MAX_KINDS_REMEMBERED:
        _kinds.clear()
    kind = _kinds[token] = kind_of(token)
    return kind


@functools.lru_cache(maxsize=MAX_KINDS_REMEMBERED)
def _unmasking_stem(slug: str, by_kind: tuple[tuple[str, int], ...], unresolved: int) -> events.Stem:
    """The proxy's unmasking event's stem for these counts, made once per distinct counts."""
    stats = store.fixed_unmask_counters(sum(count for _, count in by_kind), unresolved)
    return events.Stem(
        events.UNMASKING, tenant=slug, source="proxy", counts_by_kind=dict(by_kind), stats=stats, unresolved=unresolved
    )


def unmask_json(document, tenant=DEFAULT_TENANT, source="api", request_id=None) -> tuple[object, UnmaskResult]:
    holder, slots = string_slots(document)
    result = unmask_texts([container[key] for container, key, _ in slots], tenant, source, request_id)
    return with_strings(holder, slots, result.texts), result
