"""The only outbound HTTP: requests to the Claude API through one connection pool per event loop.

Connections belong to the loop that opened them, so each loop (one per uvicorn worker in
production, one per test) gets its own pool, kept for the life of the loop. Requests go straight
to a transport, not through an `AsyncClient`: a proxy wants none of the client's cookie jar
(which would also carry one tenant's upstream cookies into another's requests), redirects, auth
or default headers, and they cost more CPU per request than the HTTP exchange itself.

The transport is our own (`masking.transport`: asyncio protocol + httptools), not httpx's: httpcore
(h11, anyio cancel scopes, sniffio) took ~1.5 ms of CPU for a 16 KB request and 16 KB answer, ~85 %
of the pass-through proxy's CPU, where the fake upstream answering it (uvicorn + httptools) took
~0.4 ms. Requests are written as bytes here (`send`), answers come as the transport's `Answer`
(httpx decodes gzip and deflate ones); httpx's request and response objects are used only in tests
of the transport."""

import asyncio
import weakref
from collections.abc import Callable, Iterable
from functools import lru_cache

import httpx
from django.conf import settings

from masking.transport import Answer, AsyncTransport


class UpstreamError(Exception):
    """The upstream could not be reached (`status` 502) or did not answer in time (504)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


_transports: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncTransport]" = weakref.WeakKeyDictionary()

# RFC 9110 section 7.6.1, plus what the gateway sets itself or must not leak upstream.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding"}
    | {"upgrade", "proxy-connection", "host", "content-length"}
)
_NOT_FORWARDED = HOP_BY_HOP | {"x-api-key", "authorization", "cookie", "accept-encoding", "forwarded"}
_NOT_RETURNED = HOP_BY_HOP | {"content-encoding", "set-cookie"}


def get_transport() -> AsyncTransport:
    loop = asyncio.get_running_loop()
    transport = _transports.get(loop)
    if transport is None:
        transport = AsyncTransport(max_connections=settings.UPSTREAM_MAX_CONNECTIONS)
        _transports[loop] = transport
    return transport


def _timeout() -> dict[str, float]:
    # Read from settings per request so a changed setting applies without a new pool.
    return {
        "connect": settings.UPSTREAM_CONNECT_TIMEOUT,
        "read": settings.UPSTREAM_READ_TIMEOUT,
        "write": settings.UPSTREAM_READ_TIMEOUT,
        "pool": settings.UPSTREAM_CONNECT_TIMEOUT,
    }


def forwarded_headers(client_headers: Iterable[tuple[str, str]], credentials: dict[str, str]) -> dict[str, str]:
    """The client's end-to-end headers (anthropic-version, anthropic-beta, ...) with upstream credentials."""
    connection_listed = set()
    headers = {}
    for name, value in client_headers:
        lower = name.lower()
        if lower == "connection":
            connection_listed |= {token.strip().lower() for token in value.split(",")}
        if lower not in _NOT_FORWARDED and not lower.startswith("x-forwarded-"):
            headers[lower] = value
    for name in connection_listed:
        headers.pop(name, None)
    headers.update(credentials)
    headers["content-type"] = "application/json"
    headers["accept-encoding"] = "gzip, deflate"  # the gateway's own (httpx decodes the answer)
    return headers


def returned_headers(response: Answer) -> dict[str, str]:
    """Upstream response headers worth giving the client (request-id, rate limits, retry-after...)."""
    return {name: value for name, value in response.headers.items() if name not in _NOT_RETURNED}


@lru_cache(maxsize=256)
def _target(url: str) -> tuple[tuple[str, str, int], bytes]:
    """(scheme, host, port) and the request line with its Host header, per upstream URL: there are few."""
    parsed = httpx.URL(url)
    key = (parsed.scheme, parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80))
    return key, b"POST %s HTTP/1.1\r\nHost: %s\r\n" % (parsed.raw_path, parsed.netloc)


def _head(start: bytes, headers: dict[str, str], length: int) -> bytes:
    """The request head as it goes on the wire. Built here rather than by an `httpx.Request`, which
    cost as much as the rest of forwarding (~12 us): the headers are already a plain dict of
    end-to-end headers (forwarded_headers())."""
    block = "".join([f"{name}: {value}\r\n" for name, value in headers.items()])
    if block.count("\n") != len(headers) or block.count("\r") != len(headers):
        raise UpstreamError(502, "A header to forward holds a line break.")  # a misconfigured key, say
    try:
        encoded = block.encode("latin-1")
    except UnicodeEncodeError:
        raise UpstreamError(502, "A header to forward is not Latin-1 text.") from None
    return b"%s%sContent-Length: %d\r\n\r\n" % (start, encoded, length)


async def send(
    path: str, query: str, headers: dict[str, str], body: bytes, sent: Callable[[], None] | None = None
) -> Answer:
    """POST to the upstream; the answer is open for streaming and must be closed by the caller.
    `sent()`, if given, is called once the request is written, while the upstream thinks."""
    key, start = _target(settings.ANTHROPIC_UPSTREAM_URL + path + (f"?{query}" if query else ""))
    try:
        return await get_transport().exchange(key, [_head(start, headers, len(body)), body], _timeout(), sent)
    except httpx.TimeoutException as exc:
        raise UpstreamError(504, "The upstream API did not answer in time.") from exc
    except httpx.HTTPError as exc:
        raise UpstreamError(502, "The upstream API could not be reached.") from exc


async def read(response: Answer) -> bytes:
    """The whole body, with timeouts and broken connections as `UpstreamError`."""
    try:
        return await response.aread()  # and gives the connection back
    except httpx.TimeoutException as exc:
        raise UpstreamError(504, "The upstream API did not answer in time.") from exc
    except httpx.HTTPError as exc:
        raise UpstreamError(502, "The upstream API connection broke.") from exc
