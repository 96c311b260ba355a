import pytest

from masking.connection import reset_clients
from tests.redis_server import SERVER, RedisServer

# The proxy tests' fixtures: a fake Claude upstream, a gateway key, the gateway in-process.
pytest_plugins = ["tests.masking.gateway"]


@pytest.fixture
def redis_server() -> RedisServer:
    """The session's redis-server. A test may stop it; it is started again afterwards."""
    yield SERVER
    if not SERVER.running:
        SERVER.start()
        reset_clients()


@pytest.fixture(autouse=True)
def clean_redis():
    """Every test starts with empty Redis databases (this server belongs to the test session)."""
    if not SERVER.running:
        SERVER.start()
    SERVER.client().flushall()
    from masking import cache, counters, policy  # after Django is set up

    policy.forget()  # the snapshot of a rolled-back policy must not outlive its test
    counters.forget()  # nor counts an earlier test could not write (Redis stopped)
    cache.mappings.clear()  # nor mappings of a flushed Redis (a request would see the epoch change)
    cache.mappings.epoch = None
    yield


@pytest.fixture
def redis_client(redis_server):
    """A plain client on the mapping database, for looking at what the code wrote."""
    client = redis_server.client(db=0)
    yield client
    client.close()
