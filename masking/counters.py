"""Counter increments collected in memory and written to their Redis hashes in one pipeline.

A proxied request used to cost a pipeline of ~33 HINCRBYs for its request counters and two more
round trips for the /metrics observations: more CPU than forwarding it. Async callers (the proxy)
now only `add()` here; a background task per event loop writes everything pending at most once a
`FLUSH_INTERVAL_SECONDS`, and once more when the loop shuts down (its task is cancelled). Sync
callers (REST API, CLI) `add()` and `flush()` at once, which also carries whatever the loop had
pending. The hashes only ever grow by HINCRBY / HINCRBYFLOAT, so readers (rollups, /metrics,
the dashboard) see the same monotonic counters, at most a second late.

A failed write keeps the increments (nothing is lost while Redis is down), counts
`redis_errors:metrics`, and holds further writes back for `RETRY_AFTER_FAILURE_S`, so an outage
never adds a connect timeout per request.
"""

import asyncio
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping

from redis.exceptions import RedisError

from masking import deferred
from masking.connection import get_async_redis, get_redis

FLUSH_INTERVAL_SECONDS = 1.0
RETRY_AFTER_FAILURE_S = 5.0
FAILURE_FIELD = (("aws:metrics:counts",), "redis_errors:metrics")  # counted on a failed write

Increments = Mapping[str, int | float]


class Fixed:
    """Increments that are the same every time (a request's status and latency bucket, say): added
    by counting how many times, multiplied out when written. A request adds one of these instead of
    its dozen-odd fields, each an addition in memory."""

    __slots__ = ("increments",)

    def __init__(self, increments: Increments) -> None:
        self.increments = dict(increments)


class FixedPer(dict):
    """key -> `Fixed(make(key))`, made once per key (`memo[key]`); past `bound` keys it starts over."""

    def __init__(self, make, bound: int = 10_000) -> None:
        super().__init__()
        self.make, self.bound = make, bound

    def __missing__(self, key) -> Fixed:
        if len(self) >= self.bound:
            self.clear()
        fixed = self[key] = Fixed(self.make(key))
        return fixed


class _Pending:
    """hash keys -> field -> amount not yet in Redis (and `Fixed` increments by how many times they
    were added), and the TTL to set on some hashes."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.amounts: dict[tuple[str, ...], dict[str, int | float]] = {}
        self.fixed: dict[tuple[tuple[str, ...], Fixed], int] = {}
        self.expires: dict[str, int] = {}
        self.retry_at = 0.0

    def add(self, keys: tuple[str, ...], increments: Increments, expires: dict[str, int] | None) -> None:
        with self.lock:
            _merge(self.amounts, keys, increments)
            if expires:
                self.expires.update(expires)

    def add_fixed(self, keys: tuple[str, ...], fixed: Fixed, expires: dict[str, int] | None, times: int = 1) -> None:
        with self.lock:
            added = (keys, fixed)
            self.fixed[added] = self.fixed.get(added, 0) + times
            if expires:
                self.expires.update(expires)

    def take(self) -> tuple[dict, dict[str, int]]:
        with self.lock:
            if not (self.amounts or self.fixed) or time.monotonic() < self.retry_at:
                return {}, {}
            taken, fixed, expires = self.amounts, self.fixed, self.expires
            self.amounts, self.fixed, self.expires = {}, {}, {}
        for (keys, added), times in fixed.items():
            _merge(taken, keys, {field: amount * times for field, amount in added.increments.items()})
        return taken, expires

    def give_back(self, amounts: dict, expires: dict[str, int]) -> None:
        with self.lock:
            for keys, increments in amounts.items():
                _merge(self.amounts, keys, increments)
            _merge(self.amounts, FAILURE_FIELD[0], {FAILURE_FIELD[1]: 1})
            self.expires.update(expires)
            self.retry_at = time.monotonic() + RETRY_AFTER_FAILURE_S


class Tally:
    """Observations noted one at a time and added up when the pending counters are taken: noting is
    one append, where counting a request's fields and histogram buckets at once cost a proxied
    request ~10 µs in a microbenchmark and ~35 µs in a worker (its code run once per request, cold
    each time). `add_up(observations)` turns a batch into `add...` calls."""

    def __init__(self, add_up: Callable[[list[tuple]], None]) -> None:
        self.add_up = add_up
        self.noted: deque[tuple] = deque()  # appended and popped without a lock: both are atomic
        _tallies.append(self)

    def note(self, *observation) -> None:
        self.noted.append(observation)

    def take(self) -> None:
        noted = self.noted
        batch = []
        while noted:
            batch.append(noted.popleft())
        if batch:
            self.add_up(batch)


_tallies: list[Tally] = []


def _merge(amounts: dict, keys: tuple[str, ...], increments: Increments) -> None:
    """Add `increments` to `amounts[keys]` (hash keys -> field -> amount)."""
    into = amounts.get(keys)
    if into is None:
        into = amounts[keys] = {}
    get = into.get
    for field, amount in increments.items():
        into[field] = get(field, 0) + amount


_pending = _Pending()
_flushers: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task]" = weakref.WeakKeyDictionary()
_last: asyncio.Task | None = None  # the flusher started last, usually the only loop's


def add(key: str, increments: Increments, expire: int | None = None) -> None:
    """Add to the fields of hash `key` (a float amount is written with HINCRBYFLOAT); `expire`
    sets the hash's TTL at the next write. Memory only: call `flush()`, or `start_flushing()`."""
    _pending.add((key,), increments, {key: expire} if expire else None)


