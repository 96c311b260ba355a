"""Masking events on Redis Pub/Sub: the only module that builds and publishes them.

An event carries counts, kinds and tokens at most: never an original value or any raw text.
Publishing never raises and never holds up a request; a failure is counted and logged.
A masking event rides in the store's mask script (`for_store`): the script publishes it once the
mappings are written, so masking stays one round trip.
"""

import asyncio
import logging
import random
import threading
import time
import weakref
from collections.abc import Callable, Mapping

import orjson
from redis.exceptions import RedisError

from masking import counters, deferred, store
from masking.connection import get_redis
from masking.redisline import get_line
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

# An event and the stats it adds: increments, or a `counters.Fixed` (the same every time: one addition)
Built = tuple[dict, "Mapping[str, int | float] | counters.Fixed | None"]

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
        "event_id": f"{random.getrandbits(128):032x}",  # an id, not a secret: a fifth of uuid4()'s cost
        "event_type": event_type,
        "timestamp": _now(),
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


class Stem:
    """What repeats from one event to the next of its kind (type, tenant, source, counts and the stats
    they add), its JSON written once: an event is a stem with an id, a time, a request id, a duration
    and a size (`publish_stem`). A conversation resends the same identifiers turn after turn, so its
    requests' events share stems. Building each event as a dict, writing it with orjson and looking its
    stats up cost a masked proxy request 35-70 µs in a worker (two events, their code run cold)."""

    __slots__ = ("event_type", "source", "channel", "stats", "_type", "_middle")

    def __init__(
        self,
        event_type: str,
        *,
        tenant: str,
        source: str,
        counts_by_kind: Mapping[str, int],
        stats: "counters.Fixed | None" = None,
        new_mappings: int = 0,
        unresolved: int = 0,
    ) -> None:
        self.event_type, self.source, self.channel, self.stats = event_type, source, CHANNELS[event_type], stats
        event = build_event(
            event_type,
            tenant=tenant,
            source=source,
            counts_by_kind=counts_by_kind,
            new_mappings=new_mappings,
            unresolved=unresolved,
        )
        between = ("tenant", "source", "counts_by_kind", "total", "new_mappings", "unresolved")
        self._type = _json(event_type)
        self._middle = _json({name: event[name] for name in between})[1:-1]

    def json(self, request_id: str | None, duration_ms: float, size: int, at: float) -> str:
        """The event `build_event` would make, as `_json` writes it."""
        request = "null" if request_id is None else _json(request_id)
        return (
            f'{{"event_id":"{random.getrandbits(128):032x}","event_type":{self._type},'
            f'"timestamp":"{_timestamp(at)}","request_id":{request},{self._middle},'
            f'"duration_ms":{round(duration_ms, 3)!r},"bytes":{int(size)}}}'
        )


_second: tuple[int, str] = (-1, "")  # the last second formatted, reused by every event within it


def _now() -> str:
    """UTC now, ISO 8601 to the millisecond ("2026-11-26T02:30:32.377Z")."""
    return _timestamp(time.time())


def _timestamp(now: float) -> str:
    """`now` (seconds since the epoch), as `_now()` writes it."""
    global _second
    second, text = _second
    if second != int(now):
        second = int(now)
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second = (second, text)
    return f"{text}.{int(now * 1000) % 1000:03d}Z"


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


def _json(event: dict) -> str:
    # orjson: ten times the standard encoder's speed, same compact output (events hold no NaN).
    return orjson.dumps(event).decode()


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


class _Outbox:
    """This loop's events waiting to be published, and the task that publishes them in batches."""

    def __init__(self) -> None:
        self.queued: list[tuple[dict, str, str]] = []  # (event, channel, JSON)
        self.unbuilt: list[Callable[[], Built]] = []  # events to build once the request waits (publish_soon)
        self.stemmed: list[tuple[Stem, str | None, float, int, float]] = []  # built with the next batch (publish_stem)
        self.wakeup = asyncio.Event()
        self.lock = asyncio.Lock()  # one batch in flight at a time; drain() waits for it
        self.task: asyncio.Task | None = None

    def take(self, build: bool = True) -> list[tuple[dict, str, str]]:
        if build:
            self.build()
        taken, self.queued = self.queued, []
        return taken

    def build(self) -> None:
        """Build the events waiting to be, and queue them; their stats are counted together."""
        unbuilt, self.unbuilt = self.unbuilt, []
        counted: dict[str, int | float] = {}
        fixed: dict[counters.Fixed, int] = {}
        get = counted.get
        stemmed, self.stemmed = self.stemmed, []
        for stem, request_id, duration_ms, size, at in stemmed:
            outcome = {"event_type": stem.event_type, "source": stem.source, "duration_ms": duration_ms}
            self.queued.append((outcome, stem.channel, stem.json(request_id, duration_ms, size, at)))
            if stem.stats is not None:
                fixed[stem.stats] = fixed.get(stem.stats, 0) + 1
        for build in unbuilt:
            try:
                event, stats = build()
            except Exception:  # a bug in building an event must not cost the request: count it
                logger.exception("event not built")
                _count_failure(None)
                continue
            self.queued.append((event, CHANNELS[event["event_type"]], _json(event)))
            if type(stats) is counters.Fixed:
                fixed[stats] = fixed.get(stats, 0) + 1
            elif stats:
                for field, amount in stats.items():
                    counted[field] = get(field, 0) + amount
        if counted:
            store.count_stats(counted)
        for stats, times in fixed.items():
            store.count_fixed(stats, times)
        if counted or fixed:
            counters.start_flushing()
        if self.queued:
            self.wakeup.set()

    def queue(self, event: dict, stats: Mapping[str, int | float] | None) -> None:
        if stats:
            store.count_stats(stats)
            counters.start_flushing()
        self.queued.append((event, CHANNELS[event["event_type"]], _json(event)))
        self.wakeup.set()


