from celery import shared_task

from monitoring import rollups
from monitoring.taskruns import prune_task_runs, records_run


@shared_task
def ping() -> str:
    """A no-op the worker answers; used by the smoke test and by operators from `manage.py shell`."""
    return "pong"


@shared_task
@records_run
def rollup_stats() -> dict:
    """Roll the Redis stats counters up into minute/hour/day rows (every minute by default)."""
    return rollups.rollup_stats()


@shared_task
@records_run
def prune_rollups() -> dict:
    """Drop rollup rows and task runs past their retention."""
    return {"rollups": rollups.prune_rollups(), "task_runs": prune_task_runs()}
