import asyncio
import json
import subprocess
import time

import pytest

from masking import counters, deferred, events, masker, store, unmasker

pytestmark = pytest.mark.django_db

EC2 = "i-0123456789abcdef0"
VPC = "vpc-0a1b2c3d4e5f67890"
TEXT = f"{EC2} in {VPC} and {EC2}"


@pytest.fixture
def subscriber(redis_client):
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(*events.CHANNELS.values())

    def next_event() -> tuple[str, bytes]:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            # Subscription confirmations read here come back as None (ignored): keep reading.
            message = pubsub.get_message(timeout=0.1)
            if message is not None:
                return message["channel"].decode(), message["data"]
        raise AssertionError("no event published")

    yield next_event
    pubsub.close()


def test_masking_publishes_one_event_with_counts_and_no_original(redis_client, subscriber):
    masker.mask_texts([TEXT], source="cli", request_id="req-1")

    channel, raw = subscriber()
    event = json.loads(raw)
    assert channel == "aws-masker:events:masking"
    assert event["event_type"] == "masking"
    assert event["request_id"] == "req-1"
    assert event["tenant"] == "default"
    assert event["source"] == "cli"
    assert event["counts_by_kind"] == {"ec2_instance": 2, "vpc": 1}
    assert event["total"] == 3
    assert event["new_mappings"] == 2
    assert event["unresolved"] == 0
    assert event["bytes"] == len(TEXT.encode())
    assert event["duration_ms"] >= 0
    assert event["timestamp"].endswith("Z")
    assert set(event) == {
        "event_id",
        "event_type",
        "timestamp",
        "request_id",
        "tenant",
        "source",
        "counts_by_kind",
        "total",
        "new_mappings",
        "unresolved",
        "duration_ms",
        "bytes",
    }
    assert EC2.encode() not in raw and VPC.encode() not in raw


def test_unmasking_publishes_one_event_with_restored_and_unresolved_counts(redis_client, subscriber):
    masked = masker.mask_texts([TEXT]).texts
    subscriber()

    unmasker.unmask_texts([masked[0] + " AWS_EC2_404"], request_id="req-2")

    channel, raw = subscriber()
    event = json.loads(raw)
    assert channel == "aws-masker:events:unmasking"
    assert event["event_type"] == "unmasking"
    assert event["counts_by_kind"] == {"ec2_instance": 2, "vpc": 1}
    assert event["unresolved"] == 1
    assert EC2.encode() not in raw and VPC.encode() not in raw


def test_the_async_unmasking_publish_returns_at_once_and_is_delivered_in_the_background(redis_client, subscriber):
    async def run():
        await unmasker.aunmask_texts(["AWS_EC2_001"], source="proxy")
        queued = events.pending()
        await events.drain()
        return queued, events.pending()

    assert asyncio.run(run()) == (1, 0)
    channel, raw = subscriber()
    assert channel == "aws-masker:events:unmasking"
    assert json.loads(raw)["source"] == "proxy"


def test_queued_events_are_published_within_a_few_milliseconds_without_another_request(redis_client, subscriber):
    async def run():
        await events.apublish_event(events.build_event(events.UNMASKING, tenant="default", source="proxy"))
        await asyncio.sleep(events.PUBLISH_DELAY_SECONDS * 20)
        return events.pending()

    assert asyncio.run(run()) == 0
    assert subscriber()[0] == "aws-masker:events:unmasking"


def test_queued_events_ride_along_with_the_next_masked_requests_redis_read(redis_client, subscriber, monkeypatch):
    monkeypatch.setattr(events, "PUBLISH_DELAY_SECONDS", 60)  # the publisher alone would wait a minute
    earlier = events.build_event(events.UNMASKING, tenant="default", source="proxy", request_id="earlier")

    async def run():
        await events.apublish_event(earlier)
        await masker.amask_texts([TEXT], source="proxy", request_id="next")
        return events.pending()

    assert asyncio.run(run()) == 0
    received = [subscriber(), subscriber()]
    assert [json.loads(raw)["request_id"] for _, raw in received] == ["earlier", "next"]


