"""The bridge from Redis Pub/Sub to the live-event websockets.

One relay per process (per event loop): a single PSUBSCRIBE on `aws-masker:events:*` fans each
event out to the bounded in-memory queues of the sockets connected to *this* process. Any process
on any host that publishes on that Redis reaches every viewer, whichever process serves them.
Why not a socket-per-subscription or a channels-redis group: see docs/live-events.md.

The relay runs only while at least one socket is connected; the last one to leave closes its
Redis connection. A viewer that cannot keep up loses events from its own queue (it is told how
many), never slowing the relay or other viewers, and never growing memory without bound.
"""

import asyncio
import json
import logging
import weakref
from dataclasses import dataclass, field

import redis
import redis.asyncio as aioredis
from django.conf import settings

logger = logging.getLogger(__name__)

CHANNEL_PATTERN = "aws-masker:events:*"
EVENT_TYPES = ("masking", "unmasking", "alert")
# Only these fields ever leave the server: the publisher promises never to put originals in an
# event, and this list means a field added there by mistake does not reach a browser either.
TEXT, NUMBER = (str, type(None)), (int, float)
EVENT_FIELDS = {
    "event_id": TEXT,
    "event_type": TEXT,
    "timestamp": TEXT,
    "request_id": TEXT,
    "tenant": TEXT,
    "source": TEXT,
    "counts_by_kind": dict,
    "total": NUMBER,
    "new_mappings": NUMBER,
    "unresolved": NUMBER,
    "duration_ms": NUMBER,
    "bytes": NUMBER,
    "level": TEXT,
    "alert": TEXT,
    "message": TEXT,
}
QUEUE_SIZE = 2000  # per viewer: 4 s of a 500 events/s burst
MAX_FILTER_VALUES = 20
MAX_FILTER_LENGTH = 100
READ_TIMEOUT = 5.0  # seconds between liveness checks of the Pub/Sub connection
RETRY_DELAYS = (0.5, 1.0, 2.0, 5.0)


class InvalidFilter(ValueError):
    """A query-string filter the socket cannot honour."""


@dataclass(frozen=True)
class EventFilter:
    """Server-side filters from the socket URL; an empty set means "any"."""

    types: frozenset[str] = frozenset()
    tenants: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()
    sources: frozenset[str] = frozenset()

    def matches(self, event: dict) -> bool:
        if self.types and event.get("event_type") not in self.types:
            return False
        if self.tenants and event.get("tenant") not in self.tenants:
            return False
        if self.sources and event.get("source") not in self.sources:
            return False
        if self.kinds:
            counts = event.get("counts_by_kind") or {}
            return any(counts.get(kind) for kind in self.kinds)
        return True

    def as_dict(self) -> dict[str, list[str]]:
        names = {"type": self.types, "tenant": self.tenants, "kind": self.kinds, "source": self.sources}
        return {name: sorted(values) for name, values in names.items() if values}


def parse_filter(query: dict[str, list[str]]) -> EventFilter:
    """Build a filter from a parsed query string (`?type=masking,alert&tenant=acme&kind=ec2_instance`).

    Each parameter may repeat or hold comma-separated values. Unknown parameters are ignored."""

    def values(name: str) -> frozenset[str]:
        found = {v.strip() for raw in query.get(name, []) for v in raw.split(",") if v.strip()}
        if len(found) > MAX_FILTER_VALUES or any(len(v) > MAX_FILTER_LENGTH for v in found):
            raise InvalidFilter(f"too many or too long values for {name!r}")
        return frozenset(found)

    types = values("type")
    unknown = types - set(EVENT_TYPES)
    if unknown:
        raise InvalidFilter(f"unknown event type {sorted(unknown)[0]!r}")
    return EventFilter(types=types, tenants=values("tenant"), kinds=values("kind"), sources=values("source"))


def clean_event(data: bytes | str) -> dict | None:
    """The event as operators may see it, or None if the message is not an event object.

    Anyone who can publish on the Redis reaches this code, so every field is type-checked: a
    malformed message must not break the filters (unhashable values) or the relay (deep nesting)."""
    try:
        event = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(event, dict) or event.get("event_type") not in EVENT_TYPES:
        return None
    cleaned = {
        name: event[name]
        for name, accepted in EVENT_FIELDS.items()
        if name in event and isinstance(event[name], accepted) and not isinstance(event[name], bool)
    }
    counts = cleaned.get("counts_by_kind")
    if counts is not None and not all(isinstance(n, int) and not isinstance(n, bool) for n in counts.values()):
        del cleaned["counts_by_kind"]
    return cleaned