# Events wait this long for a masked request's Redis read to take them along (masking.masker);
# past it, the loop's publisher sends them in one pipeline. Dashboards see them that much later when
# traffic stops; under traffic they go with the next request. At 5 ms the publisher's own batches
# (a write, a read, a timer) cost a masked request at concurrency 1 about a tenth of its CPU.
PUBLISH_DELAY_SECONDS = 0.1
_outboxes: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Outbox]" = weakref.WeakKeyDictionary()


def _outbox() -> _Outbox:
    loop = asyncio.get_running_loop()
    box = _outboxes.get(loop)
    if box is None:
        box = _outboxes[loop] = _Outbox()
    if box.task is None or box.task.done():
        box.task = loop.create_task(_publisher(box))
    return box


async def _publisher(box: _Outbox) -> None:
    try:
        while True:
            await box.wakeup.wait()
            await asyncio.sleep(PUBLISH_DELAY_SECONDS)
            box.wakeup.clear()
            async with box.lock:
                await _publish_batch(box.take())
    except asyncio.CancelledError:  # the loop is shutting down: what is left goes now
        await _publish_batch(box.take())
        raise


async def _publish_batch(batch: list[tuple[dict, str, str]]) -> None:
    if not batch:
        return
    try:  # the masked request's own line (masking/redisline.py): a fraction of redis-py's CPU
        replies = await get_line().execute([("PUBLISH", channel, message) for _, channel, message in batch])
    except (RedisError, OSError) as exc:
        replies = [exc] * len(batch)
    settle(batch, replies)


def pending() -> int:
    """How many of this loop's events wait to be published."""
    box = _outboxes.get(asyncio.get_running_loop())
    return len(box.queued) + len(box.unbuilt) + len(box.stemmed) if box is not None else 0


def take_queued() -> list[tuple[dict, str, str]]:
    """This loop's events built and queued, as (event, channel, JSON), for a caller that sends them
    along with its own Redis command; it must report the outcome with `settle()`. Events not built
    yet stay: building them now would hold that caller up (they go with a later batch)."""
    box = _outboxes.get(asyncio.get_running_loop())
    return box.take(build=False) if box is not None else []


def settle(batch: list[tuple[dict, str, str]], replies: list) -> None:
    """Count and observe each event's outcome (`_observe` in an event loop: memory only, the loop
    writes the counters, masking.counters): a reply that is not a number was not published."""
    outcomes = []
    for (event, _, _), reply in zip(batch, replies, strict=True):
        published = isinstance(reply, int)
        if not published:
            _count_failure(reply if isinstance(reply, BaseException) else None)
        outcomes.append((event["event_type"], event.get("duration_ms", 0.0) / 1000, event["source"], published))
    metrics.note_events(outcomes)


def settle_soon(batch: list[tuple[dict, str, str]], replies: list) -> None:
    """`settle()` once the proxy waits for the upstream (masking.deferred): off the path of the
    request that carried the batch."""
    if batch:
        deferred.later(settle, batch, replies)


async def apublish_event(event: dict, stats: Mapping[str, int | float] | None = None) -> None:
    """Fire and forget: returns at once. The event is queued and published with the next masked
    request's Redis read, or in a batch of its own within PUBLISH_DELAY_SECONDS; `stats` join
    the counters this loop writes about once a second (`masking.counters`)."""
    _outbox().queue(event, stats)


def publish_soon(build: Callable[[], Built]) -> None:
    """`apublish_event(*build())`, with the event built once the proxy waits for the upstream
    (masking.deferred), or when the queued events go out, whichever comes first: building an event, counting it
    and writing its JSON then cost the request nothing on its way. `build()` must not raise."""
    box = _outbox()
    box.unbuilt.append(build)
    if len(box.unbuilt) == 1:
        deferred.later(box.build)


def publish_stem(stem: Stem, request_id: str | None, duration_ms: float, size: int) -> None:
    """Publish `stem`'s event for this request (and count its stats): noted now, built and queued
    with the loop's next batch, within PUBLISH_DELAY_SECONDS. Never raises."""
    box = _outbox()
    box.stemmed.append((stem, request_id, duration_ms, size, time.time()))
    box.wakeup.set()


async def drain() -> None:
    """Publish this loop's queued events now and wait for them (tests, and a clean shutdown)."""
    deferred.run_now()
    box = _outboxes.get(asyncio.get_running_loop())
    if box is not None:
        async with box.lock:
            await _publish_batch(box.take())
