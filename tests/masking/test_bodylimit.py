"""REST API bodies refused as they arrive (masking.bodylimit), in front of the real Django site."""

import asyncio
import json

import pytest

from masking import bodylimit
from masking.models import ApiClient, Tenant

pytestmark = pytest.mark.django_db(transaction=True)

CHUNK = 4096


@pytest.fixture(autouse=True)
def small_limit(settings):
    settings.MASKING_MAX_BODY_BYTES = 16 * 1024
    bodylimit._tenants_largest = (0.0, 0)  # looked up again with this test's tenants


def call(path: str, chunks: int, declared: int | None = None, key: str = "") -> tuple[int, bytes, int]:
    """POST `chunks` chunks of CHUNK bytes through the application: (status, body, chunks read)."""
    from config.asgi import application

    read, sent = 0, []
    headers = [(b"content-type", b"application/json"), (b"x-api-key", key.encode())]
    if declared is not None:
        headers.append((b"content-length", str(declared).encode()))
    scope = {"type": "http", "method": "POST", "path": path, "raw_path": path.encode(), "query_string": b""}
    scope.update(headers=headers, server=("testserver", 80), client=("127.0.0.1", 1), scheme="http")
    scope.update(asgi={"version": "3.0"}, http_version="1.1", root_path="")

    async def receive():
        nonlocal read
        if read < chunks:
            read += 1
            return {"type": "http.request", "body": b"x" * CHUNK, "more_body": read < chunks}
        await asyncio.sleep(3600)  # no more: the client waits for the answer

    async def send(message):
        sent.append(message)

    asyncio.run(asyncio.wait_for(application(scope, receive, send), 30))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body, read


def error_type(body: bytes) -> str:
    return json.loads(body)["error"]["type"]


def test_a_body_is_refused_at_the_chunk_that_passes_the_limit_and_no_more_is_read():
    status, body, read = call("/api/v1/mask", chunks=10_000)

    assert (status, error_type(body)) == (413, "request_too_large")
    assert read == 16 * 1024 // CHUNK + 1


def test_a_declared_size_over_the_limit_is_refused_before_any_byte_is_read():
    status, body, read = call("/api/v1/mask", chunks=10_000, declared=10**9)

    assert (status, error_type(body), read) == (413, "request_too_large", 0)


def test_a_tenant_allowed_more_raises_the_limit_for_the_view_to_apply():
    tenant = Tenant.objects.create(slug="big", name="Big", max_body_bytes=64 * 1024)
    key = ApiClient.objects.create_with_key("big", tenant)[1]

    status, body, read = call("/api/v1/mask", chunks=8, key=key)  # 32 KB: over the default, under the tenant's

    assert read == 8
    assert (status, error_type(body)) == (400, "invalid_request_error")  # read whole, then found not JSON


def test_other_paths_are_left_to_the_site():
    status, _, read = call("/healthz", chunks=8)

    assert read == 8 and status != 413