def add_to_each(keys: tuple[str, ...], increments: Increments, expires: dict[str, int] | None = None) -> None:
    """`add()` the same increments to several hashes (kept once in memory until written)."""
    _pending.add(keys, increments, expires)


def add_fixed(keys: tuple[str, ...], fixed: Fixed, expires: dict[str, int] | None = None, times: int = 1) -> None:
    """`add_to_each(keys, fixed.increments, expires)`, `times` times over, at the cost of one addition."""
    _pending.add_fixed(keys, fixed, expires, times)


def _queue(pipe, amounts: dict, expires: dict[str, int]) -> None:
    for keys, increments in amounts.items():
        for field, amount in increments.items():
            for key in keys:
                if isinstance(amount, float):  # a field that holds a float refuses HINCRBY
                    pipe.hincrbyfloat(key, field, amount)
                else:
                    pipe.hincrby(key, field, amount)
    for key, seconds in expires.items():
        pipe.expire(key, seconds)


def _take() -> tuple[dict, dict[str, int]]:
    for tally in _tallies:
        tally.take()
    return _pending.take()


def flush() -> bool:
    """Write everything pending in one round trip. Never raises; False if Redis failed."""
    amounts, expires = _take()
    if not amounts:
        return True
    pipe = get_redis().pipeline(transaction=False)
    _queue(pipe, amounts, expires)
    try:
        pipe.execute()
    except (RedisError, OSError):
        _pending.give_back(amounts, expires)
        return False
    return True


async def aflush() -> bool:
    deferred.run_now()  # counts a request left for later (masking.deferred) go too
    amounts, expires = _take()
    if not amounts:
        return True
    pipe = get_async_redis().pipeline(transaction=False)
    _queue(pipe, amounts, expires)
    try:
        await pipe.execute()
    except (RedisError, OSError):
        _pending.give_back(amounts, expires)
        return False
    return True


def start_flushing() -> None:
    """Make sure the running loop writes pending increments about once a second (cheap when it does)."""
    global _last
    loop = asyncio.get_running_loop()
    if _last is not None and _last.get_loop() is loop and not _last.done():
        return  # the common case, several times per request: no weak-reference lookup
    task = _flushers.get(loop)
    if task is None or task.done():
        task = _flushers[loop] = loop.create_task(_flush_periodically())
    _last = task


async def _flush_periodically() -> None:
    try:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_SECONDS)
            await aflush()
    finally:  # cancelled: the loop is shutting down (uvicorn, asyncio.run); write what is left
        await aflush()


def forget() -> None:
    """Drop what this process has pending and any back-off (tests: each starts with empty Redis)."""
    global _pending
    _pending = _Pending()
    for tally in _tallies:
        tally.noted.clear()
