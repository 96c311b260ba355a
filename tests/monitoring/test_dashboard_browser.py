from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from monitoring.models import StatsRollup, TaskRun
from monitoring.rollups import period_start
from tests.browser import chromium_page, log_in, screenshot
from tests.live import gateway_process

PASSWORD = "correct horse battery"


def some_history() -> None:
    """A day of rollups with a visible shape, and fresh periodic task runs."""
    now = timezone.now()
    for i in range(60):
        minute = period_start(now, "minute") - timedelta(minutes=i)
        StatsRollup.objects.create(
            granularity="minute", period_start=minute, mask_operations=20 + i % 7, identifiers=50 + 3 * (i % 11)
        )
    for i in range(24):
        StatsRollup.objects.create(
            granularity="hour",
            period_start=period_start(now, "hour") - timedelta(hours=i),
            mask_operations=900 + 40 * (i % 5),
            requests=300 + 10 * i,
            latency_p95_ms=40 + 5 * (i % 6),
        )
    for i in range(30):
        StatsRollup.objects.create(
            granularity="day",
            period_start=period_start(now, "day") - timedelta(days=i),
            mask_operations=20000 + 500 * (i % 9),
            identifiers_by_kind={"ec2_instance": 900 + i, "account_id": 300, "s3_bucket": 120},
        )
    for task in ("monitoring.tasks.rollup_stats", "monitoring.tasks.prune_rollups"):
        TaskRun.objects.create(task=task, status="success", finished_at=now)


def some_traffic_today(redis_client) -> None:
    daily = f"aws:stats:daily:{timezone.now():%Y-%m-%d}"
    for field, n in {
        "mask_operations": 310,
        "unmask_operations": 120,
        "identifiers": 840,
        "kind:ec2_instance": 600,
    }.items():
        redis_client.hincrby(daily, field, n)
    redis_client.hincrby("aws:stats:counts", "total_mappings", 2300)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_dashboard_renders_its_numbers_and_charts_in_a_real_browser(tmp_path, redis_client):
    get_user_model().objects.create_superuser("operator", None, PASSWORD)
    some_history()
    some_traffic_today(redis_client)
    errors = []
    with gateway_process(tmp_path) as url, chromium_page() as page:
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        log_in(page, url, "operator", PASSWORD)
        page.goto(f"{url}/dashboard/")
        page.wait_for_selector("#chart-latency[data-drawn=true]")
        assert page.locator(".chart canvas").count() == 4
        assert page.inner_text('[data-kpi="operations_today"] .value') == "430"
        assert page.inner_text('[data-kpi="total_mappings"] .value') == "2300"
        assert "ec2_instance" in page.inner_text("#kinds")
        assert page.locator("#redis-outage").count() == 0
        assert page.locator("#tasks .status-ok").count() == 2
        screenshot(page, "dashboard")
    assert errors == []


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_with_redis_down_the_dashboard_shows_the_outage_instead_of_crashing(tmp_path, redis_server):
    get_user_model().objects.create_superuser("operator", None, PASSWORD)
    some_history()
    with gateway_process(tmp_path) as url, chromium_page() as page:
        log_in(page, url, "operator", PASSWORD)
        redis_server.stop()
        response = page.goto(f"{url}/dashboard/")
        assert response.status == 200
        assert "Redis is unreachable" in page.inner_text("#redis-outage")
        page.wait_for_selector("#chart-hour[data-drawn=true]")  # the rollups still chart
        screenshot(page, "dashboard-redis-down")
