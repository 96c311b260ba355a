"""A pipelined Redis connection per event loop, for the one round trip every masked request makes.

`store.amapping_epoch` (the epoch GET, with the queued event PUBLISHes) runs before every masked
request is forwarded. Through redis-py's asyncio client that round trip cost ~120 µs of client CPU
for a GET and ~200-300 µs for a small pipeline, against a per-request masking budget of ~200 µs;
an `asyncio.Protocol` that writes `hiredis.pack_command` bytes and parses with `hiredis.Reader`
does the same in ~25-30 µs. Concurrent callers share one connection: each call's commands are
written at once and its replies are the next ones in the stream (a FIFO), so calls made together
are batched by the kernel and by Redis for free.

Replies are returned as hiredis gives them (bytes stay bytes); an error reply is returned in its
slot as a redis-py exception instance, not raised. Failures raise redis-py's `ConnectionError` /
`TimeoutError` with fixed messages (never a key or a value) and drop the connection: the next call
opens a new one.
"""

import asyncio
import builtins
import ssl
import weakref
from collections import deque
from collections.abc import Sequence
from urllib.parse import urlsplit

import hiredis
from django.conf import settings
from redis.connection import parse_url
from redis.exceptions import (
    AuthenticationError,
    BusyLoadingError,
    ConnectionError,
    NoPermissionError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
    TimeoutError,
)

UNREACHABLE = "redis is unreachable"
# The error codes `store.failure_reason` tells apart, as redis-py's parser classes them.
_ERRORS = {
    "READONLY": ReadOnlyError,
    "OOM": OutOfMemoryError,
    "NOPERM": NoPermissionError,
    "NOSCRIPT": NoScriptError,
    "LOADING": BusyLoadingError,
    "WRONGPASS": AuthenticationError,
    "NOAUTH": AuthenticationError,
}


def _error(reply: ResponseError) -> Exception:
    message = str(reply)
    code, _, rest = message.partition(" ")
    cls = _ERRORS.get(code)
    return cls(rest) if cls else reply


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection. `pending` holds [future, replies expected, replies so far,
    deadline] per call, oldest first; a cancelled caller's replies are still read, then dropped.

    One watchdog timer per connection checks the oldest call's deadline: a `call_later` per call,
    cancelled on its reply, cost ~9 µs of CPU a call under uvloop (a third of the whole)."""

    push = None  # on a subscribed connection: called with each Pub/Sub message, which answers no call

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.reader = hiredis.Reader(replyError=ResponseError)
        self.pending: deque[list] = deque()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.watchdog: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def send(self, commands: Sequence[tuple]) -> asyncio.Future:
        if self.closed:
            raise ConnectionError(UNREACHABLE)
        payload = b"".join([hiredis.pack_command(command) for command in commands])  # before queuing: may raise
        future = self.loop.create_future()
        deadline = self.loop.time() + settings.REDIS_COMMAND_TIMEOUT
        self.pending.append([future, len(commands), [], deadline])
        if self.watchdog is None:
            self.watchdog = self.loop.call_at(deadline, self._check_deadline)
        self.transport.write(payload)
        return future

    def _check_deadline(self) -> None:
        """Past its oldest call's deadline the connection is behind and cannot be trusted: drop it."""
        self.watchdog = None
        if self.closed or not self.pending:
            return
        deadline = self.pending[0][3]
        if self.loop.time() >= deadline:
            self.close(TimeoutError, "redis timed out")
        else:
            self.watchdog = self.loop.call_at(deadline, self._check_deadline)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        reader, pending, push = self.reader, self.pending, self.push
        reader.feed(data)
        try:
            while (reply := reader.gets()) is not False:
                if isinstance(reply, ResponseError):
                    reply = _error(reply)
                elif push is not None and type(reply) is list and reply[0] == b"message":
                    push(reply)
                    continue
                entry = pending[0]  # IndexError: a reply nobody asked for
                replies = entry[2]
                replies.append(reply)
                if len(replies) == entry[1]:
                    pending.popleft()
                    if not entry[0].done():
                        entry[0].set_result(replies)
        except (hiredis.ProtocolError, IndexError):
            self.close(ConnectionError, "redis sent an unexpected reply")

    def connection_lost(self, exc: Exception | None) -> None:
        self.close(ConnectionError, UNREACHABLE)

    def close(self, error: type[Exception], message: str) -> None:
        """Fail every pending call with `error(message)` and drop the connection."""
        if self.closed:
            return
        self.closed = True
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None
        while self.pending:
            future = self.pending.popleft()[0]
            if not future.done():
                future.set_exception(error(message))
        if self.transport is not None:
            self.transport.abort()


