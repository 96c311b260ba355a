"""Fixtures for the proxy tests: a running fake upstream, a gateway key, and the gateway itself,
either in-process (the real ASGI app through httpx.ASGITransport) or under uvicorn.

Test modules import the fixtures they use from here."""

import asyncio

import httpx
import pytest

from masking import counters, events, proxy
from masking.models import DEFAULT_TENANT, ApiClient, Tenant
from tests.masking.fake_upstream import FakeUpstream, serving

UPSTREAM_KEY = "sk-ant-upstream-secret"


@pytest.fixture
def upstream():
    app = FakeUpstream()
    with serving(app) as url:
        app.url = url
        yield app


@pytest.fixture
def default_tenant(transactional_db) -> Tenant:
    # Transactional tests flush the tables, the default tenant's data migration included.
    return Tenant.objects.get_or_create(slug=DEFAULT_TENANT, defaults={"name": "Default"})[0]


@pytest.fixture
def api_key(default_tenant) -> str:
    return ApiClient.objects.create_with_key("tests", default_tenant)[1]


class Gateway:
    """The real ASGI application, called in-process; each call runs on a fresh event loop."""

    def post(self, path: str, **kwargs) -> httpx.Response:
        return asyncio.run(self._send("POST", path, **kwargs))

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        return asyncio.run(self._send(method, path, **kwargs))

    async def _send(self, method: str, path: str, **kwargs) -> httpx.Response:
        from config.asgi import application

        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.request(method, path, **kwargs)
        # Events are published in the background and counters written about once a second:
        # let them land before the loop ends.
        await events.drain()
        await counters.aflush()
        return response


@pytest.fixture
def gateway(upstream, settings) -> Gateway:
    settings.ANTHROPIC_UPSTREAM_URL = upstream.url
    settings.ANTHROPIC_API_KEY = UPSTREAM_KEY
    settings.GATEWAY_AUTH_MODE = "gateway"
    proxy._known_clients.clear()
    return Gateway()


def message(content, **extra) -> dict:
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": content}],
        **extra,
    }


def headers(key: str, **extra: str) -> dict[str, str]:
    return {"x-api-key": key, "anthropic-version": "2023-06-01", **extra}
