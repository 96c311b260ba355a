import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import override_settings

from masking.connection import get_redis
from monitoring.models import StatsRollup
from monitoring.rollups import (
    COUNTS_KEY,
    LOCK_KEY,
    SnapshotConflict,
    apply_deltas,
    latency_max_estimate,
    latency_quantile,
    prune_rollups,
    read_deltas,
    rollup_stats,
)

NOW = datetime(2026, 11, 25, 14, 37, 12, tzinfo=UTC)
MINUTE = datetime(2026, 11, 25, 14, 37, tzinfo=UTC)
HOUR = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
DAY = datetime(2026, 11, 25, tzinfo=UTC)


def record_traffic(redis_client, latencies_ms=(), **counts):
    """Write counters the way the store does (docs/contracts.md): HINCRBY only."""
    for field, n in counts.items():
        redis_client.hincrby(COUNTS_KEY, field.replace("kind_", "kind:"), n)
    for latency in latencies_ms:
        redis_client.hincrbyfloat(COUNTS_KEY, "latency_ms_sum", latency)
        redis_client.hincrby(COUNTS_KEY, "latency_ms_count", 1)
        for le in ("5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000", "10000"):
            if latency <= float(le):
                redis_client.hincrby(COUNTS_KEY, f"latency_bucket:{le}", 1)
        redis_client.hincrby(COUNTS_KEY, "latency_bucket:+Inf", 1)


def row(granularity, start):
    return StatsRollup.objects.get(granularity=granularity, period_start=start)


@pytest.mark.django_db
def test_it_adds_the_counters_to_the_minute_hour_and_day_rows(redis_client):
    record_traffic(
        redis_client,
        latencies_ms=[3, 7, 40],
        mask_operations=5,
        unmask_operations=2,
        identifiers=9,
        kind_ec2_instance=6,
        kind_account_id=3,
        new_mappings=4,
        unresolved_tokens=1,
        requests=3,
        upstream_errors=1,
    )
    summary = rollup_stats(now=NOW)
    assert summary["result"] == "rolled up"
    for granularity, start in (("minute", MINUTE), ("hour", HOUR), ("day", DAY)):
        rollup = row(granularity, start)
        assert (rollup.mask_operations, rollup.unmask_operations, rollup.identifiers) == (5, 2, 9)
        assert rollup.identifiers_by_kind == {"ec2_instance": 6, "account_id": 3}
        assert (rollup.new_mappings, rollup.unresolved_tokens) == (4, 1)
        assert (rollup.requests, rollup.upstream_errors) == (3, 1)
        assert rollup.latency_sum_ms == pytest.approx(50)
        assert rollup.latency_buckets["5"] == 1
        assert rollup.latency_buckets["10"] == 2
        assert rollup.latency_buckets["+Inf"] == 3
        assert rollup.latency_max_ms == 50
        assert rollup.latency_p95_ms == pytest.approx(25 + 25 * (2.85 - 2))


@pytest.mark.django_db
def test_running_twice_without_new_traffic_counts_nothing_twice(redis_client):
    record_traffic(redis_client, mask_operations=5, identifiers=7)
    rollup_stats(now=NOW)
    assert rollup_stats(now=NOW + timedelta(seconds=5))["result"] == "idle"
    assert row("minute", MINUTE).mask_operations == 5
    assert row("day", DAY).identifiers == 7


@pytest.mark.django_db
def test_a_later_run_adds_only_the_new_traffic(redis_client):
    record_traffic(redis_client, mask_operations=5, kind_s3_bucket=2)
    rollup_stats(now=NOW)
    record_traffic(redis_client, mask_operations=3, kind_s3_bucket=1, kind_vpc=4)
    rollup_stats(now=NOW + timedelta(minutes=1))
    assert row("minute", MINUTE).mask_operations == 5
    assert row("minute", MINUTE + timedelta(minutes=1)).mask_operations == 3
    assert row("hour", HOUR).mask_operations == 8
    assert row("day", DAY).identifiers_by_kind == {"s3_bucket": 3, "vpc": 4}