def test_an_event_published_soon_is_built_only_once_the_proxy_waits_for_the_upstream(redis_client, subscriber):
    built = []

    def build():
        built.append("now")
        return events.build_event(events.UNMASKING, tenant="default", source="proxy", request_id="soon"), None

    async def run():
        events.publish_soon(build)
        before_waiting = (len(built), events.pending())
        await asyncio.sleep(0)
        after_a_turn = len(built)
        deferred.run_now()  # what the proxy calls once a request is written upstream
        after_waiting = len(built)
        await events.drain()
        return before_waiting, after_a_turn, after_waiting, events.pending()

    assert asyncio.run(run()) == ((0, 1), 0, 1, 0)
    assert json.loads(subscriber()[1])["request_id"] == "soon"


def test_events_not_built_yet_stay_out_of_a_masked_requests_redis_read(redis_client):
    built = []

    def build():
        built.append("now")
        return events.build_event(events.UNMASKING, tenant="default", source="proxy"), None

    async def run():
        events.publish_soon(build)
        taken = events.take_queued()  # what the mapping epoch's read takes along
        return taken, len(built), events.pending()

    assert asyncio.run(run()) == ([], 0, 1)


def test_an_event_that_fails_to_build_is_counted_and_the_others_still_go(redis_client, subscriber):
    before = events.failed_count()

    def broken():
        raise ValueError("a bug")

    async def run():
        events.publish_soon(broken)
        events.publish_soon(lambda: (events.build_event(events.MASKING, tenant="default", source="proxy"), None))
        await events.drain()

    asyncio.run(run())
    assert events.failed_count() == before + 1
    assert subscriber()[0] == "aws-masker:events:masking"


def test_events_built_together_count_their_fixed_stats_as_often_as_they_were_built(redis_client):
    masked = store.fixed_mask_counters({"ec2_instance": 2, "vpc": 1})
    restored = store.fixed_unmask_counters(3, 0)
    assert store.fixed_mask_counters({"ec2_instance": 2, "vpc": 1}) is masked  # made once

    async def run():
        for stats in (masked, masked, restored, masked):
            event = events.build_event(events.MASKING, tenant="default", source="proxy")
            events.publish_soon(lambda event=event, stats=stats: (event, stats))
        await events.drain()
        await counters.aflush()

    asyncio.run(run())
    counts = {field.decode(): int(n) for field, n in redis_client.hgetall("aws:stats:counts").items()}
    assert counts == {
        "mask_operations": 3,
        "identifiers": 9,
        "kind:ec2_instance": 6,
        "kind:vpc": 3,
        "unmask_operations": 1,
        "restored_tokens": 3,
        "unresolved_tokens": 0,
    }


@pytest.mark.parametrize("request_id", ["0f" * 16, None, 'quote " and ünïcödé'])
def test_an_event_from_a_stem_is_the_event_build_event_makes(request_id):
    fields = {"tenant": "acme-ü", "source": "proxy", "counts_by_kind": {"ec2_instance": 2, "vpc": 1}, "unresolved": 1}
    stem = events.Stem(events.UNMASKING, **fields)

    at = time.time()
    from_stem = json.loads(stem.json(request_id, 1.23456, 16_606, at))
    built = events.build_event(events.UNMASKING, request_id=request_id, duration_ms=1.23456, bytes=16_606, **fields)

    assert list(from_stem) == list(built)  # same fields, same order
    assert {**from_stem, "event_id": "", "timestamp": ""} == {**built, "event_id": "", "timestamp": ""}
    assert len(from_stem["event_id"]) == 32 and from_stem["event_id"] != built["event_id"]
    assert from_stem["timestamp"] == events._timestamp(at)


