"""masking/redisline.py against the session's real redis-server (password, own port)."""

import asyncio
import ssl
import time

import pytest
from redis.exceptions import ConnectionError, NoPermissionError, ResponseError, TimeoutError

from masking import store
from masking.redisline import _tls_context, get_line
from tests.redis_server import SERVER


def run(coroutine_function):
    return asyncio.run(coroutine_function())


def test_one_line_per_loop_and_url():
    async def lines():
        return get_line(), get_line(), get_line(SERVER.url + "/3")

    first, again, other_db = run(lines)
    assert first is again and first is not other_db
    assert run(lines)[0] is not first  # another loop, another line


def test_replies_come_back_in_order_as_bytes_and_ints(redis_client):
    async def main():
        return await get_line().execute(
            [
                ("SET", "k", "v"),
                ("GET", "k"),
                ("INCR", "n"),
                ("INCR", "n"),
                ("PUBLISH", "channel", "message"),
                ("GET", "missing"),
                ("SET", "é", b"\x00\xff"),
                ("GET", "é"),
            ]
        )

    assert run(main) == [b"OK", b"v", 1, 2, 0, None, b"OK", b"\x00\xff"]
    assert redis_client.get("k") == b"v"


def test_empty_command_list():
    async def main():
        return await get_line().execute([])

    assert run(main) == []


def test_an_error_reply_is_returned_in_its_slot(redis_client):
    redis_client.set("k", "text")

    async def main():
        return await get_line().execute([("INCR", "k"), ("LPUSH", "k", "a"), ("GET", "k"), ("INCR", "n")])

    incr, lpush, value, n = run(main)
    assert isinstance(incr, ResponseError) and "not an integer" in str(incr)
    assert isinstance(lpush, ResponseError) and "WRONGTYPE" in str(lpush)
    assert (value, n) == (b"text", 1)


def test_error_codes_become_redis_py_classes_and_username_is_used(redis_client):
    redis_client.acl_setuser("reader", enabled=True, passwords=["+reader-pw"], commands=["+get"], keys=["*"])
    try:

        async def main():
            line = get_line(f"redis://reader:reader-pw@127.0.0.1:{SERVER.port}/0")
            return await line.execute([("SET", "k", "v"), ("GET", "k")])

        denied, value = run(main)
    finally:
        redis_client.acl_deluser("reader")
    assert isinstance(denied, NoPermissionError)
    assert value is None


def test_concurrent_callers_each_get_their_own_replies(redis_client):
    async def caller(line, i):
        await asyncio.sleep(0)
        return await line.execute([("INCR", f"n:{i}"), ("INCRBY", f"n:{i}", i), ("GET", f"n:{i}"), ("CLIENT", "ID")])

    async def main():
        line = get_line()
        return await asyncio.gather(*(caller(line, i) for i in range(200)))

    results = run(main)
    assert [result[:3] for result in results] == [[1, 1 + i, str(1 + i).encode()] for i in range(200)]
    assert len({result[3] for result in results}) == 1  # all on one connection
    assert redis_client.get("n:199") == b"200"


def test_the_password_and_database_of_the_url_are_used(redis_server, redis_client):
    async def main():
        return await get_line(f"{redis_server.url}/3").execute([("SET", "k", "in-db-3")])

    assert run(main) == [b"OK"]
    assert redis_client.get("k") is None
    assert redis_server.client(db=3).get("k") == b"in-db-3"


def test_a_wrong_password_fails_without_showing_it(redis_server):
    wrong = "wrong-" + redis_server.password

    async def main():
        await get_line(f"redis://:{wrong}@127.0.0.1:{redis_server.port}/0").execute([("GET", "k")])

    with pytest.raises(ConnectionError) as failure:  # AuthenticationError is a ConnectionError
        run(main)
    assert wrong not in str(failure.value) and wrong not in repr(failure.value)