class Line:
    """Redis at `url` on this event loop: `await line.execute([("GET", key), ...])`."""

    def __init__(self, url: str):
        self.url = url
        self._conn: _Connection | None = None
        self._lock = asyncio.Lock()

    async def execute(self, commands: Sequence[tuple]) -> list:
        """The replies to `commands`, in order (an error reply is an exception in its slot)."""
        if not commands:
            return []
        conn = self._conn
        if conn is None or conn.closed:
            conn = await self._connected()
        return await conn.send(commands)

    def send_now(self, commands: Sequence[tuple]) -> asyncio.Future | None:
        """`execute()` with the commands written before returning (the future of their replies),
        or None while the line is not connected (then `execute()` connects first)."""
        conn = self._conn
        if conn is None or conn.closed or not commands:
            return None
        return conn.send(commands)

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.closed

    async def connection(self) -> _Connection:
        """This line's connection, opened (and authenticated) if it is not: for a caller that
        subscribes it (masking/tracking.py) and so must not share it."""
        conn = self._conn
        return conn if conn is not None and not conn.closed else await self._connected()

    async def _connected(self) -> _Connection:
        async with self._lock:  # callers arriving while it connects wait for the same connection
            if self._conn is None or self._conn.closed:
                self._conn = None
                try:
                    async with asyncio.timeout(settings.REDIS_CONNECT_TIMEOUT):
                        self._conn = await self._open()
                except builtins.TimeoutError:  # from asyncio.timeout (redis-py's TimeoutError is not one)
                    raise TimeoutError("redis timed out connecting") from None
                except OSError:
                    raise ConnectionError(UNREACHABLE) from None
            return self._conn

    async def _open(self) -> _Connection:
        options = parse_url(self.url)
        loop = asyncio.get_running_loop()
        if "path" in options:  # unix://
            _, conn = await loop.create_unix_connection(lambda: _Connection(loop), options["path"])
        else:
            host, port = options.get("host", "localhost"), options.get("port", 6379)
            context = _tls_context(options) if urlsplit(self.url).scheme == "rediss" else None
            _, conn = await loop.create_connection(
                lambda: _Connection(loop), host, port, ssl=context, server_hostname=host if context else None
            )
        handshake = []
        password, username = options.get("password"), options.get("username")
        if password:
            handshake.append(("AUTH", username, password) if username else ("AUTH", password))
        if options.get("db"):
            handshake.append(("SELECT", options["db"]))
        try:
            replies = await conn.send(handshake) if handshake else []
        except BaseException:
            conn.close(ConnectionError, UNREACHABLE)
            raise
        for command, reply in zip(handshake, replies, strict=True):
            if isinstance(reply, Exception):
                conn.close(ConnectionError, UNREACHABLE)
                if command[0] == "AUTH":
                    raise AuthenticationError("redis refused the credentials")
                raise ResponseError("redis refused the database number")
        return conn


def _tls_context(options: dict) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=options.get("ssl_ca_certs"))
    if str(options.get("ssl_cert_reqs", "required")).lower() in ("none", "cert_none"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


_lines: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Line]]" = weakref.WeakKeyDictionary()


def get_line(url: str | None = None) -> Line:
    """The line to `url` (default: the mapping database) for the running event loop."""
    url = url or settings.MASKING_REDIS_URL
    loop = asyncio.get_running_loop()
    lines = _lines.get(loop)
    if lines is None:
        # A line's transport holds its loop, so entries of closed loops (tests) never go by themselves.
        for old in [old for old in _lines if old.is_closed()]:
            del _lines[old]
        lines = _lines[loop] = {}
    line = lines.get(url)
    if line is None:
        line = lines[url] = Line(url)
    return line