def test_events_published_from_stems_reach_subscribers_and_count_their_stats_each_time(redis_client, subscriber):
    masked = store.fixed_mask_counters({"ec2_instance": 2})
    stem = events.Stem(
        events.MASKING, tenant="default", source="proxy", counts_by_kind={"ec2_instance": 2}, stats=masked
    )

    async def run():
        for number in range(3):
            events.publish_stem(stem, f"request-{number}", 0.5, 100)
        assert events.pending() == 3
        await events.drain()
        await counters.aflush()

    asyncio.run(run())
    received = [subscriber() for _ in range(3)]
    assert [channel for channel, _ in received] == ["aws-masker:events:masking"] * 3
    assert [json.loads(raw)["request_id"] for _, raw in received] == ["request-0", "request-1", "request-2"]
    counts = {field.decode(): int(n) for field, n in redis_client.hgetall("aws:stats:counts").items()}
    assert counts == {"mask_operations": 3, "identifiers": 6, "kind:ec2_instance": 6}
    published = redis_client.hget("aws:metrics:counts", "events:masking:published")
    assert published == b"3"


def test_a_remembered_request_publishes_its_masking_event_after_returning(redis_client, subscriber):
    async def run():
        await masker.amask_texts([TEXT], source="proxy")
        await events.drain()
        await masker.amask_texts([TEXT], source="proxy", request_id="again")  # every identifier remembered
        queued = events.pending()
        await events.drain()
        return queued

    assert asyncio.run(run()) == 1
    subscriber()
    event = json.loads(subscriber()[1])
    assert (event["request_id"], event["new_mappings"], event["total"]) == ("again", 0, 3)


def test_the_masking_event_is_published_by_the_mask_round_trip_itself(redis_client, subscriber):
    async def run():
        await masker.amask_texts([TEXT], source="proxy", request_id="r-1")
        return events.pending()

    assert asyncio.run(run()) == 0  # nothing left to send
    channel, raw = subscriber()
    event = json.loads(raw)
    assert channel == "aws-masker:events:masking"
    assert (event["request_id"], event["new_mappings"], event["total"]) == ("r-1", 2, 3)
    assert EC2.encode() not in raw and VPC.encode() not in raw


def test_a_failed_publish_is_counted_and_never_raised(redis_server):
    before = events.failed_count()
    redis_server.stop()
    event = events.build_event(events.MASKING, tenant="default", source="api")

    events.publish_event(event, {"mask_operations": 1})

    async def run():
        await events.apublish_event(event)
        await events.drain()

    asyncio.run(run())
    assert events.failed_count() == before + 2


def test_a_plain_redis_cli_subscriber_receives_the_events(redis_server, redis_client):
    cli = subprocess.Popen(
        ["redis-cli", "-p", str(redis_server.port), "--no-auth-warning", "-a", redis_server.password]
        + ["SUBSCRIBE", "aws-masker:events:masking"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 10
        while redis_client.pubsub_numsub("aws-masker:events:masking")[0][1] < 1:
            assert time.monotonic() < deadline, "redis-cli did not subscribe"
            time.sleep(0.02)

        masker.mask_texts([TEXT])

        lines = [cli.stdout.readline().strip() for _ in range(6)]
    finally:
        cli.terminate()
        cli.wait()
    event = json.loads(lines[-1])
    assert lines[3:5] == ["message", "aws-masker:events:masking"]
    assert event["counts_by_kind"] == {"ec2_instance": 2, "vpc": 1}


def test_each_operation_reports_its_duration_and_publish_outcome_to_the_metrics(redis_client, monkeypatch):
    masker.mask_texts([TEXT], source="cli")
    unmasker.unmask_texts(["AWS_EC2_001"])

    observed = {k.decode(): float(v) for k, v in redis_client.hgetall("aws:metrics:counts").items()}
    assert observed["masking_duration:cli:count"] == 1
    assert observed["unmasking_duration:api:count"] == 1
    assert observed["events:masking:published"] == 1
    assert observed["events:unmasking:published"] == 1