def test_a_stopped_server_fails_fast_and_the_line_reconnects(redis_server, redis_client):
    redis_client.set("k", "v")

    async def main():
        line = get_line()
        assert await line.execute([("GET", "k")]) == [b"v"]
        redis_server.stop()
        started = time.monotonic()
        for _ in range(2):  # the connection that was lost, then a refused one
            with pytest.raises(ConnectionError, match="^redis is unreachable$"):
                await line.execute([("GET", "k")])
        assert time.monotonic() - started < 1
        redis_server.start()
        return await line.execute([("SET", "k", "again"), ("GET", "k")])

    assert run(main) == [b"OK", b"again"]


def test_a_command_that_times_out_drops_the_connection(settings):
    settings.REDIS_COMMAND_TIMEOUT = 0.2  # DEBUG SLEEP is disabled on Redis 7: BLPOP blocks instead

    async def main():
        line = get_line()
        (before,) = await line.execute([("CLIENT", "ID")])
        started = time.monotonic()
        blocked = asyncio.ensure_future(line.execute([("BLPOP", "nokey", "1")]))
        queued_behind = asyncio.ensure_future(line.execute([("GET", "k")]))
        with pytest.raises(TimeoutError):
            await blocked
        assert time.monotonic() - started < 0.8
        with pytest.raises(TimeoutError):
            await queued_behind
        (after,) = await line.execute([("CLIENT", "ID")])
        return before, after

    before, after = run(main)
    assert before != after  # a fresh connection


def test_calls_that_answer_in_time_never_time_out_however_long_the_connection_lives(settings):
    settings.REDIS_COMMAND_TIMEOUT = 0.2  # the watchdog fires every 0.2 s: it must only drop late calls

    async def main():
        line = get_line()
        ids = set()
        deadline = time.monotonic() + 0.9
        while time.monotonic() < deadline:
            ids.add((await line.execute([("CLIENT", "ID")]))[0])
            await asyncio.sleep(0.03)
        return ids

    assert len(run(main)) == 1  # one connection all along


def test_a_cancelled_caller_does_not_desync_the_stream(redis_client):
    redis_client.set("k", "v")

    async def main():
        line = get_line()
        blocked = asyncio.ensure_future(line.execute([("BLPOP", "nokey", "0.2")]))
        await asyncio.sleep(0.05)
        blocked.cancel()
        return await line.execute([("GET", "k")]), await line.execute([("INCR", "n")])

    assert run(main) == ([b"v"], [1])


def test_mapping_epoch_is_created_once_and_renewed_after_a_flush(redis_client):
    async def epoch():
        return await store.amapping_epoch()

    first, published = run(epoch)
    assert published == [] and first == redis_client.get(store.EPOCH_KEY)
    assert run(epoch)[0] == first
    redis_client.flushdb()
    second = run(epoch)[0]
    assert second != first and second == redis_client.get(store.EPOCH_KEY)


def test_mapping_epoch_publishes_and_returns_the_counts(redis_client):
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("aws-masker:test")
    try:

        async def main():
            return await store.amapping_epoch([("aws-masker:test", '{"a": 1}'), ("aws-masker:nobody", "{}")])

        epoch, published = run(main)
        assert published == [1, 0]
        assert epoch == redis_client.get(store.EPOCH_KEY)
        deadline = time.monotonic() + 5
        while (message := pubsub.get_message(timeout=0.1)) is None and time.monotonic() < deadline:
            pass
        assert message["data"] == b'{"a": 1}'
    finally:
        pubsub.close()


def test_mapping_epoch_fails_closed_when_redis_is_down(redis_server):
    redis_server.stop()

    async def main():
        await store.amapping_epoch([("aws-masker:test", "{}")])

    with pytest.raises(store.MaskingUnavailable, match="redis is unreachable"):
        run(main)


def test_rediss_verifies_certificates_unless_the_url_says_none():
    from redis.connection import parse_url

    strict = _tls_context(parse_url("rediss://:pw@redis.example:6380/0"))
    assert strict.verify_mode == ssl.CERT_REQUIRED and strict.check_hostname
    lax = _tls_context(parse_url("rediss://:pw@redis.example:6380/0?ssl_cert_reqs=none"))
    assert lax.verify_mode == ssl.CERT_NONE and not lax.check_hostname
