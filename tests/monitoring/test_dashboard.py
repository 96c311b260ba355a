from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings
from django.utils import timezone

from monitoring.dashboard import overview
from monitoring.models import StatsRollup, TaskRun

NOW = datetime(2026, 11, 25, 14, 37, 12, tzinfo=UTC)
ROLLUP_TASK = "monitoring.tasks.rollup_stats"
PRUNE_TASK = "monitoring.tasks.prune_rollups"


@pytest.fixture
def operator_client(client):
    user = get_user_model().objects.create_user("operator", password="pw", is_staff=True)
    client.force_login(user)
    return client


@pytest.fixture
def viewer_client(client):
    user = get_user_model().objects.create_user("viewer", password="pw")
    client.force_login(user)
    return client


def write_counters(redis_client, day: datetime) -> None:
    """A known day of traffic, written the way the store writes it (docs/contracts.md)."""
    totals = {"total_mappings": 120, "unresolved_tokens": 9, "upstream_errors": 4, "mask_operations": 400}
    today = {
        "mask_operations": 30,
        "unmask_operations": 12,
        "identifiers": 75,
        "kind:ec2_instance": 50,
        "kind:account_id": 20,
        "kind:s3_bucket": 5,
        "unresolved_tokens": 2,
        "requests": 40,
        "status:200": 36,
        "status:502": 3,
        "status:503": 1,
        "upstream_errors": 3,
        # 40 requests: 20 under 10 ms, 16 more under 50 ms, 4 under 500 ms
        "latency_bucket:5": 0,
        "latency_bucket:10": 20,
        "latency_bucket:25": 28,
        "latency_bucket:50": 36,
        "latency_bucket:100": 36,
        "latency_bucket:250": 36,
        "latency_bucket:500": 40,
        "latency_bucket:1000": 40,
        "latency_bucket:+Inf": 40,
    }
    daily_key = f"aws:stats:daily:{day:%Y-%m-%d}"
    for field, n in totals.items():
        redis_client.hincrby("aws:stats:counts", field, n)
    for field, n in today.items():
        redis_client.hincrby(daily_key, field, n)
    redis_client.expire(daily_key, 40 * 86400)
    for i in range(3):  # three live mappings: two TTL'd keys each
        redis_client.set(f"aws:mask:original-{i}", f"AWS_EC2_00{i}", ex=3600)
        redis_client.set(f"aws:unmask:AWS_EC2_00{i}", f"original-{i}", ex=3600)


@pytest.mark.django_db
def test_every_kpi_comes_from_the_known_counters(redis_client):
    write_counters(redis_client, NOW)
    kpis = overview(NOW)["redis"].kpis
    assert kpis.active_mappings == 3
    assert kpis.total_mappings == 120
    assert (kpis.masks_today, kpis.unmasks_today, kpis.operations_today) == (30, 12, 42)
    assert kpis.identifiers_today == 75
    assert kpis.identifiers_today_by_kind == [("ec2_instance", 50), ("account_id", 20), ("s3_bucket", 5)]
    assert (kpis.unresolved_today, kpis.unresolved_total) == (2, 9)
    assert (kpis.upstream_errors_today, kpis.upstream_errors_total) == (3, 4)
    assert kpis.error_rate_today == pytest.approx(4 / 40)
    assert kpis.p50_ms_today == pytest.approx(10)  # rank 20 is the top of the 10 ms bucket
    assert kpis.p95_ms_today == pytest.approx(250 + 250 * (38 - 36) / 4)


@pytest.mark.django_db
def test_yesterdays_traffic_is_not_counted_as_today(redis_client):
    write_counters(redis_client, NOW - timedelta(days=1))
    kpis = overview(NOW)["redis"].kpis
    assert kpis.operations_today == 0
    assert kpis.error_rate_today is None
    assert kpis.p95_ms_today is None
    assert kpis.total_mappings == 120


