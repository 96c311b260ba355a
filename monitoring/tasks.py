from celery import shared_task


@shared_task
def ping() -> str:
    """A no-op the worker answers; used by the smoke test and by operators from `manage.py shell`."""
    return "pong"
