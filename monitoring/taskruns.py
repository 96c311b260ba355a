"""Every periodic run leaves a TaskRun row; the dashboard and /readyz judge beat freshness from them."""

import copy
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery.schedules import maybe_schedule
from django.conf import settings
from django.utils import timezone

from monitoring.models import TaskRun

ERROR_MAX_CHARS = 2000
# A run is late when it is overdue by more than this plus a tenth of its period.
LATE_GRACE = timedelta(minutes=2)


@contextmanager
def task_run(name: str) -> Iterator[TaskRun]:
    """Record one run of `name`: running now, then success or failed (and re-raise)."""
    run = TaskRun.objects.create(task=name)
    try:
        yield run
    except Exception as exc:
        run.status = TaskRun.Status.FAILED
        run.error = f"{type(exc).__name__}: {exc}"[:ERROR_MAX_CHARS]
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "error", "finished_at", "detail"])
        raise
    run.status = TaskRun.Status.SUCCESS
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "finished_at", "detail"])


def records_run(func: Callable) -> Callable:
    """Decorator for a task body: a TaskRun named like the Celery task; a dict result becomes its detail."""
    name = f"{func.__module__}.{func.__name__}"

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with task_run(name) as run:
            result = func(*args, **kwargs)
            if isinstance(result, dict):
                run.detail = result
        return result

    return wrapper


def prune_task_runs(now: datetime | None = None) -> int:
    """Delete finished runs older than TASKRUN_RETENTION_DAYS; returns how many went."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.TASKRUN_RETENTION_DAYS)
    deleted, _ = TaskRun.objects.filter(started_at__lt=cutoff).exclude(status=TaskRun.Status.RUNNING).delete()
    return deleted


@dataclass(frozen=True)
class TaskFreshness:
    entry: str  # the beat schedule's human name
    task: str
    state: str  # "ok", "late", "failed", "running" or "never"
    last_started: datetime | None
    last_finished: datetime | None
    last_status: str | None
    due_at: datetime | None
    error: str = ""

    @property
    def healthy(self) -> bool:
        return self.state in {"ok", "running"}

    @property
    def warning(self) -> str:
        messages = {
            "late": f"{self.entry}: late (last run {self.last_started:%Y-%m-%d %H:%M:%S} UTC)"
            if self.last_started
            else "",
            "failed": f"{self.entry}: last run failed",
            "never": f"{self.entry}: has not run yet",
        }
        return messages.get(self.state, "")


def task_freshness(now: datetime | None = None) -> list[TaskFreshness]:
    """The last run of every CELERY_BEAT_SCHEDULE entry, judged against its own schedule."""
    now = now or timezone.now()
    schedule = settings.CELERY_BEAT_SCHEDULE
    # One small query per task: ids grow with started_at, and the task index keeps this a short walk
    # however many rows a minutely task has left.
    latest = {
        name: TaskRun.objects.filter(task=name).order_by("-id").first()
        for name in {entry["task"] for entry in schedule.values()}
    }
    return [_judge(label, entry, latest.get(entry["task"]), now) for label, entry in schedule.items()]


def _judge(label: str, entry: dict, run: TaskRun | None, now: datetime) -> TaskFreshness:
    if run is None:
        return TaskFreshness(label, entry["task"], "never", None, None, None, None)
    due_at = _due_at(entry["schedule"], run.started_at, now)
    period = due_at - run.started_at
    if now > due_at + LATE_GRACE + period / 10:
        state = "late"
    elif run.status == TaskRun.Status.FAILED:
        state = "failed"
    elif run.status == TaskRun.Status.RUNNING:
        state = "running"
    else:
        state = "ok"
    return TaskFreshness(label, entry["task"], state, run.started_at, run.finished_at, run.status, due_at, run.error)


def _due_at(spec, last_run: datetime, now: datetime) -> datetime:
    """When the entry was next due after `last_run` (celery's schedule objects do the calendar work)."""
    sched = copy.copy(maybe_schedule(timedelta(seconds=spec) if isinstance(spec, int | float) else spec))
    sched.nowfun = lambda: now
    return now + sched.remaining_estimate(last_run)