@pytest.mark.django_db
def test_the_charts_have_one_point_per_period_with_zeros_where_nothing_happened():
    minute = NOW.replace(second=0)
    StatsRollup.objects.create(granularity="minute", period_start=minute, mask_operations=7, latency_p95_ms=12.5)
    StatsRollup.objects.create(granularity="minute", period_start=minute - timedelta(minutes=59), identifiers=3)
    StatsRollup.objects.create(granularity="minute", period_start=minute - timedelta(minutes=60), identifiers=99)
    StatsRollup.objects.create(granularity="hour", period_start=NOW.replace(minute=0, second=0), requests=11)
    midnight = NOW.replace(hour=0, minute=0, second=0)
    StatsRollup.objects.create(granularity="day", period_start=midnight, unmask_operations=5)
    charts = overview(NOW)["charts"]
    hour, day, month = charts["hour"], charts["day"], charts["month"]
    assert (len(hour["t"]), len(day["t"]), len(month["t"])) == (60, 24, 30)
    assert hour["t"][-1] == int(minute.timestamp())
    assert hour["mask_operations"][-1] == 7
    assert hour["identifiers"][0] == 3
    assert sum(hour["identifiers"]) == 3  # the 61st minute is outside the window
    assert hour["latency_p95_ms"][-1] == 12.5 and hour["latency_p95_ms"][0] is None
    assert day["requests"][-1] == 11 and sum(day["requests"]) == 11
    assert month["unmask_operations"][-1] == 5


@pytest.mark.django_db
def test_identifiers_by_kind_combine_today_and_the_last_30_days(redis_client):
    write_counters(redis_client, NOW)
    day = NOW.replace(hour=0, minute=0, second=0)
    month = {"ec2_instance": 40, "vpc": 100}
    StatsRollup.objects.create(granularity="day", period_start=day, identifiers_by_kind=month)
    StatsRollup.objects.create(
        granularity="day", period_start=day - timedelta(days=29), identifiers_by_kind={"vpc": 100}
    )
    StatsRollup.objects.create(
        granularity="day", period_start=day - timedelta(days=30), identifiers_by_kind={"iam_role": 999}
    )
    rows = dict(overview(NOW)["kinds_rows"])
    assert rows["vpc"] == {"today": 0, "month": 200, "share": 100}
    assert rows["ec2_instance"] == {"today": 50, "month": 40, "share": 25}
    assert rows["account_id"]["today"] == 20
    assert "iam_role" not in rows


@pytest.mark.django_db
def test_redis_health_shows_the_server_without_any_key_or_value(redis_client):
    write_counters(redis_client, NOW)
    redis_client.config_set("slowlog-log-slower-than", 0)  # log every command
    try:
        redis_client.get("aws:mask:arn:aws:iam::123456789012:role/Secret")
        health = overview(NOW)["redis"]
    finally:
        redis_client.config_set("slowlog-log-slower-than", 10000)
    assert health.ok
    assert health.info["version"] == redis_client.info()["redis_version"]
    assert health.info["maxmemory_policy"] == "noeviction"
    assert health.info["connected_clients"] >= 1
    assert {"db": 0, "role": "mappings", "keys": 8, "expires": 7} in health.keyspace
    commands = {entry["command"] for entry in health.slowlog}
    assert "GET" in commands
    assert not any("aws:" in c or "123456789012" in c for c in commands)


@pytest.mark.django_db
def test_with_redis_down_the_numbers_say_so_instead_of_raising(redis_server):
    redis_server.stop()
    health = overview(NOW)["redis"]
    assert health.ok is False
    assert health.error.startswith("redis unreachable")
    assert health.kpis is None


@pytest.mark.django_db
def test_a_periodic_task_that_stopped_running_is_late():
    TaskRun.objects.create(task=ROLLUP_TASK, status="success")
    TaskRun.objects.filter(task=ROLLUP_TASK).update(started_at=NOW - timedelta(minutes=10), finished_at=NOW)
    TaskRun.objects.create(task=PRUNE_TASK, status="success")
    TaskRun.objects.filter(task=PRUNE_TASK).update(started_at=NOW - timedelta(minutes=30))
    tasks = {t.task: t for t in overview(NOW)["tasks"]}
    assert tasks[ROLLUP_TASK].state == "late"
    assert tasks[PRUNE_TASK].state == "ok"


