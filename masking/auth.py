"""Gateway API keys: programs send `x-api-key: <key>` or `Authorization: Bearer <key>`."""

from datetime import timedelta

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from masking import store
from masking.models import API_KEY_PREFIX, ApiClient, Tenant, hash_api_key

# last_used_at is for operators ("is this key still used?"): a minute's precision is plenty,
# and it spares the database a write on every request.
LAST_USED_PRECISION = timedelta(minutes=1)


def key_from_headers(headers) -> str | None:
    """The key a request carries, from a Django `request.headers`-like mapping."""
    key = headers.get("x-api-key")
    if key:
        return key.strip()
    scheme, _, credentials = (headers.get("authorization") or "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


def _needs_touch(client: ApiClient, now) -> bool:
    return client.last_used_at is None or now - client.last_used_at >= LAST_USED_PRECISION


def authenticate_key(key: str) -> ApiClient | None:
    """The active client owning `key` (its tenant loaded), or None."""
    if not key or not key.startswith(API_KEY_PREFIX):
        return None
    client = ApiClient.objects.select_related("tenant").filter(key_hash=hash_api_key(key), is_active=True).first()
    if client is not None:
        now = timezone.now()
        if _needs_touch(client, now):
            ApiClient.objects.filter(pk=client.pk).update(last_used_at=now)
            client.last_used_at = now
    return client


async def aauthenticate_key(key: str) -> ApiClient | None:
    if not key or not key.startswith(API_KEY_PREFIX):
        return None
    client = (
        await ApiClient.objects.select_related("tenant").filter(key_hash=hash_api_key(key), is_active=True).afirst()
    )
    if client is not None:
        now = timezone.now()
        if _needs_touch(client, now):
            await ApiClient.objects.filter(pk=client.pk).aupdate(last_used_at=now)
            client.last_used_at = now
    return client


class ApiClientUser:
    """request.user for a program: authenticated, never staff, no Django permissions."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None

    def __init__(self, client: ApiClient):
        self.client = client
        self.username = f"api-client:{client.pk}"

    def __str__(self) -> str:
        return self.username

    def has_perm(self, perm, obj=None) -> bool:
        return False


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """DRF authentication: request.user is an ApiClientUser, request.auth the ApiClient."""

    def authenticate(self, request):
        key = key_from_headers(request.headers)
        if key is None:
            return None
        client = authenticate_key(key)
        if client is None:
            raise exceptions.AuthenticationFailed("Invalid or inactive API key.")
        return ApiClientUser(client), client

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """ApiKeyAuthentication in the OpenAPI schema (and the docs page's "Authorize" button)."""

    target_class = ApiKeyAuthentication
    name = ["ApiKey", "Bearer"]

    def get_security_requirement(self, auto_schema):
        return [{"ApiKey": []}, {"Bearer": []}]  # either header, not both

    def get_security_definition(self, auto_schema):
        return [
            {"type": "apiKey", "in": "header", "name": "x-api-key"},
            {"type": "http", "scheme": "bearer", "description": "The same API key, as a bearer token."},
        ]


class IsOperatorOrApiClient(permissions.BasePermission):
    """A program with a valid key, or a staff operator logged in to the admin."""

    message = "An API key or a staff session is required."

    def has_permission(self, request, view) -> bool:
        if isinstance(request.auth, ApiClient):
            return True
        user = request.user
        return bool(user and user.is_authenticated and user.is_active and user.is_staff)


@receiver([post_save, post_delete], sender=ApiClient)
@receiver([post_save, post_delete], sender=Tenant)
def _clients_changed(sender, **kwargs) -> None:
    """A client deactivated or deleted (or its tenant changed) stops working at the proxy's next
    masked request, not when its remembered lookup runs out (`last_used_at` is written with
    `update()`, which sends no signal)."""
    transaction.on_commit(store.bump_auth_version)
