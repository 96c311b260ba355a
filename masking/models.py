import hashlib
import secrets

from django.db import models

DEFAULT_TENANT = "default"
API_KEY_PREFIX = "awsm_"


class Tenant(models.Model):
    """A team whose mappings are namespaced apart from every other team's.

    The default tenant keeps the seed-compatible Redis key names."""

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    ttl_seconds = models.PositiveIntegerField(null=True, blank=True, help_text="Mapping TTL; empty: the default.")
    max_body_bytes = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: the default.")
    rate_limit_per_minute = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: no limit.")
    upstream_api_key = models.CharField(max_length=300, blank=True, help_text="Empty: the gateway's own key.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


def hash_api_key(key: str) -> str:
    # Keys are 32 random bytes, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(key.encode()).hexdigest()


class ApiClientQuerySet(models.QuerySet):
    def create_with_key(self, name: str, tenant: Tenant) -> tuple["ApiClient", str]:
        """Create a client; returns it with its key, which is not stored and cannot be shown again."""
        key = API_KEY_PREFIX + secrets.token_urlsafe(32)
        client = self.create(name=name, tenant=tenant, key_hash=hash_api_key(key), key_hint=key[:9])
        return client, key


class ApiClient(models.Model):
    """A program allowed to use the gateway, authenticated by a key only its hash is kept of."""

    name = models.CharField(max_length=200)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="api_clients")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    key_hint = models.CharField(max_length=12, editable=False, help_text="The key's first characters.")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiClientQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = "API client"

    def __str__(self) -> str:
        return f"{self.name} ({self.key_hint}…)"
