import json
import logging
import threading

import pytest

from masking import proxy
from masking.models import ApiClient, Tenant
from masking.proxy import REQUEST_ID_HEADER
from masking.streaming import SSEParser
from tests.masking.gateway import headers, message
from tests.masking.samples import ORIGINALS, PROMPT
from tests.redis_server import free_port

pytestmark = pytest.mark.django_db(transaction=True)


def assert_error(response, status: int, error_type: str) -> dict:
    assert response.status_code == status
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert response.headers[REQUEST_ID_HEADER]
    for original in ORIGINALS:
        assert original not in response.text
    return body


def test_a_request_without_a_key_gets_401_and_nothing_is_forwarded(gateway, upstream):
    response = gateway.post("/v1/messages", json=message(PROMPT), headers={"anthropic-version": "2023-06-01"})

    assert_error(response, 401, "authentication_error")
    assert upstream.received == []


def test_a_wrong_or_inactive_key_gets_401_and_nothing_is_forwarded(gateway, upstream, api_key):
    ApiClient.objects.update(is_active=False)
    for key in ("awsm_not-a-real-key", "sk-ant-api03-something", api_key):
        assert_error(
            gateway.post("/v1/messages", json=message(PROMPT), headers=headers(key)), 401, "authentication_error"
        )
    assert upstream.received == []


def test_a_revoked_key_is_refused_once_the_short_auth_cache_expires(gateway, upstream, api_key, monkeypatch):
    monkeypatch.setattr(proxy, "AUTH_CACHE_SECONDS", 0)
    assert gateway.post("/v1/messages", json=message("hi"), headers=headers(api_key)).status_code == 200
    ApiClient.objects.update(is_active=False)

    response = gateway.post("/v1/messages", json=message("hi"), headers=headers(api_key))

    assert_error(response, 401, "authentication_error")
    assert len(upstream.received) == 1


def test_a_tenant_over_its_rate_limit_gets_429_with_retry_after_and_nothing_is_forwarded(gateway, upstream):
    tenant = Tenant.objects.create(slug="limited", name="Limited", rate_limit_per_minute=2)
    key = ApiClient.objects.create_with_key("limited", tenant)[1]

    answers = [gateway.post("/v1/messages", json=message("hi"), headers=headers(key)) for _ in range(3)]

    assert [a.status_code for a in answers[:2]] == [200, 200]
    assert_error(answers[2], 429, "rate_limit_error")
    assert 1 <= int(answers[2].headers["retry-after"]) <= 60
    assert len(upstream.received) == 2


@pytest.mark.parametrize(
    "body",
    [
        b'{"model": "m", "messages": [',
        b"\xff\xfe not utf-8",
        b'{"model": "m", "messages": [{"role": "user", "content": "caf\xc3"}]}',
        b'{"model": "m", "messages": "i-0a1b2c3d4e5f67890"}',
        b'{"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": 12}]}]}',
        b"[1, 2, 3]",
    ],
    ids=["truncated-json", "not-utf8", "utf8-cut-in-a-character", "messages-not-a-list", "text-not-a-string", "array"],
)
def test_a_body_that_is_not_a_messages_request_gets_400_and_nothing_is_forwarded(gateway, upstream, api_key, body):
    response = gateway.post(
        "/v1/messages", content=body, headers={**headers(api_key), "content-type": "application/json"}
    )

    assert_error(response, 400, "invalid_request_error")
    assert "i-0a1b2c3d4e5f67890" not in response.text
    assert upstream.received == []


def test_an_oversized_body_gets_413_and_nothing_is_forwarded(gateway, upstream, api_key, settings):
    settings.MASKING_MAX_BODY_BYTES = 2048

    response = gateway.post("/v1/messages", json=message(PROMPT * 3), headers=headers(api_key))

    assert_error(response, 413, "request_too_large")
    assert upstream.received == []


