import pytest

from monitoring.tasks import ping
from tests.live import celery_worker


def test_ping_is_a_plain_function():
    assert ping() == "pong"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_a_task_from_the_test_broker(tmp_path):
    with celery_worker(tmp_path):
        result = ping.delay()
        assert result.get(timeout=30) == "pong"
