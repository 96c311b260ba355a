import asyncio
import threading
import time

from masking import counters, store

KEY = "aws:test:counts"


def stored(redis_client, key: str = KEY) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in redis_client.hgetall(key).items()}


def test_async_callers_only_add_in_memory_and_the_loop_writes_within_about_a_second(redis_client):
    async def run():
        counters.add(KEY, {"requests": 1, "latency_ms_sum": 2.5})
        counters.add(KEY, {"requests": 1, "latency_ms_sum": 1.0})
        counters.start_flushing()
        assert stored(redis_client) == {}  # nothing written on the request path
        deadline = time.monotonic() + 10
        while not stored(redis_client) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # polls: never a timing assertion
        return stored(redis_client)

    assert asyncio.run(run()) == {"requests": "2", "latency_ms_sum": "3.5"}


def test_what_is_pending_when_the_loop_shuts_down_is_written(redis_client):
    async def run():
        store.count_request(200, 12.0)

    asyncio.run(run())  # asyncio.run cancels the flusher, which writes what is left

    counts = stored(redis_client, store.COUNTS_KEY)
    assert counts["requests"] == "1" and counts["status:200"] == "1" and counts["latency_bucket:25"] == "1"
    assert stored(redis_client, store.daily_key())["requests"] == "1"
    assert 0 < redis_client.ttl(store.daily_key()) <= store.DAILY_TTL_SECONDS


def test_a_failed_write_keeps_the_counts_for_the_next_one(redis_server, redis_client, monkeypatch):
    monkeypatch.setattr(counters, "RETRY_AFTER_FAILURE_S", 0)
    counters.add(KEY, {"requests": 3})
    redis_server.stop()
    assert counters.flush() is False  # never raises
    redis_server.start()
    from masking.connection import reset_clients

    reset_clients()
    assert counters.flush() is True
    assert stored(redis_client) == {"requests": "3"}
    assert stored(redis_client, "aws:metrics:counts") == {"redis_errors:metrics": "1"}


def test_after_a_failure_writes_wait_instead_of_hitting_redis_on_every_call(redis_server, redis_client):
    counters.add(KEY, {"requests": 1})
    redis_server.stop()
    counters.flush()
    redis_server.start()
    from masking.connection import reset_clients

    reset_clients()
    counters.add(KEY, {"requests": 1})
    assert counters.flush() is True  # held back: nothing taken yet
    assert stored(redis_client) == {}


def test_fixed_increments_are_written_as_many_times_as_they_were_added(redis_client):
    fixed = counters.Fixed({"requests": 1, "status:200": 1})
    for _ in range(3):
        counters.add_fixed((KEY, "aws:test:other"), fixed)
    counters.add(KEY, {"requests": 1, "latency_ms_sum": 0.5})

    assert counters.flush() is True
    assert stored(redis_client) == {"requests": "4", "status:200": "3", "latency_ms_sum": "0.5"}
    assert stored(redis_client, "aws:test:other") == {"requests": "3", "status:200": "3"}


def test_a_failed_write_keeps_fixed_increments_too(redis_server, redis_client, monkeypatch):
    monkeypatch.setattr(counters, "RETRY_AFTER_FAILURE_S", 0)
    counters.add_fixed((KEY,), counters.Fixed({"requests": 2}))
    redis_server.stop()
    assert counters.flush() is False
    redis_server.start()
    from masking.connection import reset_clients

    reset_clients()
    counters.add_fixed((KEY,), counters.Fixed({"requests": 2}))
    assert counters.flush() is True
    assert stored(redis_client) == {"requests": "4"}


def test_a_request_counted_in_memory_is_written_as_record_request_writes_it(redis_client):
    store.record_request(502, 42.0, upstream_error=True)
    written = stored(redis_client, store.COUNTS_KEY)
    redis_client.delete(store.COUNTS_KEY)

    async def run():
        store.count_request(502, 42.0, upstream_error=True)

    asyncio.run(run())

    assert stored(redis_client, store.COUNTS_KEY) == written
    assert written["upstream_errors"] == "1" and written["latency_bucket:50"] == "1"


def test_requests_noted_one_by_one_add_up_as_requests_recorded_one_by_one(redis_client):
    requests = [(200, 3.0, False), (200, 40.0, False), (429, 0.5, False), (502, 900.0, True), (200, 3.5, False)]
    for request in requests:
        store.record_request(*request)
    written = stored(redis_client, store.COUNTS_KEY)
    redis_client.delete(store.COUNTS_KEY)

    async def run():
        for request in requests:
            store.count_request(*request)
        assert stored(redis_client, store.COUNTS_KEY) == {}  # nothing written on the request path

    asyncio.run(run())

    assert stored(redis_client, store.COUNTS_KEY) == written
    assert written["requests"] == "5" and written["status:200"] == "3"


def test_observations_noted_from_several_threads_while_they_are_added_up_are_all_counted(redis_client):
    tally = counters.Tally(lambda batch: counters.add(KEY, {"noted": len(batch)}))
    try:

        def note_many():
            for _ in range(20_000):
                tally.note(1)

        threads = [threading.Thread(target=note_many) for _ in range(4)]
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            counters.flush()  # takes what is noted so far, as the loop's writer does
        counters.flush()
    finally:
        counters._tallies.remove(tally)

    assert stored(redis_client) == {"noted": "80000"}
