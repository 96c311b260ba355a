"""An HTTP/1.1 client transport for httpx, built on asyncio protocols and the httptools (llhttp) parser.

httpx's own transport (httpcore: h11 state machine, anyio cancel scopes, sniffio lookups on every
read and write) cost ~1.5 ms of CPU per proxied 16 KB request, ~85 % of the pass-through proxy's
CPU. Here a connection is an `asyncio.Protocol`: the socket's bytes go straight into the C parser,
whose callbacks fill the response; a request is one write and a few future awaits. Through httpx's
API (`handle_async_request`) it takes an `httpx.Request` and gives an `httpx.Response`; the proxy
calls `exchange` with the request's bytes and gets an `Answer`, lighter than an `httpx.Response`
and its `Headers` (~10 µs a request), which still has httpx decode gzip and deflate answers.

Scope: what a proxy to one HTTP/1.1 API needs. Request bodies are sent whole (the gateway always has
them as bytes); answers are streamed as they arrive, with Content-Length, chunked or read-until-close
framing. No HTTP/2, no HEAD (a HEAD answer's Content-Length would be waited for), no proxies.
"""

import asyncio
import select
import ssl
from collections import deque
from collections.abc import Callable
from functools import cache

import httptools
import httpx

BUFFER_LIMIT = 1 << 20  # stop reading the socket while this much of the answer waits for the consumer
KEEPALIVE_EXPIRY = 5.0  # seconds an idle connection is trusted (httpx's default): older ones may be closing


@cache
def default_ssl_context() -> ssl.SSLContext:
    try:
        import certifi
    except ImportError:  # pragma: no cover - certifi comes with httpx
        context = ssl.create_default_context()
    else:
        context = ssl.create_default_context(cafile=certifi.where())
    context.set_alpn_protocols(["http/1.1"])
    return context


class _Retry(Exception):
    """A reused connection died before the request was handed whole to the kernel: send it again."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection; the parser's callbacks fill in the current response."""

    def __init__(self, loop: asyncio.AbstractEventLoop, key: tuple) -> None:
        self.loop, self.key = loop, key
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.fd = -1
        self.closed = self.busy = self.reused = False
        self.idle_since = 0.0
        self.waiter: asyncio.Future | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.deadline, self.timeout_error = 0.0, httpx.ReadTimeout
        self.start()

    def start(self) -> None:
        self.status, self.headers, self.chunks, self.buffered = 0, [], [], 0
        self.head_done = self.complete = self.received = self.unsent = self.paused = self.keep_alive = False
        self.error: tuple[type[httpx.TransportError], str] | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        transport.set_write_buffer_limits(high=0)  # resume_writing() tells when the request is all sent
        sock = transport.get_extra_info("socket")
        self.fd = sock.fileno() if sock is not None else -1

    def data_received(self, data: bytes) -> None:
        if not self.busy or self.complete:  # nothing is expected on an idle connection, or after the answer
            self.close()
            return
        self.received = True
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            self.error = (httpx.RemoteProtocolError, "upstream sent malformed HTTP")
            self.close()
        self.wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
        if self.busy and not self.complete and self.error is None:
            if self.head_done and self._until_close():
                self.complete = True
            elif exc is not None:
                self.error = (httpx.ReadError, "upstream connection broke")
            else:
                self.error = (httpx.RemoteProtocolError, "upstream closed the connection")
        self.wake()

    def resume_writing(self) -> None:
        self.unsent = False
        self.wake()

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.head_done = True

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > BUFFER_LIMIT and not self.paused:
            self.paused = True
            self.transport.pause_reading()

    def on_message_complete(self) -> None:
        if 100 <= self.status < 200:  # an interim answer (100 Continue): the real one follows
            self.status, self.headers, self.head_done = 0, [], False
        else:
            self.complete = True
            self.keep_alive = self.parser.should_keep_alive()  # llhttp forgets once the message is done

    # used by the transport

    def _until_close(self) -> bool:
        """The answer has no length: its body ends when the connection does."""
        names = {name.lower() for name, _ in self.headers}
        return b"content-length" not in names and b"transfer-encoding" not in names

    def alive(self, now: float) -> bool:
        """Still open, recently used, and nothing (an EOF the loop has not seen yet) waiting on the socket."""
        if self.closed or self.transport.is_closing() or now - self.idle_since > KEEPALIVE_EXPIRY:
            return False
        if self.fd >= 0:
            poll = select.poll()
            poll.register(self.fd, select.POLLIN)
            return not poll.poll(0)
        return True

    def reusable(self) -> bool:
        return self.keep_alive and not self.closed and not self.unsent

    def close(self) -> None:
        if not self.closed and self.transport is not None:
            self.transport.close()

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self, timeout: float | None, error: type[httpx.TimeoutException]) -> None:
        """Until the next event on this connection, or `error` after `timeout` seconds without one.

        One timer per connection, re-armed only when it fires early: no timer per chunk."""
        self.waiter = waiter = self.loop.create_future()
        if timeout is None:
            self.deadline = float("inf")
        else:
            self.deadline, self.timeout_error = self.loop.time() + timeout, error
            if self.timer is None or self.timer.when() > self.deadline:
                if self.timer is not None:
                    self.timer.cancel()
                self.timer = self.loop.call_at(self.deadline, self._on_timer)
        try:
            await waiter
        finally:
            self.waiter = None

    def _on_timer(self) -> None:
        self.timer = None
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if self.loop.time() >= self.deadline - 0.001:
            waiter.set_exception(self.timeout_error("upstream timed out"))
        else:
            self.timer = self.loop.call_at(self.deadline, self._on_timer)

    async def exchange(self, data: list[bytes], timeouts: dict, sent: Callable[[], None] | None = None) -> None:
        """Send the request, return once the answer's head is in."""
        self.start()
        self.busy = True
        try:
            self.transport.writelines(data)
        except (RuntimeError, OSError):  # closed under us (uvloop raises): nothing was sent
            self.close()
            self.closed = True
        self.unsent = self.closed or self.transport.is_closing() or self.transport.get_write_buffer_size() > 0
        if sent is not None and not self.closed:
            sent()
        while not self.head_done:
            if self.error is not None or self.closed:
                if self.reused and self.unsent and not self.received:
                    raise _Retry
                raise self.fail()
            if self.unsent:
                await self.wait(timeouts.get("write"), httpx.WriteTimeout)
            else:
                await self.wait(timeouts.get("read"), httpx.ReadTimeout)

    def fail(self) -> httpx.TransportError:
        kind, message = self.error or (httpx.RemoteProtocolError, "upstream closed the connection")
        return kind(message)

    async def read(self, timeout: float | None) -> bytes:
        """The body bytes received since the last read; b"" at the end."""
        while not self.chunks:
            if self.complete:
                return b""
            if self.error is not None or self.closed:
                raise self.fail()
            await self.wait(timeout, httpx.ReadTimeout)
        chunks = self.chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self.chunks, self.buffered = [], 0
        if self.paused:
            self.paused = False
            self.transport.resume_reading()
        return data


