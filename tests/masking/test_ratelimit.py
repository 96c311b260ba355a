import asyncio

import pytest

from masking import ratelimit
from masking.models import Tenant
from masking.store import MaskingUnavailable

pytestmark = pytest.mark.django_db


@pytest.fixture
def limited() -> Tenant:
    return Tenant.objects.create(slug="limited", name="Limited", rate_limit_per_minute=3)


def test_a_tenant_without_a_limit_is_never_limited(redis_client):
    tenant = Tenant.objects.create(slug="free", name="Free")
    for _ in range(50):
        ratelimit.check(tenant)
    assert redis_client.keys("aws:rate:*") == []


def test_requests_over_the_limit_in_one_minute_are_refused_with_a_retry_time(limited, monkeypatch):
    monkeypatch.setattr(ratelimit.time, "time", lambda: 1_800_000_010.0)
    for _ in range(3):
        ratelimit.check(limited)
    with pytest.raises(ratelimit.RateLimited) as refused:
        ratelimit.check(limited)
    assert (refused.value.limit, refused.value.retry_after) == (3, 50)


def test_the_count_starts_again_in_the_next_minute(limited, monkeypatch):
    now = [1_800_000_010.0]
    monkeypatch.setattr(ratelimit.time, "time", lambda: now[0])
    for _ in range(3):
        ratelimit.check(limited)
    now[0] += 60
    ratelimit.check(limited)


def test_the_count_is_shared_by_the_sync_and_async_paths_and_expires(limited, redis_client, monkeypatch):
    monkeypatch.setattr(ratelimit.time, "time", lambda: 1_800_000_010.0)
    ratelimit.check(limited)
    asyncio.run(ratelimit.acheck(limited))
    asyncio.run(ratelimit.acheck(limited))
    with pytest.raises(ratelimit.RateLimited):
        asyncio.run(ratelimit.acheck(limited))
    [key] = redis_client.keys("aws:rate:limited:*")
    assert 0 < redis_client.ttl(key) <= 120


def test_tenants_are_counted_apart(limited):
    other = Tenant.objects.create(slug="other", name="Other", rate_limit_per_minute=3)
    for _ in range(3):
        ratelimit.check(limited)
    ratelimit.check(other)


def test_a_redis_outage_fails_closed(limited, redis_server):
    redis_server.stop()
    with pytest.raises(MaskingUnavailable):
        ratelimit.check(limited)
