"""Redis clients for the mapping database: one pooled sync client per process, and one
pooled asyncio client per event loop (asyncio connections belong to the loop that made them)."""

import asyncio
import threading
import weakref

import redis
import redis.asyncio as aioredis
from django.conf import settings
from redis.connection import HIREDIS_AVAILABLE, HiredisRespSerializer


def _options() -> dict:
    return {
        "socket_connect_timeout": settings.REDIS_CONNECT_TIMEOUT,
        "socket_timeout": settings.REDIS_COMMAND_TIMEOUT,
        "max_connections": settings.REDIS_MAX_CONNECTIONS,
        "health_check_interval": 30,
    }


_sync_clients: dict[str, redis.Redis] = {}
_sync_lock = threading.Lock()
_async_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, aioredis.Redis]]" = (
    weakref.WeakKeyDictionary()
)


def get_redis(url: str | None = None) -> redis.Redis:
    """The process-wide client for `url` (default: the mapping database)."""
    url = url or settings.MASKING_REDIS_URL
    client = _sync_clients.get(url)
    if client is None:
        with _sync_lock:
            client = _sync_clients.get(url)
            if client is None:
                client = redis.Redis.from_url(url, **_options())
                _sync_clients[url] = client
    return client


class _HiredisPackedConnection(aioredis.Connection):
    """redis-py's asyncio connection packs commands in Python (its sync one uses hiredis): that
    was a third of the client's CPU for the proxy's EVALSHA and MGET of ~40 keys each."""

    _packer = HiredisRespSerializer()

    def pack_command(self, *args) -> list[bytes]:
        return self._packer.pack(*args)


def get_async_redis(url: str | None = None) -> aioredis.Redis:
    """The client for `url` bound to the running event loop."""
    url = url or settings.MASKING_REDIS_URL
    loop = asyncio.get_running_loop()
    clients = _async_clients.setdefault(loop, {})
    client = clients.get(url)
    if client is None:
        options = _options()
        if HIREDIS_AVAILABLE:  # rediss:// URLs keep redis-py's TLS connection class
            options["connection_class"] = _HiredisPackedConnection
        client = aioredis.Redis.from_url(url, **options)
        clients[url] = client
    return client


def reset_clients() -> None:
    """Forget cached clients (tests that point settings at another server)."""
    with _sync_lock:
        for client in _sync_clients.values():
            client.close()
        _sync_clients.clear()
    _async_clients.clear()
