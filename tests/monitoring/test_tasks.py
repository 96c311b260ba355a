import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import redis
from celery.schedules import crontab
from django.conf import settings
from django.test import override_settings

from config.celery import app
from monitoring.models import StatsRollup, TaskRun
from monitoring.taskruns import task_freshness, task_run
from monitoring.tasks import prune_rollups, rollup_stats
from tests.live import ROOT, celery_worker

NOW = datetime(2026, 11, 25, 14, 37, 12, tzinfo=UTC)


@pytest.mark.django_db
def test_a_rollup_run_leaves_a_successful_task_run_with_its_summary(redis_client):
    redis_client.hincrby("aws:stats:counts", "mask_operations", 4)
    rollup_stats()
    run = TaskRun.objects.get()
    assert run.task == "monitoring.tasks.rollup_stats"
    assert run.status == "success"
    assert run.finished_at >= run.started_at
    assert run.detail["result"] == "rolled up"
    assert run.detail["mask_operations"] == 4
    assert StatsRollup.objects.filter(mask_operations=4).count() == 3


@pytest.mark.django_db
def test_a_rollup_run_with_redis_down_is_recorded_as_failed(redis_server):
    redis_server.stop()
    with pytest.raises(redis.ConnectionError):
        rollup_stats()
    run = TaskRun.objects.get()
    assert run.status == "failed"
    assert run.error.startswith("ConnectionError")
    assert run.finished_at is not None


@pytest.mark.django_db
@override_settings(TASKRUN_RETENTION_DAYS=14, ROLLUP_MINUTE_RETENTION_HOURS=24)
def test_the_prune_task_drops_old_rollups_and_old_task_runs():
    TaskRun.objects.create(task="monitoring.tasks.rollup_stats", status="success")
    TaskRun.objects.update(started_at=datetime.now(UTC) - timedelta(days=15))
    StatsRollup.objects.create(granularity="minute", period_start=datetime.now(UTC) - timedelta(days=2))
    result = prune_rollups()
    assert result == {"rollups": {"minute": 1, "hour": 0}, "task_runs": 1}
    assert not StatsRollup.objects.exists()
    assert list(TaskRun.objects.values_list("task", "status")) == [("monitoring.tasks.prune_rollups", "success")]


@pytest.mark.django_db
def test_the_task_run_helper_records_what_the_body_reports_and_re_raises():
    with task_run("monitoring.tasks.backup_redis") as run:
        run.detail = {"bytes": 10}
    with pytest.raises(ValueError), task_run("monitoring.tasks.backup_redis"):
        raise ValueError("disk full")
    ok, failed = TaskRun.objects.order_by("id")
    assert (ok.status, ok.detail) == ("success", {"bytes": 10})
    assert (failed.status, failed.error) == ("failed", "ValueError: disk full")


def test_every_beat_entry_names_a_registered_task_and_expires_before_its_next_run():
    assert settings.CELERY_BEAT_SCHEDULE
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in app.tasks
        schedule = entry["schedule"]
        if isinstance(schedule, int | float):
            assert 0 < entry["options"]["expires"] < schedule


def test_the_rollup_period_comes_from_the_environment():
    code = "import config.settings as s; e = s.CELERY_BEAT_SCHEDULE['roll up the Redis counters into stats']; "
    code += "print(e['schedule'], e['options']['expires'])"
    env = {"PATH": "/usr/bin:/bin", "ENV_FILE": "/nonexistent", "DEBUG": "1", "ROLLUP_INTERVAL_SECONDS": "120"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.stdout.split() == ["120", "108.0"]


@pytest.mark.django_db
@override_settings(
    CELERY_BEAT_SCHEDULE={"nightly": {"task": "monitoring.tasks.backup_redis", "schedule": crontab(hour=3, minute=0)}}
)
def test_a_crontab_entry_is_late_only_after_its_next_slot_has_passed():
    TaskRun.objects.create(task="monitoring.tasks.backup_redis", status="success")
    TaskRun.objects.update(started_at=datetime(2026, 11, 25, 3, 0, 5, tzinfo=UTC))
    assert [t.state for t in task_freshness(NOW)] == ["ok"]
    # due at 03:00 the next day; the grace is 2 minutes plus a tenth of the period (2.4 h)
    assert [t.state for t in task_freshness(datetime(2026, 11, 26, 5, 20, tzinfo=UTC))] == ["ok"]
    assert [t.state for t in task_freshness(datetime(2026, 11, 26, 5, 30, tzinfo=UTC))] == ["late"]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_rolls_up_and_leaves_its_task_run(tmp_path, redis_client):
    redis_client.hincrby("aws:stats:counts", "identifiers", 12)
    with celery_worker(tmp_path):
        summary = rollup_stats.delay().get(timeout=60)
    assert summary["identifiers"] == 12
    assert TaskRun.objects.get().status == "success"
    assert StatsRollup.objects.get(granularity="day").identifiers == 12


@pytest.mark.django_db
def test_operators_see_task_runs_and_rollups_read_only_in_the_admin(admin_client):
    with task_run("monitoring.tasks.rollup_stats"):
        pass
    StatsRollup.objects.create(granularity="day", period_start=NOW, mask_operations=3)
    listing = admin_client.get("/admin/monitoring/taskrun/")
    assert listing.status_code == 200
    assert b"monitoring.tasks.rollup_stats" in listing.content
    assert admin_client.get("/admin/monitoring/statsrollup/").status_code == 200
    assert admin_client.get("/admin/monitoring/taskrun/add/").status_code == 403
    run = TaskRun.objects.get()
    assert admin_client.post(f"/admin/monitoring/taskrun/{run.pk}/delete/").status_code == 403