@dataclass(eq=False)
class Subscription:
    """One socket's view of the relay: a bounded queue and a count of what it had to drop."""

    event_filter: EventFilter
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    dropped: int = 0

    def offer(self, item: tuple) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped += 1

    def take_dropped(self) -> int:
        dropped, self.dropped = self.dropped, 0
        return dropped


# Queue items: ("event", serialized_json) or ("state", "live" | "unavailable").
LIVE, UNAVAILABLE = "live", "unavailable"


class Relay:
    """One Pub/Sub subscription shared by every socket on this event loop."""

    def __init__(self, url: str | None = None):
        self.url = url or settings.MASKING_REDIS_URL
        self.subscriptions: set[Subscription] = set()
        self.state = UNAVAILABLE
        self._task: asyncio.Task | None = None

    def join(self, event_filter: EventFilter) -> Subscription:
        subscription = Subscription(event_filter)
        self.subscriptions.add(subscription)
        if self.state == LIVE:
            subscription.offer(("state", LIVE))
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="live-events-relay")
        return subscription

    def leave(self, subscription: Subscription) -> None:
        self.subscriptions.discard(subscription)
        if not self.subscriptions and self._task is not None:
            self._task.cancel()
            self._task = None
            self.state = UNAVAILABLE

    def publish_locally(self, data: bytes | str) -> None:
        event = clean_event(data)
        if event is None:
            return
        text = None
        for subscription in self.subscriptions:
            if subscription.event_filter.matches(event):
                text = text or json.dumps(event, separators=(",", ":"))
                subscription.offer(("event", text))

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            for subscription in self.subscriptions:
                subscription.offer(("state", state))

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self._listen()
            except (redis.RedisError, OSError) as exc:
                logger.warning("live events: Redis Pub/Sub unavailable (%s); retrying", type(exc).__name__)
            except Exception:
                # A relay that died here would freeze every viewer of this process without a word.
                logger.exception("live events: relay failed; restarting it")
            if self.state == LIVE:
                failures = 0
            self._set_state(UNAVAILABLE)
            await asyncio.sleep(RETRY_DELAYS[min(failures, len(RETRY_DELAYS) - 1)])
            failures += 1

    async def _listen(self) -> None:
        client = aioredis.Redis.from_url(
            self.url,
            socket_connect_timeout=settings.REDIS_CONNECT_TIMEOUT,
            socket_timeout=settings.REDIS_COMMAND_TIMEOUT,
            socket_keepalive=True,
        )
        pubsub = client.pubsub()
        try:
            await pubsub.psubscribe(CHANNEL_PATTERN)
            confirmation = await pubsub.get_message(timeout=READ_TIMEOUT)
            if confirmation is None or confirmation["type"] != "psubscribe":
                raise redis.TimeoutError("no confirmation of PSUBSCRIBE")
            self._set_state(LIVE)
            await self._pump(pubsub)
        finally:
            await pubsub.aclose()
            await client.aclose()

    async def _pump(self, pubsub) -> None:
        # A half-open TCP connection (Redis host gone, no RST) would leave a blocking read
        # waiting forever, so a quiet connection is pinged and must answer within one more period.
        pinged = False
        while True:
            message = await pubsub.get_message(timeout=READ_TIMEOUT)
            if message is None:
                if pinged:
                    raise redis.TimeoutError("no answer to PING on the Pub/Sub connection")
                await pubsub.ping()
                pinged = True
                continue
            pinged = False
            if message["type"] == "pmessage":
                self.publish_locally(message["data"])


_relays: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Relay]" = weakref.WeakKeyDictionary()


def get_relay() -> Relay:
    """The relay of the running event loop (asyncio objects belong to the loop that made them)."""
    loop = asyncio.get_running_loop()
    relay = _relays.get(loop)
    if relay is None:
        relay = _relays[loop] = Relay()
    return relay
