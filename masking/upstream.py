"""The only outbound HTTP: requests to the Claude API through one pooled client per event loop.

httpx connections belong to the loop that opened them, so each loop (one per uvicorn worker in
production, one per test) gets its own `AsyncClient`, kept for the life of the loop."""

import asyncio
import weakref
from collections.abc import Iterable

import httpx
from django.conf import settings


class UpstreamError(Exception):
    """The upstream could not be reached (`status` 502) or did not answer in time (504)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient]" = weakref.WeakKeyDictionary()

# RFC 9110 section 7.6.1, plus what the gateway sets itself or must not leak upstream.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding"}
    | {"upgrade", "proxy-connection", "host", "content-length"}
)
_NOT_FORWARDED = HOP_BY_HOP | {"x-api-key", "authorization", "cookie", "accept-encoding", "forwarded"}
_NOT_RETURNED = HOP_BY_HOP | {"content-encoding", "set-cookie"}


def get_client() -> httpx.AsyncClient:
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        limits = httpx.Limits(
            max_connections=settings.UPSTREAM_MAX_CONNECTIONS,
            max_keepalive_connections=settings.UPSTREAM_MAX_CONNECTIONS,
        )
        client = httpx.AsyncClient(limits=limits, trust_env=False)
        _clients[loop] = client
    return client


def _timeout() -> httpx.Timeout:
    # Read from settings per request so a changed setting applies without a new client.
    return httpx.Timeout(
        connect=settings.UPSTREAM_CONNECT_TIMEOUT,
        read=settings.UPSTREAM_READ_TIMEOUT,
        write=settings.UPSTREAM_READ_TIMEOUT,
        pool=settings.UPSTREAM_CONNECT_TIMEOUT,
    )


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
    return headers


def returned_headers(response: httpx.Response) -> dict[str, str]:
    """Upstream response headers worth giving the client (request-id, rate limits, retry-after...)."""
    return {name: value for name, value in response.headers.items() if name.lower() not in _NOT_RETURNED}


async def send(path: str, query: str, headers: dict[str, str], body: bytes) -> httpx.Response:
    """POST to the upstream; the response is open for streaming and must be closed by the caller."""
    url = settings.ANTHROPIC_UPSTREAM_URL + path + (f"?{query}" if query else "")
    client = get_client()
    request = client.build_request("POST", url, headers=headers, content=body, timeout=_timeout())
    try:
        return await client.send(request, stream=True)
    except httpx.TimeoutException as exc:
        raise UpstreamError(504, "The upstream API did not answer in time.") from exc
    except httpx.HTTPError as exc:
        raise UpstreamError(502, "The upstream API could not be reached.") from exc


async def read(response: httpx.Response) -> bytes:
    """The whole body, with timeouts and broken connections as `UpstreamError`."""
    try:
        return await response.aread()
    except httpx.TimeoutException as exc:
        raise UpstreamError(504, "The upstream API did not answer in time.") from exc
    except httpx.HTTPError as exc:
        raise UpstreamError(502, "The upstream API connection broke.") from exc
    finally:
        await response.aclose()
