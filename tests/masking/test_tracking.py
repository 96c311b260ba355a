"""masking/tracking.py: a worker forwards a request it can mask from memory without a Redis round
trip only while Redis has pushed no change, and reads again as soon as anything may have changed.

Several requests run on one event loop here (a worker's), through the real ASGI app."""

import asyncio

import httpx
import pytest

from masking import counters, events, mappings, redisline, store
from masking.store import AUTH_VERSION_KEY, EPOCH_KEY
from tests.masking.gateway import headers, message
from tests.masking.samples import PROMPT
from tests.redis_server import SERVER

pytestmark = pytest.mark.django_db(transaction=True)

EC2 = "i-0a1b2c3d4e5f67890"


@pytest.fixture
def epoch_reads(monkeypatch) -> list:
    """How many mapping-epoch reads went to Redis, counted as they are written."""
    reads = []
    send = redisline._Connection.send

    def counting(connection, commands):
        if commands[-2:] == [("GET", EPOCH_KEY), ("GET", AUTH_VERSION_KEY)]:  # store._epoch_read
            reads.append(commands)
        return send(connection, commands)

    monkeypatch.setattr(redisline._Connection, "send", counting)
    return reads


class Worker:
    """One event loop's requests, in order, with `between(n)` (a coroutine function) after request n."""

    def __init__(self, key: str):
        self.key = key

    def run(self, count: int, between=None) -> list[httpx.Response]:
        return asyncio.run(self._run(count, between))

    async def _run(self, count: int, between) -> list[httpx.Response]:
        from config.asgi import application

        responses = []
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            for n in range(count):
                body = message(PROMPT)
                responses.append(await client.post("/v1/messages", json=body, headers=headers(self.key)))
                if between is not None:
                    await between(n)
        await events.drain()
        await counters.aflush()
        return responses


async def until(condition, seconds: float = 5.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.005)


async def watching() -> None:
    """Until this loop's watch is subscribed (it starts with the loop's first read)."""
    await until(lambda: store.epoch_watch().conn is not None)


def sent_token(fake, request: int) -> str:
    sent = fake.received[request].json["messages"][0]["content"]
    assert EC2 not in sent
    return sent.split('"InstanceId": "')[1].split('"')[0]


def test_while_redis_pushes_no_change_remembered_requests_read_nothing(gateway, upstream, api_key, epoch_reads):
    async def between(n):
        if n == 0:
            await watching()
        if n == 2:
            epoch_reads.clear()

    responses = Worker(api_key).run(8, between)

    assert [r.status_code for r in responses] == [200] * 8
    assert all(r.json()["content"][0]["text"] == PROMPT for r in responses)
    assert epoch_reads == []  # requests 4 to 8: none read the epoch
    assert len({sent_token(upstream, n) for n in range(8)}) == 1


def test_a_change_redis_pushes_makes_the_next_request_read_again(gateway, upstream, api_key, epoch_reads, redis_client):
    async def between(n):
        if n == 0:
            await watching()
        if n == 2:
            epoch_reads.clear()
            redis_client.set(EPOCH_KEY, "set-by-another-process")  # no distrust(): only Redis tells
            await until(lambda: store.epoch_watch().known is None)

    responses = Worker(api_key).run(5, between)

    assert all(r.json()["content"][0]["text"] == PROMPT for r in responses)
    assert len(epoch_reads) == 1  # request 4 reads (and forgets what it remembered), request 5 does not


def test_a_flushed_redis_is_noticed_by_the_next_request(gateway, upstream, api_key, epoch_reads, redis_client):
    async def between(n):
        if n == 0:
            await watching()
        if n == 2:
            redis_client.flushdb()
            await until(lambda: store.epoch_watch().known is None)

    responses = Worker(api_key).run(4, between)

    token = sent_token(upstream, 3)
    assert redis_client.get(f"aws:unmask:{token}") == EC2.encode()  # written again
    assert responses[3].json()["content"][0]["text"] == PROMPT


def test_a_mapping_revoked_in_this_process_is_not_used_by_the_very_next_request(gateway, upstream, api_key):
    async def between(n):
        if n == 0:
            await watching()
        if n == 2:
            assert await asyncio.to_thread(mappings.revoke, sent_token(upstream, 2), "default")

    responses = Worker(api_key).run(4, between)

    assert sent_token(upstream, 3) != sent_token(upstream, 2)
    assert responses[3].json()["content"][0]["text"] == PROMPT


def test_a_redis_that_stops_means_503_for_the_very_next_request_even_if_remembered(
    gateway, upstream, api_key, redis_server
):
    async def between(n):
        if n == 0:
            await watching()
        if n == 2:
            redis_server.stop()  # its connections' ends are not read before the next request starts

    responses = Worker(api_key).run(4, between)

    assert [r.status_code for r in responses] == [200, 200, 200, 503]
    assert len(upstream.received) == 3


def test_a_lost_watch_means_reading_again(gateway, upstream, api_key, epoch_reads, redis_client):
    async def between(n):
        if n == 0:
            await watching()
        if n == 2:
            epoch_reads.clear()
            redis_client.client_kill_filter(_type="pubsub")

    Worker(api_key).run(5, between)

    assert len(epoch_reads) == 2


def test_a_read_is_trusted_for_the_configured_time_only(gateway, upstream, api_key, epoch_reads, settings):
    settings.MAPPING_EPOCH_TRUST_SECONDS = 0.05

    async def between(n):
        if n == 0:
            await watching()
        if n == 2:
            epoch_reads.clear()
            await asyncio.sleep(0.1)

    Worker(api_key).run(5, between)

    assert len(epoch_reads) == 1


def test_with_no_trust_time_every_request_reads(gateway, upstream, api_key, epoch_reads, settings):
    settings.MAPPING_EPOCH_TRUST_SECONDS = 0

    Worker(api_key).run(4, lambda n: asyncio.sleep(0.05))

    assert len(epoch_reads) == 4


def test_a_redis_that_refuses_client_tracking_gets_a_read_per_request(
    gateway, upstream, api_key, epoch_reads, settings, redis_client
):
    redis_client.execute_command("ACL", "SETUSER", "no-tracking", "on", ">pw", "~*", "&*", "+@all", "-client")
    settings.MASKING_REDIS_URL = f"redis://no-tracking:pw@127.0.0.1:{SERVER.port}/0"
    try:
        responses = Worker(api_key).run(4, lambda n: asyncio.sleep(0.05))
    finally:
        redis_client.execute_command("ACL", "DELUSER", "no-tracking")

    assert all(r.json()["content"][0]["text"] == PROMPT for r in responses)
    assert len(epoch_reads) == 4