@pytest.mark.django_db
def test_a_run_that_lost_the_snapshot_race_rolls_back(redis_client):
    record_traffic(redis_client, mask_operations=5)
    client = get_redis()
    stale = read_deltas(client)
    apply_deltas(client, read_deltas(client), NOW)
    with pytest.raises(SnapshotConflict):
        apply_deltas(client, stale, NOW)
    assert row("minute", MINUTE).mask_operations == 5


@pytest.mark.django_db
def test_it_skips_while_another_worker_holds_the_lock(redis_client):
    record_traffic(redis_client, mask_operations=5)
    redis_client.set(LOCK_KEY, "someone-else", ex=60)
    assert rollup_stats(now=NOW)["result"] == "skipped"
    assert not StatsRollup.objects.exists()
    assert redis_client.get(LOCK_KEY) == b"someone-else"


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_count_the_traffic_exactly_once(redis_client):
    record_traffic(redis_client, mask_operations=5, identifiers=11)
    start = threading.Barrier(4)
    results = []

    def worker():
        start.wait()
        try:
            results.append(rollup_stats(now=NOW)["result"])
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count("rolled up") >= 1
    assert row("minute", MINUTE).mask_operations == 5
    assert row("day", DAY).identifiers == 11


@pytest.mark.django_db
def test_a_counter_reset_counts_the_new_value_instead_of_a_negative_delta(redis_client):
    record_traffic(redis_client, mask_operations=10)
    rollup_stats(now=NOW)
    redis_client.delete(COUNTS_KEY)  # e.g. Redis restored from an older backup
    record_traffic(redis_client, mask_operations=3)
    rollup_stats(now=NOW + timedelta(minutes=1))
    assert row("hour", HOUR).mask_operations == 13


@pytest.mark.django_db
def test_the_first_run_counts_everything_since_the_counters_began(redis_client):
    record_traffic(redis_client, unmask_operations=4)
    rollup_stats(now=NOW)
    assert row("day", DAY).unmask_operations == 4


def test_the_p95_estimate_interpolates_inside_the_bucket_like_prometheus():
    buckets = {"5": 0, "10": 0, "25": 0, "50": 0, "100": 100, "+Inf": 100}
    assert latency_quantile(buckets, 0.95) == pytest.approx(50 + 50 * 0.95)
    assert latency_quantile(buckets, 0.5) == pytest.approx(75)
    assert latency_quantile({"+Inf": 0}, 0.95) is None


def test_the_p95_estimate_stops_at_the_last_finite_bound():
    buckets = {"10000": 1, "+Inf": 10}
    assert latency_quantile(buckets, 0.95) == 10000
    assert latency_max_estimate(buckets) == 10000


@pytest.mark.django_db
@override_settings(ROLLUP_MINUTE_RETENTION_HOURS=24, ROLLUP_HOUR_RETENTION_DAYS=31, ROLLUP_DAY_RETENTION_DAYS=0)
def test_pruning_keeps_minutes_a_day_hours_a_month_and_days_forever():
    for granularity, age in (
        ("minute", timedelta(hours=23)),
        ("minute", timedelta(hours=25)),
        ("hour", timedelta(days=30)),
        ("hour", timedelta(days=32)),
        ("day", timedelta(days=3000)),
    ):
        StatsRollup.objects.create(granularity=granularity, period_start=MINUTE - age)
    assert prune_rollups(now=MINUTE) == {"minute": 1, "hour": 1}
    kept = sorted(StatsRollup.objects.values_list("granularity", flat=True))
    assert kept == ["day", "hour", "minute"]


@pytest.mark.django_db
@override_settings(ROLLUP_DAY_RETENTION_DAYS=365)
def test_pruning_honours_a_configured_day_retention():
    StatsRollup.objects.create(granularity="day", period_start=DAY - timedelta(days=400))
    assert prune_rollups(now=NOW)["day"] == 1
