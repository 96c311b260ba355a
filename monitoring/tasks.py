from celery import shared_task

from monitoring import backups, rollups
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


@shared_task
@records_run
def backup_redis() -> dict:
    """Snapshot the mapping Redis, prove the file restores, prune old backups (every 6 h by default)."""
    record = backups.run_backup()
    if record.status != record.Status.OK:
        raise backups.BackupError(f"backup {record.pk} failed: {record.error}")
    return {
        "backup_id": record.pk,
        "bytes": record.size_bytes,
        "keys": record.key_count,
        "pruned": backups.prune_backups(),
    }
