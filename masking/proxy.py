"""The Claude API, masked: `POST /v1/messages` (streaming too) and `POST /v1/messages/count_tokens`.

Plain async Django views rather than adrf: the body must be read as raw bytes (size limit, UTF-8
check) and answered in the Claude API's error shape, and a stream is a `StreamingHttpResponse`,
so DRF's parsers, negotiation and renderers would be bypassed anyway; dropping them keeps the
gateway's own cost per request to the masking itself. Django's async path never pins a thread
while the upstream thinks, and cancels the view when the client goes away.
"""

import asyncio
import json
import logging
import time
import traceback
import uuid

import httpx
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from masking import upstream
from masking.auth import aauthenticate_key, key_from_headers
from masking.errors import HttpError, InvalidPayload, PayloadTooLarge, error_body, http_error, json_error
from masking.masker import amask_texts, aunmask_texts
from masking.models import DEFAULT_TENANT, ApiClient, hash_api_key
from masking.payload import read_slots, request_slots, response_slots, write_slots
from masking.store import MaskingUnavailable, TenantRef, alookup_originals, arecord_request
from masking.streaming import StreamRestorer
from masking.upstream import UpstreamError
from monitoring.metrics import aobserve_upstream

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-gateway-request-id"
AUTH_CACHE_SECONDS = 10
_known_clients: dict[str, tuple[float, ApiClient]] = {}
_background: set[asyncio.Task] = set()


class Unauthenticated(Exception):
    pass


class GatewayMisconfigured(Exception):
    pass


class ProxyHandler(ASGIHandler):
    """Django for the Claude API paths, without the middleware stack.

    Under ASGI each classic middleware hook runs through the one thread-sensitive executor, so the
    dozen hooks of sessions, CSRF, auth, messages and the like would serialise every proxied request
    through a single thread. The proxy uses API keys, never cookies, and needs none of them."""

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        self._middleware_chain = convert_exception_to_response(self._get_response_async)


def with_proxy(app):
    """`app` (the site) with `/v1/...` (the Claude API) served by the middleware-free handler."""
    proxy_app = ProxyHandler()

    async def route(scope, receive, send):
        target = proxy_app if scope["type"] == "http" and scope["path"].startswith("/v1/") else app
        await target(scope, receive, send)

    return route


@csrf_exempt
async def messages(request: HttpRequest) -> HttpResponse:
    return await _proxy(request, "/v1/messages")


@csrf_exempt
async def count_tokens(request: HttpRequest) -> HttpResponse:
    return await _proxy(request, "/v1/messages/count_tokens")


async def _proxy(request: HttpRequest, path: str) -> HttpResponse:
    call = _Call(request, path)
    try:
        response = await call.run()
    except (Unauthenticated, GatewayMisconfigured, InvalidPayload, PayloadTooLarge, MaskingUnavailable) as exc:
        response = json_error(_error(exc))
        call.finished(response.status_code)
    except UpstreamError as exc:
        logger.warning("upstream failed: %s (request %s)", exc.status, call.request_id)
        response = json_error(HttpError(exc.status, "api_error", exc.message))
        call.finished(response.status_code, upstream_error=True)
    except Exception as exc:
        # The message may quote the payload: log where it failed, never what it said.
        where = "".join(traceback.format_tb(exc.__traceback__))
        logger.error("proxy failed: %s (request %s)\n%s", type(exc).__name__, call.request_id, where)
        response = json_error(HttpError(500, "api_error", "Internal error."))
        call.finished(response.status_code)
    response[REQUEST_ID_HEADER] = call.request_id
    if not response.streaming:  # no CommonMiddleware here to set it
        response["content-length"] = str(len(response.content))
    return response


def _error(exc: Exception) -> HttpError:
    if isinstance(exc, Unauthenticated):
        return HttpError(401, "authentication_error", str(exc))
    if isinstance(exc, GatewayMisconfigured):
        return HttpError(500, "api_error", str(exc))
    return http_error(exc)