def test_a_body_over_djangos_form_limit_but_under_ours_is_accepted(gateway, upstream, api_key, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024

    response = gateway.post("/v1/messages", json=message(PROMPT * 3), headers=headers(api_key))

    assert response.status_code == 200
    assert response.json()["content"][0]["text"] == PROMPT * 3


def test_when_redis_is_down_the_answer_is_503_and_nothing_is_forwarded(gateway, upstream, api_key, redis_server):
    redis_server.stop()

    response = gateway.post("/v1/messages", json=message(PROMPT, stream=True), headers=headers(api_key))

    assert_error(response, 503, "masking_unavailable")
    assert upstream.received == []


def test_an_unreachable_upstream_gets_502(gateway, api_key, settings):
    settings.ANTHROPIC_UPSTREAM_URL = f"http://127.0.0.1:{free_port()}"

    assert_error(gateway.post("/v1/messages", json=message(PROMPT), headers=headers(api_key)), 502, "api_error")


def test_an_upstream_slower_than_the_timeout_gets_504(gateway, upstream, api_key, settings):
    settings.UPSTREAM_READ_TIMEOUT = 0.2
    upstream.delay = 3

    response = gateway.post("/v1/messages", json=message(PROMPT), headers=headers(api_key))

    assert_error(response, 504, "api_error")
    assert len(upstream.received) == 1


@pytest.mark.parametrize(("status", "error_type"), [(400, "invalid_request_error"), (529, "overloaded_error")])
def test_upstream_errors_pass_through_with_their_message_restored(gateway, upstream, api_key, status, error_type):
    upstream.status = status
    upstream.error = {"type": "error", "error": {"type": error_type, "message": "Could not process: {prompt}"}}

    response = gateway.post("/v1/messages", json=message(PROMPT), headers=headers(api_key))

    assert response.status_code == status
    assert response.json()["error"] == {"type": error_type, "message": f"Could not process: {PROMPT}"}
    assert response.headers["request-id"] == "req_fake_01"


def test_a_streamed_request_that_the_upstream_refuses_gets_its_json_error(gateway, upstream, api_key):
    upstream.status = 429
    upstream.error = {"type": "error", "error": {"type": "rate_limit_error", "message": "Slow down on {prompt}"}}

    response = gateway.post("/v1/messages", json=message("i-0123456789abcdef0", stream=True), headers=headers(api_key))

    assert response.status_code == 429
    assert response.json()["error"]["message"] == "Slow down on i-0123456789abcdef0"


def test_only_post_is_allowed(gateway, api_key):
    assert_error(gateway.request("GET", "/v1/messages", headers=headers(api_key)), 405, "invalid_request_error")


def test_a_gateway_without_an_upstream_key_refuses_instead_of_forwarding(gateway, upstream, api_key, settings):
    settings.ANTHROPIC_API_KEY = ""

    assert_error(gateway.post("/v1/messages", json=message(PROMPT), headers=headers(api_key)), 500, "api_error")
    assert upstream.received == []


def test_a_timeout_in_the_middle_of_a_stream_ends_it_with_an_error_event(gateway, upstream, api_key, settings):
    settings.UPSTREAM_READ_TIMEOUT = 0.3
    upstream.hold = threading.Event()  # not released: the upstream stalls after one delta

    response = gateway.post("/v1/messages", json=message(PROMPT, stream=True), headers=headers(api_key))
    upstream.hold.set()

    events = [(e.event, json.loads(e.data)) for e in SSEParser().feed(response.content, final=True)]
    assert events[0][0] == "message_start"
    name, last = events[-1]
    assert name == "error" and last["type"] == "error" and last["error"]["type"] == "api_error"
    assert "in time" in last["error"]["message"]


def test_no_original_reaches_the_logs(gateway, upstream, api_key, caplog, redis_server):
    caplog.set_level(logging.DEBUG)
    gateway.post("/v1/messages", json=message(PROMPT), headers=headers(api_key))
    gateway.post("/v1/messages", content=PROMPT.encode() + b"{", headers=headers(api_key))
    upstream.status = 400
    upstream.error = {"type": "error", "error": {"type": "invalid_request_error", "message": "{prompt}"}}
    gateway.post("/v1/messages", json=message(PROMPT), headers=headers(api_key))
    redis_server.stop()
    gateway.post("/v1/messages", json=message(PROMPT), headers=headers(api_key))

    for original in ORIGINALS:
        assert original not in caplog.text
