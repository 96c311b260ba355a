"""Readiness checks. Each returns a small dict that is safe to show (no keys, no values)."""

import redis
from django.db import DatabaseError
from redis.exceptions import RedisError

from masking.connection import get_async_redis
from monitoring.taskruns import task_freshness

PROBE_KEY = "aws:health:probe"
SAFE_EVICTION_POLICIES = {"noeviction", "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"}


async def check_redis() -> dict:
    """Redis must answer and accept writes; a policy that may evict mappings is a warning."""
    client = get_async_redis()
    try:
        await client.set(PROBE_KEY, "1", ex=10)
        policy = (await client.config_get("maxmemory-policy")).get("maxmemory-policy", "")
    except redis.ReadOnlyError:
        return {"ok": False, "reason": "redis is read-only"}
    except redis.ResponseError as exc:
        if "CONFIG" in str(exc).upper():  # CONFIG may be renamed or disabled on managed Redis
            return {"ok": True, "warnings": ["cannot read maxmemory-policy (CONFIG is disabled)"]}
        return {"ok": False, "reason": f"redis error: {type(exc).__name__}"}
    except (RedisError, OSError) as exc:
        return {"ok": False, "reason": f"redis unreachable: {type(exc).__name__}"}
    result: dict = {"ok": True, "maxmemory_policy": policy}
    if policy and policy not in SAFE_EVICTION_POLICIES:
        result["warnings"] = [f"maxmemory-policy {policy} may evict mappings; use noeviction"]
    return result


def check_celery_beat() -> dict:
    """Periodic tasks' freshness. Always ok: a late or never-run beat is a warning, because pulling
    the web tier out of the load balancer would not bring beat back, only stop masking."""
    try:
        tasks = task_freshness()
    except DatabaseError as exc:
        return {"ok": True, "warnings": [f"task runs unreadable: {type(exc).__name__}"]}
    result: dict = {"ok": True, "tasks": {t.entry: t.state for t in tasks}}
    warnings = [t.warning for t in tasks if not t.healthy]
    if warnings:
        result["warnings"] = warnings
    return result
