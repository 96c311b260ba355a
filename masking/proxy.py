"""The Claude API, masked: `POST /v1/messages` (streaming too) and `POST /v1/messages/count_tokens`.

A small ASGI endpoint rather than a DRF (adrf) or Django view. The body is read as raw bytes (size
limit while it arrives, UTF-8 check) and every answer is in the Claude API's shape, so DRF's
parsers, negotiation and renderers would be bypassed anyway; and Django's ASGI handler costs two
thread hand-offs per request (request signals and response close run in a per-request thread),
more than the whole proxy otherwise costs. Everything here is async: no thread is pinned while the
upstream thinks, one process serves hundreds of streams, and a client that goes away cancels the
upstream request. `with_proxy()` mounts it at `/v1/` in front of the Django site (config/asgi.py).
"""

import asyncio
import json
import logging
import random
import time
import traceback
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections

from masking import answers, cache, deferred, jsonbody, upstream
from masking.auth import authenticate_key, key_from_headers
from masking.errors import HttpError, InvalidPayload, PayloadTooLarge, error_body, http_error
from masking.masker import amask_texts, start_epoch_read
from masking.models import DEFAULT_TENANT, ApiClient, hash_api_key
from masking.payload import read_slots, request_slots, response_slots, write_slots
from masking.ratelimit import RateLimited, acheck
from masking.store import MaskingUnavailable, TenantRef, count_request, tenant_slug
from masking.streaming import StreamRestorer, TokenCache
from masking.transport import Answer as UpstreamAnswer
from masking.unmasker import alookup_originals, aunmask_texts, kind_of, publish_proxy_unmasking
from masking.upstream import UpstreamError
from monitoring.metrics import note_upstream

logger = logging.getLogger(__name__)

ROUTES = {"/v1/messages", "/v1/messages/count_tokens"}
REQUEST_ID_HEADER = "x-gateway-request-id"
AUTH_CACHE_SECONDS = 10
# key hash -> (until, client, cache.api_keys generation it was looked up in)
_known_clients: dict[str, tuple[float, ApiClient, int]] = {}
# (loop, key hash, generation) -> the lookup in flight (`_client_for`)
_lookups: dict[tuple, asyncio.Task] = {}


class Unauthenticated(Exception):
    pass


class GatewayMisconfigured(Exception):
    pass


class ClientGone(Exception):
    """The client disconnected before its request body arrived."""


@dataclass
class Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    stream: AsyncIterator[bytes] | None = None


def with_proxy(app):
    """`app` (the Django site) with `/v1/...` (the Claude API) served by the proxy."""

    async def route(scope, receive, send):
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            await proxy_app(scope, receive, send)
        else:
            await app(scope, receive, send)

    return route


async def proxy_app(scope, receive, send) -> None:
    call = _Call(scope, receive)
    answer = await call.answer()
    if answer is None:
        return
    answer.headers[REQUEST_ID_HEADER] = call.request_id
    try:
        await _respond(answer, send)
    except asyncio.CancelledError:
        if not call.stop_watching():  # not the client leaving mid-stream: the server is stopping
            raise
    else:
        call.stop_watching()


def _error(exc: Exception) -> HttpError:
    if isinstance(exc, Unauthenticated):
        return HttpError(401, "authentication_error", str(exc))
    if isinstance(exc, GatewayMisconfigured):
        return HttpError(500, "api_error", str(exc))
    return http_error(exc)


def _error_answer(error: HttpError) -> Answer:
    body = json.dumps(error_body(error.type, error.message)).encode()
    return Answer(error.status, {"content-type": "application/json"}, body)