@pytest.mark.django_db
def test_a_task_whose_last_run_failed_is_flagged_even_when_on_time():
    TaskRun.objects.create(task=ROLLUP_TASK, status="failed", error="ConnectionError: refused")
    TaskRun.objects.filter(task=ROLLUP_TASK).update(started_at=NOW - timedelta(seconds=30))
    tasks = {t.task: t for t in overview(NOW)["tasks"]}
    assert tasks[ROLLUP_TASK].state == "failed"
    assert tasks[PRUNE_TASK].state == "never"


@pytest.mark.django_db
def test_the_dashboard_page_shows_the_numbers_to_an_operator(operator_client, redis_client):
    write_counters(redis_client, timezone.now())
    response = operator_client.get("/dashboard/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-kpi="operations_today"><div class="label">Operations today</div><div class="value">42<' in html
    assert 'data-kpi="total_mappings"><div class="label">Mappings ever created</div><div class="value">120<' in html
    assert "10.00%" in html
    assert "ec2_instance" in html
    assert 'id="dashboard-charts"' in html
    for link in ("/dashboard/live/", "/admin/masking/mapping/", "/admin/monitoring/backuprecord/"):
        assert f'href="{link}"' in html
    assert "original-0" not in html


@pytest.mark.django_db
def test_the_dashboard_page_shows_the_outage_when_redis_is_down(operator_client, redis_server):
    redis_server.stop()
    response = operator_client.get("/dashboard/")
    assert response.status_code == 200
    assert b'id="redis-outage"' in response.content
    assert b"Redis is unreachable" in response.content


@pytest.mark.django_db
def test_the_dashboard_sends_anonymous_visitors_to_log_in(client):
    response = client.get("/dashboard/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.django_db
def test_the_dashboard_is_for_staff_only(viewer_client):
    assert viewer_client.get("/dashboard/").status_code == 302


@pytest.mark.django_db
def test_readyz_reports_beat_freshness_without_failing_on_a_fresh_database(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    beat = response.json()["checks"]["celery_beat"]
    assert beat["ok"] is True
    assert beat["tasks"]["roll up the Redis counters into stats"] == "never"
    assert any("has not run yet" in warning for warning in beat["warnings"])


@pytest.mark.django_db
def test_readyz_warns_when_the_rollup_is_late_but_stays_ready(client):
    TaskRun.objects.create(task=ROLLUP_TASK, status="success")
    TaskRun.objects.update(started_at=timezone.now() - timedelta(hours=1))
    response = client.get("/readyz")
    assert response.status_code == 200
    beat = response.json()["checks"]["celery_beat"]
    assert beat["tasks"]["roll up the Redis counters into stats"] == "late"


@pytest.mark.django_db
@override_settings(
    CELERY_BEAT_SCHEDULE={"roll up": {"task": ROLLUP_TASK, "schedule": timedelta(minutes=5)}},
)
def test_freshness_follows_each_entrys_own_period():
    TaskRun.objects.create(task=ROLLUP_TASK, status="success")
    TaskRun.objects.update(started_at=NOW - timedelta(minutes=6))
    assert [t.state for t in overview(NOW)["tasks"]] == ["ok"]


@pytest.mark.django_db
def test_the_dashboard_warns_when_the_last_backup_failed_and_not_once_it_succeeds(operator_client):
    from monitoring.models import BackupRecord

    BackupRecord.objects.create(status=BackupRecord.Status.FAILED, error="checksum mismatch")
    html = operator_client.get("/dashboard/").content.decode()
    assert 'id="backup-warning"' in html and "checksum mismatch" in html

    BackupRecord.objects.create(status=BackupRecord.Status.OK, verified=True)
    assert 'id="backup-warning"' not in operator_client.get("/dashboard/").content.decode()
