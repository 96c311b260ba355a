"""REST API bodies refused as they arrive, not after the whole of them was stored.

Django's ASGI handler reads a request's whole body (spooled to a temporary file past 2.5 MB) before
any view runs, so the REST API's own size check (`api.read_json_body`, per tenant) came after a
client had sent, and the server had stored, everything it wanted. This guard sits in front of
Django for `/api/` and refuses a body whose declared size, or the bytes received so far, pass the
largest limit any tenant has (`MASKING_MAX_BODY_BYTES` or a tenant's own `max_body_bytes`): 413 in
the API's error shape, and Django sees a client that went away. The view still applies the exact
limit of the request's tenant.
"""

import json
import time

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db.models import Max
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from masking.errors import PayloadTooLarge, error_body, http_error
from masking.models import Tenant

CEILING_CACHE_SECONDS = 60  # a tenant given a larger limit in another process: this one knows within a minute
_tenants_largest: tuple[float, int] = (0.0, 0)  # (until, the largest tenant's own max_body_bytes)


def _largest_tenant_limit() -> int:
    return Tenant.objects.aggregate(largest=Max("max_body_bytes"))["largest"] or 0


async def ceiling() -> int:
    """The largest body any tenant may send (the tenants' limits looked up at most once a minute)."""
    global _tenants_largest
    until, largest = _tenants_largest
    if time.monotonic() >= until:
        largest = await sync_to_async(_largest_tenant_limit)()
        _tenants_largest = (time.monotonic() + CEILING_CACHE_SECONDS, largest)
    return max(largest, settings.MASKING_MAX_BODY_BYTES)


@receiver([post_save, post_delete], sender=Tenant)
def _tenants_changed(sender, **kwargs) -> None:
    global _tenants_largest
    _tenants_largest = (0.0, 0)  # this process looks them up again at once


def with_body_limit(app):
    """`app` (the Django site) with `/api/` request bodies bounded while they arrive."""

    async def guarded(scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            return await app(scope, receive, send)
        limit = await ceiling()
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            return await _refuse(send, limit)
        received, over = 0, False

        async def counted():
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # stop here: to Django, the client went away
                    over = True
                    return {"type": "http.disconnect"}
            return message

        await app(scope, counted, send)
        if over:
            await _refuse(send, limit)

    return guarded


async def _refuse(send, limit: int) -> None:
    error = http_error(PayloadTooLarge(limit))
    body = json.dumps(error_body(error.type, error.message)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