class _Call:
    """One proxied request: authenticate, mask, forward, restore."""

    def __init__(self, scope, receive) -> None:
        self.scope = scope
        self.receive = receive
        self.headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            name, value = name.decode("latin-1").lower(), value.decode("latin-1")
            self.headers[name] = f"{self.headers[name]}, {value}" if name in self.headers else value
        self.request_id = f"{random.getrandbits(128):032x}"  # as uuid4().hex reads, at a fifth of its cost
        self.started = time.perf_counter()
        self.tenant: TenantRef = DEFAULT_TENANT
        self.cache = TokenCache(self._lookup)
        self.prefetched: asyncio.Task | None = None
        self.restore: dict[bytes, bytes] | None = None  # the request's tokens -> originals (MaskResult.restore)
        self.kinds: dict[bytes, str] | None = None  # the same tokens -> their kinds (MaskResult.kinds)
        self.epoch: asyncio.Future | None = None  # the mapping epoch's read, started before the body is read
        self.key: str | None = None  # a gateway key, checked again if API clients change meanwhile
        self.keys_generation = 0
        self.watcher: asyncio.Task | None = None  # cancels the request if the client goes away

    async def answer(self) -> Answer | None:
        """What `run()` returns, or the error it raised in the Claude API's shape (None: nobody to tell)."""
        try:
            return await self.run()
        except ClientGone:
            self.finished(499)
            return None
        except asyncio.CancelledError:
            if not self.stop_watching():  # not the client: the server is stopping
                raise
            self.finished(499)  # the client left while the upstream was thinking: it was cancelled
            return None
        except (Unauthenticated, GatewayMisconfigured, InvalidPayload, PayloadTooLarge, MaskingUnavailable) as exc:
            answer = _error_answer(_error(exc))
            self.finished(answer.status)
        except RateLimited as exc:
            answer = _error_answer(HttpError(429, "rate_limit_error", str(exc)))
            answer.headers["retry-after"] = str(exc.retry_after)
            self.finished(answer.status)
        except UpstreamError as exc:
            logger.warning("upstream failed: %s (request %s)", exc.status, self.request_id)
            answer = _error_answer(HttpError(exc.status, "api_error", exc.message))
            self.finished(answer.status, upstream_error=True)
        except Exception as exc:
            _log_failure(exc, self.request_id)
            answer = _error_answer(HttpError(500, "api_error", "Internal error."))
            self.finished(answer.status)
        if answer.stream is None:
            self.stop_watching()
        return answer

    def watch(self) -> None:
        """Once the body is in: a client that goes away cancels this request (its upstream call,
        or its stream) by cancelling the task serving it."""
        self.watcher = asyncio.get_running_loop().create_task(self._disconnected(asyncio.current_task()))

    def stop_watching(self) -> bool:
        """Stop the watcher; whether the client went away (and cancelled the request)."""
        watcher, self.watcher = self.watcher, None
        if watcher is None:
            return False
        if not watcher.done():
            watcher.cancel()
            return False
        gone = not watcher.cancelled() and watcher.result()
        if gone:
            asyncio.current_task().uncancel()  # the cancellation it caused is handled
        return gone

    async def _disconnected(self, task: asyncio.Task) -> bool:
        while (await self.receive())["type"] != "http.disconnect":
            pass
        task.cancel()
        return True

    async def run(self) -> Answer:
        if self.scope["path"] not in ROUTES:
            return _error_answer(HttpError(404, "not_found_error", "The gateway serves /v1/messages only."))
        if self.scope["method"] != "POST":
            return _error_answer(HttpError(405, "invalid_request_error", "Only POST is allowed here."))
        credentials, limit = await self._authenticate()
        if settings.PROXY_MASKING:  # the fail-closed Redis read goes out first; the body is read meanwhile
            self.epoch = await start_epoch_read()
        body = await self._body(limit)
        if settings.PROXY_MASKING:
            body = await self._masked(body)
        headers = upstream.forwarded_headers(self.headers.items(), credentials)
        query = self.scope["query_string"].decode("latin-1")
        sent = time.perf_counter()
        # The bookkeeping earlier requests left (masking.deferred) runs once this one is sent.
        response = await upstream.send(self.scope["path"], query, headers, body, sent=deferred.run_now)
        note_upstream(time.perf_counter() - sent)
        if response.status_code == 200 and response.headers.get("content-type", "").startswith("text/event-stream"):
            return self._stream(response)
        return await self._restored(response)

    async def _authenticate(self) -> tuple[dict[str, str], int]:
        """Upstream credentials and this client's body size limit; nothing is read before this."""
        key = key_from_headers(self.headers)
        if not key:
            raise Unauthenticated("An API key is required (x-api-key or Authorization: Bearer).")
        if settings.GATEWAY_AUTH_MODE == "passthrough":
            sent_as_bearer = not self.headers.get("x-api-key")
            credentials = {"authorization": f"Bearer {key}"} if sent_as_bearer else {"x-api-key": key}
            return credentials, settings.MASKING_MAX_BODY_BYTES
        client = await _client_for(key)
        if client is None:
            raise Unauthenticated("Invalid or inactive API key.")
        self.key, self.keys_generation = key, cache.api_keys.number
        self.tenant = client.tenant
        await acheck(client.tenant)
        upstream_key = client.tenant.upstream_api_key or settings.ANTHROPIC_API_KEY
        if not upstream_key:
            raise GatewayMisconfigured("The gateway has no upstream API key configured (ANTHROPIC_API_KEY).")
        return {"x-api-key": upstream_key}, client.tenant.max_body_bytes or settings.MASKING_MAX_BODY_BYTES

    async def _body(self, limit: int) -> bytes:
        """The request body, refused as soon as it is known to be over `limit` (never buffered whole)."""
        declared = self.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(limit)
        chunks, size = [], 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(limit)
            chunks.append(chunk)
            if not message.get("more_body"):
                self.watch()
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _masked(self, body: bytes) -> bytes:
        """Every text of the request masked with one store round trip, or an exception: never the original."""
        payload, finite = jsonbody.parse(body)
        slots = request_slots(payload)
        texts = read_slots(slots)
        masked = await amask_texts(
            texts, tenant=self.tenant, source="proxy", request_id=self.request_id, epoch=self.epoch
        )
        if self.key is not None and self.keys_generation != cache.api_keys.number and not await _client_for(self.key):
            raise Unauthenticated("Invalid or inactive API key.")  # deactivated while remembered: nothing forwarded
        if not any(masked.entities):  # nothing found (or every kind found is "off"): the body as the client wrote it
            return body
        self.restore, self.kinds = masked.restore, masked.kinds
        write_slots(slots, masked.texts)
        if isinstance(payload, dict) and payload.get("stream") is True:
            # The answer mostly names what the question did: fetch those originals in one MGET while the
            # upstream thinks, rather than one round trip per token as they stream by.
            tokens = list(dict.fromkeys(entity.token for entities in masked.entities for entity in entities))
            remembered = cache.mappings.originals(tenant_slug(self.tenant), tokens)
            if len(remembered) == len(tokens):  # the usual case: all in this worker's memory, no task needed
                self.cache.known.update(remembered)
            else:
                self.prefetched = asyncio.create_task(self.cache.originals(tokens))
                self.prefetched.add_done_callback(deferred.retrieved)  # unused when the upstream fails
        return jsonbody.dump(payload, finite)

    async def _lookup(self, tokens: list[str]) -> dict[str, str]:
        return await alookup_originals(tokens, self.tenant)

    async def _restored(self, response: UpstreamAnswer) -> Answer:
        body = await upstream.read(response)
        # Every token starts with "AWS", unless a JSON escape spells it (tokens.split_json_tokens)
        if settings.PROXY_MASKING and (b"AWS" in body or b"\\u00" in body):
            body = await self._unmasked(body)
        self.finished(response.status_code, upstream_error=response.status_code >= 500)
        return Answer(response.status_code, upstream.returned_headers(response), body)

    async def _unmasked(self, body: bytes) -> bytes:
        restored = await answers.arestore(body, self.tenant, self.request_id, self.restore, self.kinds)
        if restored is not None:
            return restored
        payload, finite = jsonbody.fast_loads(body), True
        if payload is None:
            try:
                payload, finite = jsonbody.loads(body)
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
        return jsonbody.dump(payload, finite)

    def _stream(self, response: UpstreamAnswer) -> Answer:
        restorer = StreamRestorer(self.cache, self.restore) if settings.PROXY_MASKING else None
        headers = upstream.returned_headers(response)
        headers.update({"cache-control": "no-cache", "x-accel-buffering": "no"})
        return Answer(200, headers, stream=self._relay(response, restorer))

    async def _relay(self, response: UpstreamAnswer, restorer: StreamRestorer | None) -> AsyncIterator[bytes]:
        status, failed = 200, False
        try:
            if self.prefetched:
                await self.prefetched
            relayed, streamed_at = 0, time.perf_counter()
            async for chunk in response.aiter_bytes():
                relayed += len(chunk)
                if out := await restorer.feed(chunk) if restorer else chunk:
                    yield out
            if restorer and (out := await restorer.finish()):
                yield out
            if restorer:
                restored = self.cache.restored  # counted by kind when the event is built
                publish_proxy_unmasking(
                    None,
                    self.cache.unresolved_count,
                    self.tenant,
                    self.request_id,
                    streamed_at,
                    relayed,
                    lambda: Counter(map(kind_of, restored)),
                )
        except (httpx.HTTPError, MaskingUnavailable) as exc:
            # The status line is gone already: tell the client the way the Claude API does mid-stream.
            status, failed = _stream_failure(exc)
            yield _error_event(_stream_failure_message(exc))
        except asyncio.CancelledError:
            status = 499  # the client went away; closing the response below cancels the upstream request
            raise
        except Exception as exc:
            _log_failure(exc, self.request_id)
            status = 500
            yield _error_event("Internal error.")
        finally:
            await response.aclose()
            self.finished(status, upstream_error=failed)

    def finished(self, status: int, upstream_error: bool = False) -> None:
        # Noted in memory: this loop adds the requests up and writes the counters to Redis about
        # once a second (masking.counters).
        count_request(status, (time.perf_counter() - self.started) * 1000, upstream_error)


