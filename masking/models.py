import hashlib
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
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


# --- Operations: mapping permissions, audit, policy, custom rules ----------------------------


class Mapping(models.Model):
    """Placeholder for the mappings kept in Redis (never in SQL): it gives the admin its
    "Mappings" page and carries the permissions on them. `view` lists (originals hidden),
    `change` extends a TTL, `delete` revokes, `reveal_original` shows originals."""

    class Meta:
        managed = False
        default_permissions = ("view", "change", "delete")
        permissions = [("reveal_original", "Can reveal original values of mappings")]

    def __str__(self) -> str:
        return "mapping"


class AuditLog(models.Model):
    """Who did what to which mapping. Never holds an original value."""

    class Action(models.TextChoices):
        REVEAL = "reveal", "reveal"
        REVOKE = "revoke", "revoke"
        EXTEND = "extend", "extend TTL"
        EXPORT = "export", "export"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    username = models.CharField(max_length=150, help_text="Kept when the user is deleted.")
    action = models.CharField(max_length=16, choices=Action.choices)
    token = models.CharField(max_length=100, db_index=True)
    tenant = models.CharField(max_length=50, help_text="Tenant slug (kept when the tenant is deleted).")
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    detail = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        default_permissions = ("view",)
        verbose_name = "audit log entry"
        verbose_name_plural = "audit log"

    def __str__(self) -> str:
        return f"{self.username} {self.action} {self.token}"


class PolicyMode(models.TextChoices):
    MASK = "mask", "mask (reversible)"
    REDACT = "redact", "redact (irreversible)"
    OFF = "off", "off (left as is)"


class KindPolicy(models.Model):
    """Overrides a kind's default mode, for one tenant or (tenant empty) for all of them."""

    tenant = models.ForeignKey(Tenant, null=True, blank=True, on_delete=models.CASCADE, help_text="Empty: all tenants.")
    kind = models.CharField(max_length=64, help_text="A built-in kind or a custom rule's kind.")
    mode = models.CharField(max_length=8, choices=PolicyMode.choices)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant__slug", "kind"]
        verbose_name = "kind policy"
        verbose_name_plural = "kind policies"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "kind"], name="kindpolicy_unique_per_tenant"),
            models.UniqueConstraint(
                fields=["kind"], condition=models.Q(tenant__isnull=True), name="kindpolicy_unique_for_all"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.mode} ({self.tenant or 'all tenants'})"

    def clean(self) -> None:
        from masking.engine import KINDS

        if self.kind not in KINDS and not CustomRule.objects.filter(kind=self.kind).exists():
            raise ValidationError({"kind": f"Unknown kind {self.kind!r}: not built in, and no custom rule has it."})


class CustomRule(models.Model):
    """An operator-defined identifier pattern, masked like a built-in kind."""

    name = models.CharField(max_length=100)
    tenant = models.ForeignKey(Tenant, null=True, blank=True, on_delete=models.CASCADE, help_text="Empty: all tenants.")
    pattern = models.CharField(max_length=1000, help_text="A regular expression in the engine's linear-time syntax.")
    kind = models.CharField(max_length=64, help_text="Kind name, lower case, e.g. jira_ticket.")
    prefix = models.CharField(max_length=32, help_text="Token prefix, upper case, e.g. JIRA gives AWS_JIRA_001.")
    enabled = models.BooleanField(default=True)
    examples = models.TextField(help_text="One example per line; the rule must match each of them.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def example_lines(self) -> list[str]:
        return [line.strip() for line in self.examples.splitlines() if line.strip()]

    def clean(self) -> None:
        from masking import custom_rules

        errors = custom_rules.check_names(self.kind, self.prefix)
        others = CustomRule.objects.exclude(pk=self.pk)
        if others.filter(prefix=self.prefix).exclude(kind=self.kind).exists():
            errors.setdefault("prefix", "Another custom kind already uses this prefix.")
        if others.filter(kind=self.kind).exclude(prefix=self.prefix).exists():
            errors.setdefault("prefix", "Rules of the same kind share one prefix.")
        if not errors:
            try:
                custom_rules.validate(self.pattern, self.kind, self.prefix, self.example_lines)
            except custom_rules.RuleError as exc:
                errors["pattern"] = str(exc)
        if errors:
            raise ValidationError(errors)
