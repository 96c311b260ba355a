"""The mapping store: every Redis key of the masking path lives here (see docs/store.md).

Masking a whole request is one EVALSHA of `lua/get_or_create.lua`; restoring is one MGET.
Any Redis failure on that path raises `MaskingUnavailable` (fail closed); callers answer 503.
"""

import asyncio
import functools
import hashlib
import logging
import secrets
import time
from bisect import bisect_left
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from asgiref.sync import sync_to_async
from django.conf import settings
from redis.exceptions import (
    ConnectionError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    TimeoutError,
)

from masking import cache, counters, tracking
from masking.connection import get_async_redis, get_redis
from masking.models import DEFAULT_TENANT, Tenant
from masking.redisline import get_line
from monitoring import metrics

logger = logging.getLogger(__name__)

SCRIPT = (Path(__file__).parent / "lua" / "get_or_create.lua").read_text()
SCRIPT_SHA = hashlib.sha1(SCRIPT.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1

COUNTS_KEY = "aws:stats:counts"
DAILY_KEY_PREFIX = "aws:stats:daily:"
DAILY_TTL_SECONDS = 40 * 24 * 3600
SEQ_KEY_PREFIX = "aws:seq:"
EPOCH_KEY = "aws:mapping:epoch"  # masking/cache.py: what the workers' mapping caches were learnt under
AUTH_VERSION_KEY = "aws:auth:version"  # INCR when an API client or tenant changes (masking/auth.py)
LATENCY_BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
TENANT_CACHE_SECONDS = 60

TenantRef = Tenant | str


class MaskingUnavailable(Exception):
    """Masking cannot be guaranteed (Redis unreachable, timed out, read-only, out of memory).

    The message is safe to show: it never carries a key or a value."""


class Publication(NamedTuple):
    """A masking event for the script to publish: its channel and its JSON without the closing brace."""

    channel: str
    head: str


class StoredTokens(NamedTuple):
    tokens: list[str]  # one per item, in the items' order
    new_mappings: int
    event_published: bool = False  # the event passed along reached Pub/Sub


# --- keys ---------------------------------------------------------------------------------


def tenant_slug(tenant: TenantRef) -> str:
    return tenant.slug if isinstance(tenant, Tenant) else tenant


def key_prefix(tenant: TenantRef) -> str:
    """`aws:` for the default tenant (the keys of the system we replace), `aws:t:<slug>:` otherwise."""
    slug = tenant_slug(tenant)
    return "aws:" if slug == DEFAULT_TENANT else f"aws:t:{slug}:"


def mask_key(original: str, tenant: TenantRef = DEFAULT_TENANT) -> str:
    return f"{key_prefix(tenant)}mask:{original}"


def unmask_key(token: str, tenant: TenantRef = DEFAULT_TENANT) -> str:
    return f"{key_prefix(tenant)}unmask:{token}"


def daily_key(now: datetime | None = None) -> str:
    if now is None:
        return _daily_key(int(time.time() // 86400))  # counted several times per request: cached per day
    return DAILY_KEY_PREFIX + now.strftime("%Y-%m-%d")


@functools.lru_cache(maxsize=4)
def _daily_key(day: int) -> str:
    return daily_key(datetime.fromtimestamp(day * 86400, UTC))


# --- tenant TTL -------------------------------------------------------------------------------

_ttl_cache: dict[str, tuple[float, int | None]] = {}


def _ttl_from_db(slug: str) -> int | None:
    ttl = Tenant.objects.filter(slug=slug).values_list("ttl_seconds", flat=True).first()
    _ttl_cache[slug] = (time.monotonic(), ttl)
    return ttl


def _cached_ttl(slug: str) -> tuple[bool, int | None]:
    cached = _ttl_cache.get(slug)
    if cached and time.monotonic() - cached[0] < TENANT_CACHE_SECONDS:
        return True, cached[1]
    return False, None


def ttl_seconds(tenant: TenantRef) -> int:
    """The tenant's mapping TTL, or MASKING_TTL_SECONDS. A slug is looked up at most once a minute."""
    if isinstance(tenant, Tenant):
        return tenant.ttl_seconds or settings.MASKING_TTL_SECONDS
    hit, ttl = _cached_ttl(tenant)
    return (ttl if hit else _ttl_from_db(tenant)) or settings.MASKING_TTL_SECONDS


async def attl_seconds(tenant: TenantRef) -> int:
    if isinstance(tenant, Tenant):
        return tenant.ttl_seconds or settings.MASKING_TTL_SECONDS
    hit, ttl = _cached_ttl(tenant)
    return (ttl if hit else await sync_to_async(_ttl_from_db)(tenant)) or settings.MASKING_TTL_SECONDS


# --- fail closed --------------------------------------------------------------------------------


def failure_reason(exc: BaseException) -> str:
    """A short reason that names the failure, never a key or value (Redis errors may echo them)."""
    if isinstance(exc, ReadOnlyError):
        return "redis is read-only"
    if isinstance(exc, OutOfMemoryError):
        return "redis is out of memory"
    if isinstance(exc, TimeoutError):
        return "redis timed out"
    if isinstance(exc, ConnectionError | OSError):
        return "redis is unreachable"
    return f"redis error ({type(exc).__name__})"


class fail_closed:  # noqa: N801 - used as `with fail_closed("mask"):`, as the contextmanager it was
    """A Redis error inside becomes MaskingUnavailable (logged, counted). A class rather than a
    @contextmanager: every masked request enters one, and a generator costs several times more."""

    __slots__ = ("operation",)

    def __init__(self, operation: str) -> None:
        self.operation = operation

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, traceback) -> bool:
        if not isinstance(exc, (RedisError, OSError)):
            return False
        reason = failure_reason(exc)
        logger.warning("%s unavailable: %s", self.operation, reason)
        metrics.note_redis_error(self.operation)
        # `from None`: the Redis error text may quote a key, which holds an original.
        raise MaskingUnavailable(reason) from None


# --- get or create (one EVALSHA) -------------------------------------------------------------------


def _script_args(
    items: Sequence[tuple[str, str]], tenant: TenantRef, ttl: int, stats: Mapping[str, int], event: Publication | None
) -> list:
    channel, event_head = event or ("", "")
    args: list = [key_prefix(tenant), ttl, daily_key(), DAILY_TTL_SECONDS, channel, event_head, len(items)]
    for prefix, original in items:
        args += (prefix, original)
    for field, amount in stats.items():
        if amount:
            args += (field, amount)
    return args


def mask_counters(items: Collection, counts_by_kind: Mapping[str, int] | None) -> dict[str, int]:
    """Stats fields of one mask operation (new mappings are counted by the script itself): `items`
    are its distinct originals (only their number is used)."""
    counts = counts_by_kind or {}
    counters = {"mask_operations": 1, "identifiers": sum(counts.values()) if counts else len(items)}
    fields = _kind_fields
    for kind, n in counts.items():
        counters[fields.get(kind) or _kind_field(kind)] = n
    return counters


_kind_fields: dict[str, str] = {}  # kind -> its stats field, made once


def fixed_mask_counters(counts_by_kind: Mapping[str, int]) -> counters.Fixed:
    """`mask_counters((), counts_by_kind)` as one `counters.Fixed`, made once per distinct counts: a
    conversation's requests mask the same identifiers turn after turn (`count_fixed` adds it)."""
    return _fixed_mask_counters[tuple(counts_by_kind.items())]


_fixed_mask_counters = counters.FixedPer(lambda counts: mask_counters((), dict(counts)))


def _kind_field(kind: str) -> str:
    if len(_kind_fields) >= 10_000:  # kinds are a bounded set (tenants' custom rules included): never trust a bound
        _kind_fields.clear()
    field = _kind_fields[kind] = f"kind:{kind}"
    return field


def _decode(reply: list) -> StoredTokens:
    return StoredTokens([token.decode() for token in reply[2:]], int(reply[0]), reply[1] == 1)


def get_or_create_tokens(
    items: Sequence[tuple[str, str]],
    tenant: TenantRef = DEFAULT_TENANT,
    counts_by_kind: Mapping[str, int] | None = None,
    event: Publication | None = None,
) -> StoredTokens:
    """Tokens for (token prefix, original) items, created where missing; TTLs refreshed; stats counted.

    `counts_by_kind` counts every occurrence (duplicates and redacted kinds included) for the stats.
    `event`, from `events.for_store()`, is published by the same script once the mappings are written."""
    args = _script_args(items, tenant, ttl_seconds(tenant), mask_counters(items, counts_by_kind), event)
    client = get_redis()
    with fail_closed("mask"):
        try:
            reply = client.evalsha(SCRIPT_SHA, 0, *args)
        except NoScriptError:  # first use on this server, or after a restart / SCRIPT FLUSH
            client.script_load(SCRIPT)
            reply = client.evalsha(SCRIPT_SHA, 0, *args)
    return _decode(reply)


async def aget_or_create_tokens(
    items: Sequence[tuple[str, str]],
    tenant: TenantRef = DEFAULT_TENANT,
    counts_by_kind: Mapping[str, int] | None = None,
    event: Publication | None = None,
) -> StoredTokens:
    args = _script_args(items, tenant, await attl_seconds(tenant), mask_counters(items, counts_by_kind), event)
    client = get_async_redis()
    with fail_closed("mask"):
        try:
            reply = await client.evalsha(SCRIPT_SHA, 0, *args)
        except NoScriptError:
            await client.script_load(SCRIPT)
            reply = await client.evalsha(SCRIPT_SHA, 0, *args)
    return _decode(reply)


# --- mapping epoch (masking/cache.py) -----------------------------------------------------------------


def _epoch_read(publications: Sequence[tuple[str, str]]) -> list[tuple]:
    commands = [("PUBLISH", channel, message) for channel, message in publications]
    return [*commands, ("GET", EPOCH_KEY), ("GET", AUTH_VERSION_KEY)]


def start_mapping_epoch_read(publications: Sequence[tuple[str, str]] = ()) -> asyncio.Future:
    """`amapping_epoch`'s round trip, started: the future of its raw replies, for
    `amapping_epoch(read=...)`. Written to Redis before this returns when this loop's line is
    connected; otherwise a task connects first (it starts when the caller next waits)."""
    line = get_line()
    commands = _epoch_read(publications)
    sent = line.send_now(commands)
    return sent if sent is not None else asyncio.ensure_future(line.execute(commands))


async def amapping_epoch(
    publications: Sequence[tuple[str, str]] = (), read: asyncio.Future | None = None
) -> tuple[bytes, list]:
    """The current mapping epoch, a new one when Redis has none (it lost its data, or never had it).
    Read by every masked request before it forwards anything: it is also the fail-closed check.
    `publications` (channel, message) go out in the same round trip; their replies come back
    (a number, or the error). `read`: that round trip already started (start_mapping_epoch_read)."""
    with fail_closed("mask"):
        if read is None:
            read = get_line().execute(_epoch_read(publications))  # not redis-py's client: masking/redisline.py
        replies = await read
        *published, epoch, keys = replies
        if isinstance(epoch, Exception):
            raise epoch
        if not isinstance(keys, Exception):
            cache.api_keys.observe(keys)  # the same round trip tells the proxy whether API keys changed
        if epoch is None:
            commands = [("SET", EPOCH_KEY, secrets.token_hex(8), "NX"), ("GET", EPOCH_KEY)]
            created, epoch = await get_line().execute(commands)
            for reply in (created, epoch):
                if isinstance(reply, Exception):
                    raise reply
    if epoch is None:  # flushed again in between: nothing cached can be trusted
        raise MaskingUnavailable("redis lost its mappings")
    return epoch, published


def epoch_watch() -> tracking.Watch:
    """This loop's watch of the mapping epoch and the API keys' version (masking/tracking.py)."""
    return tracking.watch((EPOCH_KEY, AUTH_VERSION_KEY))


def bump_auth_version() -> None:
    """Tell every proxy worker to look its remembered API clients up again (at its next masked request)."""
    try:
        get_redis().incr(AUTH_VERSION_KEY)
    except RedisError:
        logger.warning(
            "could not bump %s: proxies notice the change within their key cache's lifetime", AUTH_VERSION_KEY
        )
    finally:
        tracking.distrust()  # this process's workers at once; the others when Redis tells them


def new_mapping_epoch(client=None) -> None:
    """Tell every worker to forget the mappings it remembers (a mapping was revoked or restored)."""
    try:
        (client or get_redis()).set(EPOCH_KEY, secrets.token_hex(8))
    finally:
        tracking.distrust()  # this process's workers at once; the others when Redis tells them


# --- lookup (one MGET) -------------------------------------------------------------------------------


def _found(tokens: Sequence[str], values: list) -> dict[str, str]:
    return {token: value.decode() for token, value in zip(tokens, values, strict=True) if value is not None}


def lookup_originals(tokens: Sequence[str], tenant: TenantRef = DEFAULT_TENANT) -> dict[str, str]:
    """token -> original for the tokens this tenant owns; unknown or expired tokens are absent."""
    if not tokens:
        return {}
    with fail_closed("unmask"):
        values = get_redis().mget([unmask_key(token, tenant) for token in tokens])
    return _found(tokens, values)


async def alookup_originals(tokens: Sequence[str], tenant: TenantRef = DEFAULT_TENANT) -> dict[str, str]:
    if not tokens:
        return {}
    with fail_closed("unmask"):
        values = await get_async_redis().mget([unmask_key(token, tenant) for token in tokens])
    return _found(tokens, values)


# --- stats ---------------------------------------------------------------------------------------------


def add_stats(pipe, stats: Mapping[str, int | float]) -> None:
    """Queue HINCRBY(FLOAT)s of `stats` on the totals and today's hash (sync or async pipeline)."""
    today = daily_key()
    for field, amount in stats.items():
        for key in (COUNTS_KEY, today):
            if isinstance(amount, float):
                pipe.hincrbyfloat(key, field, amount)
            else:
                pipe.hincrby(key, field, amount)
    pipe.expire(today, DAILY_TTL_SECONDS)


def count_stats(stats: Mapping[str, int | float]) -> None:
    """Add `stats` to the totals and today's hash, in memory until the next `counters` flush."""
    today = daily_key()
    counters.add_to_each((COUNTS_KEY, today), stats, {today: DAILY_TTL_SECONDS})


def unmask_counters(restored: int, unresolved: int) -> dict[str, int]:
    return {"unmask_operations": 1, "restored_tokens": restored, "unresolved_tokens": unresolved}


def fixed_unmask_counters(restored: int, unresolved: int) -> counters.Fixed:
    """`unmask_counters` as one `counters.Fixed`, made once per distinct pair."""
    return _fixed_unmask_counters[(restored, unresolved)]


_fixed_unmask_counters = counters.FixedPer(lambda pair: unmask_counters(*pair))


def count_fixed(fixed: counters.Fixed, times: int = 1) -> None:
    """`count_stats(fixed.increments)`, `times` times over, as one addition in memory."""
    today = daily_key()
    counters.add_fixed((COUNTS_KEY, today), fixed, {today: DAILY_TTL_SECONDS}, times)


def request_counters(status: int, latency_ms: float, upstream_error: bool) -> dict[str, int | float]:
    stats: dict[str, int | float] = {
        "requests": 1,
        f"status:{status}": 1,
        "latency_ms_sum": float(latency_ms),
        "latency_ms_count": 1,
    }
    if upstream_error:
        stats["upstream_errors"] = 1
    stats.update(_BUCKETS_FROM[bisect_left(LATENCY_BUCKETS_MS, latency_ms)])
    return stats


# Cumulative buckets: a latency counts in every bucket from the first one it fits, and in +Inf.
_BUCKETS_FROM = [
    dict.fromkeys([f"latency_bucket:{le}" for le in LATENCY_BUCKETS_MS[first:]] + ["latency_bucket:+Inf"], 1)
    for first in range(len(LATENCY_BUCKETS_MS) + 1)
]


def record_request(status: int, latency_ms: float, upstream_error: bool = False) -> None:
    """Count one proxied request (written at once, with anything else pending). Never raises."""
    count_stats(request_counters(status, latency_ms, upstream_error))
    counters.flush()


def count_request(status: int, latency_ms: float, upstream_error: bool = False) -> None:
    """Count one proxied request in memory (`request_counters`, noted now and added up with the
    others when the running loop writes the counts, within about a second: a request counted in
    the last second of a day may land in the next day's hash)."""
    _requests.note(status, latency_ms, upstream_error)
    counters.start_flushing()


def _add_requests(requests: list[tuple[int, float, bool]]) -> None:
    """The requests noted since the last write, as one `counters.Fixed` per status, latency bucket
    and outcome (added by count) and one latency sum."""
    by_fixed: dict[counters.Fixed, int] = {}
    latency_sum = 0.0
    for status, latency_ms, upstream_error in requests:
        first = bisect_left(LATENCY_BUCKETS_MS, latency_ms)
        fixed = _fixed_request_counters.get((status, first, upstream_error))
        if fixed is None:
            stats = request_counters(status, latency_ms, upstream_error)
            del stats["latency_ms_sum"]
            if len(_fixed_request_counters) >= 1000:  # statuses are a bounded set, but never trust a bound
                _fixed_request_counters.clear()
            fixed = _fixed_request_counters[(status, first, upstream_error)] = counters.Fixed(stats)
        by_fixed[fixed] = by_fixed.get(fixed, 0) + 1
        latency_sum += latency_ms
    today = daily_key()
    keys, expires = (COUNTS_KEY, today), {today: DAILY_TTL_SECONDS}
    for fixed, times in by_fixed.items():
        counters.add_fixed(keys, fixed, expires, times)
    counters.add_to_each(keys, {"latency_ms_sum": float(latency_sum)}, expires)


_requests = counters.Tally(_add_requests)
_fixed_request_counters: dict[tuple[int, int, bool], counters.Fixed] = {}


async def arecord_request(status: int, latency_ms: float, upstream_error: bool = False) -> None:
    count_request(status, latency_ms, upstream_error)
