"""Redis tells each worker when the mapping epoch or the API keys change, so that a request whose
identifiers the worker remembers is forwarded without waiting for a Redis round trip.

Every masked request used to read the mapping epoch and the API keys' version before it was
forwarded (`store.amapping_epoch`): the fail-closed check, and how a worker learns that a mapping
was revoked or a key deactivated. With a fake upstream that answers at once, that round trip was
about a tenth of a masked request's time. Redis can instead push the change: server-assisted
client-side caching (`CLIENT TRACKING`, Redis 6 and later). One connection per event loop turns
tracking on in broadcast mode for the two keys, redirected to itself, and subscribes to
`__redis__:invalidate`; Redis then sends it a message whenever either key is written, expires or
is deleted, and when the database is flushed.

A request may skip the read (`trusted()` gives the replies of the last one) only when all hold:
- this loop's watch is connected and subscribed (Redis going away closes it: the next request reads,
  and fails closed);
- the last read was started after the watch subscribed, no change was pushed since it started, and
  no code in this process changed either key since (`distrust()`, called where they are written);
- it answered less than `MAPPING_EPOCH_TRUST_SECONDS` ago (default 1 s; 0 turns the skip off), which
  bounds how long a Redis that vanished without closing its connections goes unnoticed;
- the mapping line itself is connected, and nothing is waiting unread on the watch's socket (a
  change or the connection's end that arrived while this loop was busy: one `poll(2)`).
Otherwise the read goes out as before. Only requests whose every identifier the worker remembers
are forwarded without one: nothing unmasked is ever forwarded, as any other request runs the mask
script, which needs Redis. A Redis that refuses `CLIENT TRACKING` (older than 6, or the command
renamed) leaves the watch off: every request reads, as before.
"""

import asyncio
import itertools
import logging
import select
import weakref

from django.conf import settings
from redis.exceptions import ConnectionError, RedisError

from masking.redisline import Line, get_line

logger = logging.getLogger(__name__)

CHANNEL = b"__redis__:invalidate"
RETRY_SECONDS = 5.0  # after a watch failed to start (Redis down, or no CLIENT TRACKING)

# Bumped by `distrust()` (any thread): reads answered before it are not trusted by any loop.
_changes = itertools.count()
_changed = next(_changes)


def distrust() -> None:
    """This process changed the mapping epoch or the API keys: every loop's next request reads them."""
    global _changed
    _changed = next(_changes)


class Watch:
    """The invalidation connection of one event loop for one Redis URL, and the last trusted read."""

    def __init__(self, url: str, keys: tuple[str, ...]):
        self.url, self.keys = url, keys
        self.conn = None  # the subscribed redisline connection, once tracking is on
        self.starting: asyncio.Task | None = None
        self.retry_at = 0.0
        self.failed = False  # the last start failed (logged once)
        self.generation = 0  # bumped by every pushed change and every new subscription
        self.known: list | None = None  # the last trusted read's replies (epoch, keys version)
        self.known_generation: tuple = ()
        self.line: Line | None = None
        self.poller: select.poll | None = None  # the subscribed connection's socket, polled by `_quiet`
        self.known_until = 0.0

    def trusted(self, loop: asyncio.AbstractEventLoop) -> list | None:
        """The last read's replies, if a request may use them instead of reading (see module doc)."""
        known = self.known
        if known is None:
            return None
        conn = self.conn
        if (
            conn is None
            or conn.closed
            or self.known_generation != (self.generation, _changed)
            or loop.time() >= self.known_until
            or not self.line.connected
            or not self._quiet()
        ):
            self.known = None
            return None
        return known

    def _quiet(self) -> bool:
        """Nothing unread on the watch's socket: no change pushed and no end of connection that this
        loop has yet to read (Redis stopped a moment ago: its EOF may be there, not yet handled).
        One poll(2) with no wait, on a poll object made with the connection (a tenth of the cost
        of peeking at the socket with recv): readable, hung up or failed all mean "not quiet"."""
        return not self.poller.poll(0)

    def reading(self, read: asyncio.Future, loop: asyncio.AbstractEventLoop) -> None:
        """`read` (the epoch and keys version, last two replies) went out: trust its answer if nothing
        changes meanwhile. Starts the watch if it is not running."""
        if self.conn is None or self.conn.closed:
            self._start(loop)
            return
        self.line = get_line(self.url)
        generation = (self.generation, _changed)
        read.add_done_callback(lambda done: self._answered(done, generation, loop))

    def _answered(self, read: asyncio.Future, generation: tuple, loop: asyncio.AbstractEventLoop) -> None:
        if read.cancelled() or read.exception() is not None:
            return
        replies = read.result()[-2:]
        if generation != (self.generation, _changed) or any(isinstance(r, Exception) for r in replies):
            return
        if replies[0] is None:  # no epoch yet: the reader creates one, which is pushed back as a change
            return
        self.known, self.known_generation = replies, generation
        self.known_until = loop.time() + settings.MAPPING_EPOCH_TRUST_SECONDS

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.starting is not None or loop.time() < self.retry_at or settings.MAPPING_EPOCH_TRUST_SECONDS <= 0:
            return
        self.starting = loop.create_task(self._subscribe())
        self.starting.add_done_callback(self._started)

    async def _subscribe(self):
        conn = await Line(self.url).connection()  # its own connection: a subscribed one takes no commands
        try:
            conn.push = self._pushed
            (client_id,) = await conn.send([("CLIENT", "ID")])
            replies = []
            if not isinstance(client_id, Exception):
                prefixes = [word for key in self.keys for word in ("PREFIX", key)]
                tracking = ("CLIENT", "TRACKING", "ON", "REDIRECT", client_id, "BCAST", *prefixes)
                replies = await conn.send([tracking, ("SUBSCRIBE", CHANNEL)])
        except BaseException:
            conn.close(ConnectionError, "tracking stopped")
            raise
        if any(isinstance(reply, Exception) for reply in (client_id, *replies)):
            conn.close(ConnectionError, "tracking refused")
            raise RedisError("redis refused CLIENT TRACKING")
        return conn

    def _started(self, task: asyncio.Task) -> None:
        self.starting = None
        if task.cancelled() or task.exception() is not None:
            if not task.cancelled() and not self.failed:  # logged once: it is retried every RETRY_SECONDS
                reason = type(task.exception()).__name__
                logger.info("no invalidation watch (%s): every masked request reads Redis", reason)
            self.failed = True
            self.retry_at = asyncio.get_running_loop().time() + RETRY_SECONDS
            return
        self.conn, self.failed = task.result(), False
        self.poller = select.poll()  # the old one's socket is closed (`trusted` never gets to it)
        self.poller.register(self.conn.transport.get_extra_info("socket").fileno(), select.POLLIN | select.POLLPRI)
        self.generation += 1  # reads started before the subscription may have missed a change

    def _pushed(self, message: list) -> None:
        if message[1] == CHANNEL:
            self.generation += 1
            self.known = None


_watches: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Watch]]" = weakref.WeakKeyDictionary()


def watch(keys: tuple[str, ...], url: str | None = None) -> Watch:
    """The running loop's watch of `keys` at `url` (default: the mapping database)."""
    url = url or settings.MASKING_REDIS_URL
    loop = asyncio.get_running_loop()
    watches = _watches.get(loop)
    if watches is None:
        for old in [old for old in _watches if old.is_closed()]:  # their connections hold them (tests)
            del _watches[old]
        watches = _watches[loop] = {}
    found = watches.get(url)
    if found is None:
        found = watches[url] = Watch(url, keys)
    return found
