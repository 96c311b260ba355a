"""Masking events on Redis Pub/Sub: the only module that builds and publishes them.

An event carries counts, kinds and tokens at most: never an original value or any raw text.
Publishing never raises and never holds up a request; a failure is counted and logged.
A masking event rides in the store's mask script (`for_store`): the script publishes it once the
mappings are written, so masking stays one round trip.
"""

import asyncio
import json
import logging
import threading
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

from redis.exceptions import RedisError

from masking import counters, store
from masking.connection import get_async_redis, get_redis
from monitoring import metrics

logger = logging.getLogger(__name__)

CHANNEL_PREFIX = "aws-masker:events:"
MASKING = "masking"
UNMASKING = "unmasking"
ALERT = "alert"
CHANNELS = {
    MASKING: CHANNEL_PREFIX + "masking",
    UNMASKING: CHANNEL_PREFIX + "unmasking",
    ALERT: CHANNEL_PREFIX + "alerts",
}

_background: set[asyncio.Task] = set()
_failed = 0
_failed_lock = threading.Lock()


def build_event(
    event_type: str,
    *,
    tenant: str,
    source: str,
    request_id: str | None = None,
    counts_by_kind: Mapping[str, int] | None = None,
    new_mappings: int = 0,
    unresolved: int = 0,
    duration_ms: float = 0.0,
    bytes: int = 0,  # noqa: A002 - the event field's name
) -> dict:
    counts = dict(counts_by_kind or {})
    return {
        "event_id": uuid.uuid4().hex,
        "event_type": event_type,
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "request_id": request_id,
        "tenant": tenant,
        "source": source,
        "counts_by_kind": counts,
        "total": sum(counts.values()),
        "new_mappings": new_mappings,
        "unresolved": unresolved,
        "duration_ms": round(duration_ms, 3),
        "bytes": bytes,
    }


def failed_count() -> int:
    """Events this process could not publish."""
    return _failed


def _count_failure(exc: BaseException | None) -> None:
    global _failed
    with _failed_lock:
        _failed += 1
    logger.warning("event not published: %s", store.failure_reason(exc) if exc else "refused by redis")


def _observe(event: dict, published: bool) -> None:
    """Durations and the publish outcome for /metrics (the stats hashes do not keep those)."""
    duration_s = event.get("duration_ms", 0.0) / 1000
    if event["event_type"] == MASKING:
        metrics.observe_masking(duration_s, event["source"])
    elif event["event_type"] == UNMASKING:
        metrics.observe_unmasking(duration_s, event["source"])
    metrics.observe_event(event["event_type"], published)


async def _aobserve(event: dict, published: bool) -> None:
    duration_s = event.get("duration_ms", 0.0) / 1000
    if event["event_type"] == MASKING:
        await metrics.aobserve_masking(duration_s, event["source"])
    elif event["event_type"] == UNMASKING:
        await metrics.aobserve_unmasking(duration_s, event["source"])
    await metrics.aobserve_event(event["event_type"], published)


def _json(event: dict) -> str:
    return json.dumps(event, separators=(",", ":"))


def for_store(event: dict) -> store.Publication:
    """`event` as the store's mask script publishes it: the script appends `new_mappings`, which
    only it knows. Report the outcome with `observe_published` / `aobserve_published`."""
    fields = {name: value for name, value in event.items() if name != "new_mappings"}
    return store.Publication(CHANNELS[event["event_type"]], _json(fields)[:-1])


def observe_published(event: dict, published: bool, duration_s: float) -> None:
    """/metrics (and the failure count) for an event the store published: duration and outcome."""
    if not published:
        _count_failure(None)
    metrics.observe_masking(duration_s, event["source"], flush=False)
    metrics.observe_event(event["event_type"], published)  # flushes both


async def aobserve_published(event: dict, published: bool, duration_s: float) -> None:
    if not published:
        _count_failure(None)
    await metrics.aobserve_masking(duration_s, event["source"])
    await metrics.aobserve_event(event["event_type"], published)


def _queue(pipe, event: dict, stats: Mapping[str, int | float] | None) -> None:
    if stats:
        store.add_stats(pipe, stats)
    pipe.publish(CHANNELS[event["event_type"]], _json(event))


def publish_event(event: dict, stats: Mapping[str, int | float] | None = None) -> None:
    """Publish `event` (and add `stats` to the counters) in one pipelined round trip; never raises."""
    pipe = get_redis().pipeline(transaction=False)
    _queue(pipe, event, stats)
    published = True
    try:
        pipe.execute()
    except (RedisError, OSError) as exc:
        published = False
        _count_failure(exc)
    _observe(event, published)


async def _apublish(event: dict) -> None:
    published = True
    try:
        await get_async_redis().publish(CHANNELS[event["event_type"]], _json(event))
    except (RedisError, OSError) as exc:
        published = False
        _count_failure(exc)
    await _aobserve(event, published)


async def apublish_event(event: dict, stats: Mapping[str, int | float] | None = None) -> None:
    """Fire and forget: returns at once, the PUBLISH runs as a background task of this loop, and
    `stats` join the counters this loop writes about once a second (`masking.counters`)."""
    if stats:
        store.count_stats(stats)
        counters.start_flushing()
    task = asyncio.create_task(_apublish(event))
    # The loop only keeps weak references to tasks: hold it until it is done.
    _background.add(task)
    task.add_done_callback(_background.discard)


async def drain() -> None:
    """Wait for this loop's pending publishes (tests, and a clean shutdown)."""
    loop = asyncio.get_running_loop()
    pending = [task for task in _background if task.get_loop() is loop]
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
