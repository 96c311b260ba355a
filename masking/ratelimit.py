"""Per-tenant request rate limit (`Tenant.rate_limit_per_minute`; empty: no limit).

A fixed one-minute window counted in Redis (INCR + EXPIRE in one round trip), so every process on
every host shares one count per tenant. A fixed window can let up to twice the limit through
around a minute boundary; that is accepted for a coarse protective limit.
"""

import time

from masking.connection import get_async_redis, get_redis
from masking.models import Tenant
from masking.store import fail_closed

WINDOW_SECONDS = 60


class RateLimited(Exception):
    """The tenant used up its requests for this minute (429)."""

    def __init__(self, limit: int, retry_after: int):
        super().__init__(f"This tenant is limited to {limit} requests per minute; retry in {retry_after} seconds.")
        self.limit = limit
        self.retry_after = retry_after


def _key(slug: str, now: float) -> str:
    return f"aws:rate:{slug}:{int(now // WINDOW_SECONDS)}"


def _verdict(count: int, limit: int, now: float) -> None:
    if count > limit:
        raise RateLimited(limit, max(1, WINDOW_SECONDS - int(now % WINDOW_SECONDS)))


def check(tenant: Tenant) -> None:
    """Count one request for `tenant`; RateLimited when it is over its limit, MaskingUnavailable if Redis fails."""
    limit = tenant.rate_limit_per_minute
    if not limit:
        return
    now = time.time()
    key = _key(tenant.slug, now)
    with fail_closed("rate limit"), get_redis().pipeline(transaction=False) as pipe:
        count, _ = pipe.incr(key).expire(key, 2 * WINDOW_SECONDS).execute()
    _verdict(count, limit, now)


async def acheck(tenant: Tenant) -> None:
    limit = tenant.rate_limit_per_minute
    if not limit:
        return
    now = time.time()
    key = _key(tenant.slug, now)
    with fail_closed("rate limit"):
        async with get_async_redis().pipeline(transaction=False) as pipe:
            count, _ = await pipe.incr(key).expire(key, 2 * WINDOW_SECONDS).execute()
    _verdict(count, limit, now)