async def _respond(answer: Answer, send) -> None:
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in answer.headers.items()]
    if answer.stream is None:
        headers.append((b"content-length", str(len(answer.body)).encode()))
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})
        return
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    try:  # a client gone mid-stream cancels this (the watcher), and closing the stream the upstream request
        async for chunk in answer.stream:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        await answer.stream.aclose()


def _log_failure(exc: Exception, request_id: str) -> None:
    # The message may quote the payload: log where it failed, never what it said.
    where = "".join(traceback.format_tb(exc.__traceback__))
    logger.error("proxy failed: %s (request %s)\n%s", type(exc).__name__, request_id, where)


def _authenticate_fresh(key: str) -> ApiClient | None:
    # What Django's request cycle would do around a view: drop a connection the database closed.
    close_old_connections()
    return authenticate_key(key)


async def _client_for(key: str) -> ApiClient | None:
    """The key's client, remembered for a few seconds: the ORM lookup is a thread hop and a query,
    more than the whole proxy costs otherwise. Looked up again once `aws:auth:version` moved (read
    with every masked request's epoch: a deactivated key is refused before anything is forwarded),
    and after AUTH_CACHE_SECONDS in any case."""
    digest = hash_api_key(key)
    cached = _known_clients.get(digest)
    if cached and cached[0] > time.monotonic() and cached[2] == cache.api_keys.number:
        return cached[1]
    # One lookup per key at a time: when the entry expires under load, every request in flight
    # would otherwise queue its own query on the one ORM thread (50 at concurrency 50).
    loop, generation = asyncio.get_running_loop(), cache.api_keys.number
    flight = (loop, digest, generation)
    lookup = _lookups.get(flight)
    if lookup is None:
        lookup = _lookups[flight] = loop.create_task(_look_up(key, digest, generation))
        lookup.add_done_callback(lambda _: _lookups.pop(flight, None))
    return await asyncio.shield(lookup)  # a waiter that leaves does not cancel the others' lookup


async def _look_up(key: str, digest: str, generation: int) -> ApiClient | None:
    now = time.monotonic()
    client = await sync_to_async(_authenticate_fresh)(key)
    if client is not None:
        if len(_known_clients) >= 10_000:
            _known_clients.clear()
        _known_clients[digest] = (now + AUTH_CACHE_SECONDS, client, generation)
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