class _Call:
    """One proxied request: authenticate, mask, forward, restore."""

    def __init__(self, request: HttpRequest, path: str) -> None:
        self.request = request
        self.path = path
        self.request_id = uuid.uuid4().hex
        self.started = time.perf_counter()
        self.tenant: TenantRef = DEFAULT_TENANT

    async def run(self) -> HttpResponse:
        if self.request.method != "POST":
            return json_error(HttpError(405, "invalid_request_error", "Only POST is allowed here."))
        credentials, limit = await self._authenticate()
        body = self._body(limit)
        if settings.PROXY_MASKING:
            body = await self._masked(body)
        headers = upstream.forwarded_headers(self.request.headers.items(), credentials)
        sent = time.perf_counter()
        response = await upstream.send(self.path, self.request.META.get("QUERY_STRING", ""), headers, body)
        self._observe_upstream(time.perf_counter() - sent)
        if response.status_code == 200 and response.headers.get("content-type", "").startswith("text/event-stream"):
            return self._stream(response)
        return await self._restored(response)

    async def _authenticate(self) -> tuple[dict[str, str], int]:
        """Upstream credentials and this client's body size limit; nothing is read before this."""
        key = key_from_headers(self.request.headers)
        if not key:
            raise Unauthenticated("An API key is required (x-api-key or Authorization: Bearer).")
        if settings.GATEWAY_AUTH_MODE == "passthrough":
            sent_as_bearer = not self.request.headers.get("x-api-key")
            credentials = {"authorization": f"Bearer {key}"} if sent_as_bearer else {"x-api-key": key}
            return credentials, settings.MASKING_MAX_BODY_BYTES
        client = await _client_for(key)
        if client is None:
            raise Unauthenticated("Invalid or inactive API key.")
        self.tenant = client.tenant
        upstream_key = client.tenant.upstream_api_key or settings.ANTHROPIC_API_KEY
        if not upstream_key:
            raise GatewayMisconfigured("The gateway has no upstream API key configured (ANTHROPIC_API_KEY).")
        return {"x-api-key": upstream_key}, client.tenant.max_body_bytes or settings.MASKING_MAX_BODY_BYTES

    def _body(self, limit: int) -> bytes:
        declared = self.request.META.get("CONTENT_LENGTH")
        if declared and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(limit)
        # read(), not .body: .body applies Django's form-oriented DATA_UPLOAD_MAX_MEMORY_SIZE instead of ours.
        body = self.request.read(limit + 1)
        if len(body) > limit:
            raise PayloadTooLarge(limit)
        return body

    async def _masked(self, body: bytes) -> bytes:
        """Every text of the request masked with one store round trip, or an exception: never the original."""
        payload = self._parse(body)
        slots = request_slots(payload)
        masked = await amask_texts(read_slots(slots), tenant=self.tenant, source="proxy", request_id=self.request_id)
        write_slots(slots, masked.texts)
        return _dump(payload)

    @staticmethod
    def _parse(body: bytes) -> object:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidPayload("The request body is not valid UTF-8.") from None
        try:
            return json.loads(text)
        except ValueError:
            raise InvalidPayload("The request body is not valid JSON.") from None

    async def _restored(self, response: httpx.Response) -> HttpResponse:
        body = await upstream.read(response)
        if settings.PROXY_MASKING and b"AWS" in body:  # every token starts with AWS: otherwise nothing to restore
            body = await self._unmasked(body)
        self.finished(response.status_code, upstream_error=response.status_code >= 500)
        return HttpResponse(body, status=response.status_code, headers=upstream.returned_headers(response))

    async def _unmasked(self, body: bytes) -> bytes:
        try:
            payload = json.loads(body)
        except ValueError:
            return body
        slots = response_slots(payload)
        if not slots:
            return body
        unmasked = await aunmask_texts(
            read_slots(slots), tenant=self.tenant, source="proxy", request_id=self.request_id
        )
        if not unmasked.restored:
            return body
        write_slots(slots, unmasked.texts)
        return _dump(payload)

    def _stream(self, response: httpx.Response) -> StreamingHttpResponse:
        async def lookup(tokens: list[str]) -> dict[str, str]:
            return await alookup_originals(tokens, self.tenant)

        restorer = StreamRestorer(lookup) if settings.PROXY_MASKING else None
        streamed = StreamingHttpResponse(
            self._relay(response, restorer), status=200, headers=upstream.returned_headers(response)
        )
        streamed["cache-control"] = "no-cache"
        streamed["x-accel-buffering"] = "no"
        return streamed

    async def _relay(self, response: httpx.Response, restorer: StreamRestorer | None):
        status, failed = 200, False
        try:
            async for chunk in response.aiter_bytes():
                if out := await restorer.feed(chunk) if restorer else chunk:
                    yield out
            if restorer and (out := await restorer.finish()):
                yield out
        except (httpx.HTTPError, MaskingUnavailable) as exc:
            # The status line is gone already: tell the client the way the Claude API does mid-stream.
            status, failed = _stream_failure(exc)
            yield _error_event(_stream_failure_message(exc))
        except asyncio.CancelledError:
            status = 499  # the client went away; closing the response below cancels the upstream request
            raise
        finally:
            await response.aclose()
            self.finished(status, upstream_error=failed)

    def finished(self, status: int, upstream_error: bool = False) -> None:
        latency_ms = (time.perf_counter() - self.started) * 1000
        _in_background(arecord_request(status, latency_ms, upstream_error))

    def _observe_upstream(self, latency_s: float) -> None:
        _in_background(aobserve_upstream(latency_s))


async def _client_for(key: str) -> ApiClient | None:
    """The key's client, remembered for a few seconds: the ORM lookup is a thread hop and a query,
    more than the whole proxy costs otherwise. A revoked key stops working within AUTH_CACHE_SECONDS."""
    digest = hash_api_key(key)
    now = time.monotonic()
    cached = _known_clients.get(digest)
    if cached and cached[0] > now:
        return cached[1]
    client = await aauthenticate_key(key)
    if client is not None:
        if len(_known_clients) >= 10_000:
            _known_clients.clear()
        _known_clients[digest] = (now + AUTH_CACHE_SECONDS, client)
    return client


def _stream_failure(exc: Exception) -> tuple[int, bool]:
    if isinstance(exc, MaskingUnavailable):
        return 503, False
    return (504 if isinstance(exc, httpx.TimeoutException) else 502), True


def _stream_failure_message(exc: Exception) -> str:
    if isinstance(exc, MaskingUnavailable):
        return f"Masking is unavailable ({exc}); the answer cannot be restored."
    if isinstance(exc, httpx.TimeoutException):
        return "The upstream API did not answer in time."
    return "The upstream API connection broke."


def _error_event(message: str) -> bytes:
    data = json.dumps(error_body("api_error", message))
    return f"event: error\ndata: {data}\n\n".encode()


def _dump(payload: object) -> bytes:
    try:
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:  # a lone surrogate sent as \\ud800: keep it escaped, as the client did
        return json.dumps(payload, separators=(",", ":")).encode()


def _in_background(coro) -> None:
    """Counters are best effort and must not delay the answer."""
    task = asyncio.create_task(coro)
    _background.add(task)
    task.add_done_callback(_background.discard)