class _Body(httpx.AsyncByteStream):
    """The answer's body, yielded as it comes off the socket; closing it gives the connection back."""

    def __init__(self, pool: "AsyncTransport", connection: _Connection, timeout: float | None) -> None:
        self.pool, self.connection, self.timeout = pool, connection, timeout

    async def __aiter__(self):
        while (connection := self.connection) is not None:
            chunk = await connection.read(self.timeout)
            if not chunk:
                break
            yield chunk

    async def aclose(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            self.pool.release(connection)


class Answer:
    """An answer whose head is in: its status, its headers and its body as it arrives. Close it (or
    read it whole) to give the connection back."""

    __slots__ = ("status_code", "raw_headers", "stream", "_headers", "_response")

    def __init__(self, status_code: int, raw_headers: list[tuple[bytes, bytes]], stream: "_Body") -> None:
        self.status_code, self.raw_headers, self.stream = status_code, raw_headers, stream
        self._headers: dict[str, str] | None = None
        self._response: httpx.Response | None = None

    @property
    def headers(self) -> dict[str, str]:
        """Lower-case names; a repeated header's values joined with ", " (as `httpx.Headers.items()`)."""
        if self._headers is None:
            headers: dict[str, str] = {}
            for name, value in self.raw_headers:
                name, value = name.decode("latin-1").lower(), value.decode("latin-1")
                headers[name] = f"{headers[name]}, {value}" if name in headers else value
            self._headers = headers
        return self._headers

    def httpx(self) -> httpx.Response:
        """The same answer as an `httpx.Response` (which decodes a compressed body)."""
        if self._response is None:
            self._response = httpx.Response(
                self.status_code,
                headers=self.raw_headers,
                stream=self.stream,
                extensions={"http_version": b"HTTP/1.1"},
            )
        return self._response

    def aiter_bytes(self):
        """The body as it arrives, decoded if it was compressed."""
        if "content-encoding" in self.headers:
            return self.httpx().aiter_bytes()
        return self.stream.__aiter__()

    async def aread(self) -> bytes:
        """The whole body, decoded; the connection is given back."""
        try:
            if "content-encoding" in self.headers:
                return await self.httpx().aread()
            chunks = [chunk async for chunk in self.stream]
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        await self.stream.aclose()


class AsyncTransport(httpx.AsyncBaseTransport):
    """Keep-alive pool per (scheme, host, port), at most `max_connections` open in all. One event loop only."""

    def __init__(self, max_connections: int = 100, ssl_context: ssl.SSLContext | None = None) -> None:
        self.max_connections = max_connections
        self.ssl_context = ssl_context
        self.idle: dict[tuple, list[_Connection]] = {}
        self.count = 0  # open connections, idle or busy
        self.waiters: deque[asyncio.Future] = deque()
        self.closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        key = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        answer = await self.exchange(key, await _encode(request), request.extensions.get("timeout", {}))
        return answer.httpx()

    async def exchange(
        self, key: tuple[str, str, int], data: list[bytes], timeouts: dict, sent: Callable[[], None] | None = None
    ) -> Answer:
        """Send a request already on the wire's terms (`data`: head and body bytes) to `key` (scheme,
        host, port); return once the answer's head is in. `sent()` is called once the request is
        written, before waiting: work for the time the upstream thinks (masking.deferred)."""
        for attempt in (1, 2):
            connection = await self._acquire(key, timeouts)
            try:
                await connection.exchange(data, timeouts, sent)
            except _Retry:
                self.release(connection)
                if attempt == 2:
                    raise httpx.RemoteProtocolError("upstream closed the connection") from None
                continue
            except BaseException:
                self.release(connection)  # not complete: closed (and the upstream sees the disconnect)
                raise
            return Answer(connection.status, connection.headers, _Body(self, connection, timeouts.get("read")))
        raise AssertionError("unreachable")

    async def _acquire(self, key: tuple, timeouts: dict) -> _Connection:
        loop = asyncio.get_running_loop()
        deadline = None
        while True:
            idle = self.idle.get(key)
            now = loop.time() if idle else 0.0
            while idle:
                connection = idle.pop()  # the most recently used: the least likely to have timed out
                if connection.alive(now):
                    connection.reused = True
                    return connection
                self._forget(connection)
            if self.count >= self.max_connections:
                self._close_one_idle()
            if self.count < self.max_connections:
                break
            pool_timeout = timeouts.get("pool")
            if deadline is None and pool_timeout is not None:
                deadline = loop.time() + pool_timeout
            waiter = loop.create_future()
            self.waiters.append(waiter)
            try:
                async with asyncio.timeout_at(deadline):
                    await waiter
            except BaseException as exc:
                if waiter in self.waiters:
                    self.waiters.remove(waiter)
                elif waiter.done() and not waiter.cancelled():
                    self._wake_one()  # woken, but leaving: pass the turn on
                if isinstance(exc, TimeoutError):
                    raise httpx.PoolTimeout("no free upstream connection in time") from None
                raise
        self.count += 1
        try:
            return await self._connect(loop, key, timeouts.get("connect"))
        except BaseException:
            self.count -= 1
            self._wake_one()
            raise

    async def _connect(self, loop: asyncio.AbstractEventLoop, key: tuple, timeout: float | None) -> _Connection:
        scheme, host, port = key
        tls = None
        if scheme == "https":
            tls = self.ssl_context or default_ssl_context()
        try:
            async with asyncio.timeout(timeout):
                _, connection = await loop.create_connection(
                    lambda: _Connection(loop, key), host, port, ssl=tls, server_hostname=host if tls else None
                )
        except TimeoutError:
            raise httpx.ConnectTimeout("upstream connection timed out") from None
        except (OSError, ssl.SSLError, ssl.CertificateError) as exc:
            raise httpx.ConnectError(f"upstream connection failed ({type(exc).__name__})") from exc
        return connection

    def release(self, connection: _Connection) -> None:
        """Back to the pool if its answer was read whole and it may be kept alive; closed otherwise."""
        connection.busy = False
        if connection.reusable() and not self.closed:
            connection.idle_since = connection.loop.time()
            self.idle.setdefault(connection.key, []).append(connection)
        else:
            connection.close()
            self.count -= 1
        self._wake_one()

    def _forget(self, connection: _Connection) -> None:
        connection.close()
        self.count -= 1

    def _close_one_idle(self) -> None:
        for connections in self.idle.values():
            if connections:
                self._forget(connections.pop(0))
                return

    def _wake_one(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def aclose(self) -> None:
        self.closed = True
        for connections in self.idle.values():
            for connection in connections:
                self._forget(connection)
        self.idle.clear()


async def _encode(request: httpx.Request) -> list[bytes]:
    """The request as it goes on the wire: head and body, sent with one write."""
    streamed = not isinstance(request.stream, httpx.ByteStream)
    body = await request.aread()
    headers = request.headers.raw
    if streamed:  # read whole above: sent with its length instead of chunked
        headers = [(n, v) for n, v in headers if n.lower() not in (b"transfer-encoding", b"content-length")]
        headers.append((b"Content-Length", str(len(body)).encode()))
    lines = [b"%s %s HTTP/1.1\r\n" % (request.method.encode(), request.url.raw_path)]
    lines += [b"%s: %s\r\n" % header for header in headers]
    lines.append(b"\r\n")
    return [b"".join(lines), body]
