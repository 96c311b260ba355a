"""/ws/events/ through a real uvicorn process, with the `websockets` client and a session cookie."""

import asyncio
import json
import secrets
import subprocess
import sys
import time
import uuid

import httpx
import pytest
from django.conf import settings
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.live import gateway_process

TIMEOUT = 10


def an_event(**fields) -> dict:
    event = {
        "event_id": uuid.uuid4().hex,
        "event_type": "masking",
        "timestamp": "2026-11-25T21:00:00Z",
        "request_id": "req-live",
        "tenant": "default",
        "source": "cli",
        "counts_by_kind": {"ec2_instance": 1},
        "total": 1,
    }
    event.update(fields)
    return event


def publish_from_another_process(event: dict) -> None:
    """What a Celery worker, a CLI run or a gateway on another host does: publish on the shared Redis."""
    script = "import os, sys, redis; redis.Redis.from_url(os.environ['REDIS_URL']).publish(sys.argv[1], sys.argv[2])"
    channel = f"aws-masker:events:{event['event_type']}"
    subprocess.run([sys.executable, "-c", script, channel, json.dumps(event)], check=True, timeout=TIMEOUT)


def session_cookie(client, user) -> str:
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def socket_url(base_url: str, query: str = "") -> str:
    return base_url.replace("http://", "ws://") + "/ws/events/" + (f"?{query}" if query else "")


def open_socket(base_url: str, cookie: str | None = None, query: str = "", origin: str | None = None):
    headers = {"Cookie": cookie} if cookie else {}
    return connect(socket_url(base_url, query), origin=origin or base_url, additional_headers=headers)


async def wait_until_live(socket) -> None:
    assert json.loads(await asyncio.wait_for(socket.recv(), TIMEOUT))["type"] == "hello"
    assert json.loads(await asyncio.wait_for(socket.recv(), TIMEOUT)) == {"type": "state", "state": "live"}


async def next_events(socket, timeout: float = TIMEOUT) -> list[dict]:
    frame = json.loads(await asyncio.wait_for(socket.recv(), timeout))
    assert frame["type"] == "events", frame
    return frame["events"]


async def close_code(socket) -> int:
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(socket.recv(), TIMEOUT)
    return socket.close_code


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("ops", password="pw", is_staff=True)


def api_client(base_url: str, session: str) -> httpx.AsyncClient:
    """The REST API as a logged-in operator: session cookie plus Django's CSRF double submit."""
    csrf = secrets.token_hex(16)
    headers = {"Cookie": f"{session}; csrftoken={csrf}", "X-CSRFToken": csrf}
    return httpx.AsyncClient(base_url=base_url, headers=headers, timeout=TIMEOUT)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_staff_client_receives_the_event_of_a_rest_api_mask_call_within_a_second(tmp_path, client, staff):
    cookie = session_cookie(client, staff)
    original = "i-0123456789abcdef0"
    request_id = "live-acceptance-1"

    async def scenario(url):
        async with api_client(url, cookie) as api, open_socket(url, cookie) as socket:
            assert (await api.post("/api/v1/mask", json={"text": "warm-up"})).status_code == 200
            await wait_until_live(socket)
            started = time.monotonic()
            response = await api.post(
                "/api/v1/mask", json={"text": f"{original} is down"}, headers={"x-request-id": request_id}
            )
            assert response.status_code == 200, response.text
            assert original not in response.text
            while True:
                remaining = 1.0 - (time.monotonic() - started)
                frame = await asyncio.wait_for(socket.recv(), max(remaining, 0.01))
                mine = [e for e in json.loads(frame).get("events", []) if e["request_id"] == request_id]
                if mine:
                    break
            assert original not in frame
            assert mine[0]["event_type"] == "masking" and mine[0]["source"] == "api"
            assert mine[0]["total"] == sum(mine[0]["counts_by_kind"].values()) >= 1

    with gateway_process(tmp_path) as url:
        asyncio.run(scenario(url))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_staff_client_receives_an_event_published_by_another_process_within_a_second(tmp_path, client, staff):
    cookie = session_cookie(client, staff)
    event = an_event()

    async def scenario(url):
        async with open_socket(url, cookie) as socket:
            await wait_until_live(socket)
            started = time.monotonic()
            publish_from_another_process(event)
            # The acceptance bound, counted from before the publishing process even starts.
            remaining = 1.0 - (time.monotonic() - started)
            assert await next_events(socket, timeout=max(remaining, 0.01)) == [event]

    with gateway_process(tmp_path) as url:
        asyncio.run(scenario(url))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_anonymous_and_non_staff_clients_are_closed_with_4401_and_4403(tmp_path, client, django_user_model):
    member = django_user_model.objects.create_user("member", password="pw")
    cookie = session_cookie(client, member)

    async def scenario(url):
        async with open_socket(url) as anonymous:
            assert await close_code(anonymous) == 4401
        async with open_socket(url, cookie) as not_staff:
            assert await close_code(not_staff) == 4403

    with gateway_process(tmp_path) as url:
        asyncio.run(scenario(url))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_client_from_a_foreign_origin_is_refused_at_the_handshake(tmp_path, client, staff):
    cookie = session_cookie(client, staff)

    async def scenario(url):
        with pytest.raises(InvalidStatus) as refused:
            async with open_socket(url, cookie, origin="http://evil.example"):
                pass
        assert refused.value.response.status_code == 403

    with gateway_process(tmp_path) as url:
        asyncio.run(scenario(url))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_every_viewer_on_every_worker_gets_each_event_and_filters_apply_per_socket(
    tmp_path, client, staff, redis_client
):
    cookie = session_cookie(client, staff)
    acme, globex = an_event(tenant="acme"), an_event(tenant="globex")

    async def scenario(url):
        everything = [await open_socket(url, cookie).__aenter__() for _ in range(4)]
        only_acme = await open_socket(url, cookie, query="tenant=acme").__aenter__()
        sockets = [*everything, only_acme]
        try:
            for socket in sockets:
                await wait_until_live(socket)
            publish_from_another_process(acme)
            publish_from_another_process(globex)
            for socket in everything:
                received = await next_events(socket)
                if len(received) < 2:
                    received += await next_events(socket)
                assert received == [acme, globex]
            assert await next_events(only_acme) == [acme]
        finally:
            for socket in sockets:
                await socket.close()

    with gateway_process(tmp_path, workers=2) as url:
        asyncio.run(scenario(url))
        # Closed sockets leave no subscription behind in either worker.
        deadline = time.monotonic() + TIMEOUT
        while redis_client.pubsub_numpat() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert redis_client.pubsub_numpat() == 0
