"""Which kinds are masked, redacted or left alone, and which custom rules apply, per tenant.

Each process keeps a snapshot of the KindPolicy and CustomRule tables. Saving or deleting one
bumps `aws:policy:version` in Redis once the transaction commits; the masker calls `refresh()` /
`arefresh()` before each operation, which compares that version at most once a second (one GET)
and reloads the snapshot when it moved. An operator's change reaches every running gateway within
about a second, without a restart and without a query per request.
"""

import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

import redis
from asgiref.sync import sync_to_async
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from masking.connection import get_async_redis, get_redis
from masking.engine import KINDS
from masking.models import CustomRule, KindPolicy, Tenant

log = logging.getLogger(__name__)

MASK = "mask"
REDACT = "redact"
OFF = "off"

VERSION_KEY = "aws:policy:version"
CHECK_INTERVAL_SECONDS = 1.0
# Reload even without a new version: a bump lost to a Redis outage at save time heals itself.
MAX_AGE_SECONDS = 60.0
ALL_TENANTS = ""

_UNKNOWN = object()  # the version could not be read


@dataclass(slots=True)
class _Snapshot:
    version: bytes | None
    loaded_at: float
    modes: dict[str, dict[str, str]]  # tenant slug, or ALL_TENANTS -> kind -> mode
    rules: dict[str, tuple]  # tenant slug, or ALL_TENANTS -> compiled custom rules
    prefixes: dict[str, str]  # custom kind -> token prefix
    merged: dict[str, dict[str, str]] = field(default_factory=dict)  # per-tenant effective modes, memoised


_snapshot: _Snapshot | None = None
_checked_at = 0.0
_lock = threading.Lock()


def _slug(tenant: Tenant | str) -> str:
    return tenant.slug if isinstance(tenant, Tenant) else tenant


def _load(version) -> _Snapshot:
    modes: dict[str, dict[str, str]] = defaultdict(dict)
    for slug, kind, mode in KindPolicy.objects.values_list("tenant__slug", "kind", "mode"):
        modes[slug or ALL_TENANTS][kind] = mode
    rules: dict[str, list] = defaultdict(list)
    prefixes = {}
    for rule in CustomRule.objects.filter(enabled=True).select_related("tenant").order_by("pk"):
        compiled = _compile(rule)
        if compiled is not None:
            rules[rule.tenant.slug if rule.tenant else ALL_TENANTS].append(compiled)
            prefixes[rule.kind] = rule.prefix
    frozen_rules = {slug: tuple(found) for slug, found in rules.items()}
    return _Snapshot(None if version is _UNKNOWN else version, time.monotonic(), dict(modes), frozen_rules, prefixes)


def _compile(rule: CustomRule):
    from masking import custom_rules

    try:
        return custom_rules.compile_rule(rule.pattern, rule.kind, rule.prefix)
    except custom_rules.RuleError:
        # Rules are validated on save; one that stopped compiling (an engine upgrade) is skipped
        # rather than stopping every gateway. The name is safe to log; the pattern may not be.
        log.error("custom rule %s (id %s) no longer compiles; skipped", rule.name, rule.pk)
        return None


def _due() -> bool:
    global _checked_at
    now = time.monotonic()
    if _snapshot is not None and now - _checked_at < CHECK_INTERVAL_SECONDS:
        return False
    _checked_at = now
    return True


def _stale(version) -> bool:
    if _snapshot is None or time.monotonic() - _snapshot.loaded_at > MAX_AGE_SECONDS:
        return True
    return version is not _UNKNOWN and version != _snapshot.version


def _install(snapshot: _Snapshot) -> None:
    global _snapshot
    with _lock:
        _snapshot = snapshot


def refresh() -> None:
    """Reload the snapshot if an operator changed the policy (checked at most once a second)."""
    if not _due():
        return
    try:
        version = get_redis().get(VERSION_KEY)
    except redis.RedisError:
        version = _UNKNOWN  # keep what we have; the store fails closed on its own
    if _stale(version):
        _install(_load(version))


async def arefresh() -> None:
    if not _due():
        return
    try:
        version = await get_async_redis().get(VERSION_KEY)
    except redis.RedisError:
        version = _UNKNOWN
    if _stale(version):
        _install(await sync_to_async(_load)(version))


def forget() -> None:
    """Drop this process's snapshot: the next call reloads it."""
    global _snapshot, _checked_at
    with _lock:
        _snapshot, _checked_at = None, 0.0


def _current() -> _Snapshot:
    if _snapshot is None:
        refresh()  # sync callers that did not refresh first (async ones must `await arefresh()`)
    return _snapshot


def effective_modes(tenant: Tenant | str) -> dict[str, str]:
    """kind name -> "mask" | "redact" | "off" for this tenant: engine defaults (custom kinds: mask),
    overridden by the all-tenants policy, overridden by the tenant's own."""
    snapshot, slug = _current(), _slug(tenant)
    merged = snapshot.merged.get(slug)
    if merged is None:
        merged = {name: kind.default_policy for name, kind in KINDS.items()}
        merged.update({kind: MASK for kind in snapshot.prefixes})
        merged.update(snapshot.modes.get(ALL_TENANTS, {}))
        merged.update(snapshot.modes.get(slug, {}))
        snapshot.merged[slug] = merged
    return merged


def extra_rules(tenant: Tenant | str) -> tuple:
    """Enabled custom rules for this tenant (its own and those for all tenants), compiled for the engine."""
    snapshot = _current()
    return snapshot.rules.get(ALL_TENANTS, ()) + snapshot.rules.get(_slug(tenant), ())


def prefix_of(kind: str) -> str:
    builtin = KINDS.get(kind)
    return builtin.prefix if builtin else _current().prefixes[kind]


def _invalidate() -> None:
    """Make this process reload on its next refresh. The snapshot stays in place meanwhile: an
    async request between its `arefresh()` and its reads must not find it gone."""
    global _checked_at
    with _lock:
        _checked_at = 0.0
        if _snapshot is not None:
            _snapshot.loaded_at = float("-inf")


def bump_version() -> None:
    """Tell every gateway to reload; this process reloads on its next call."""
    _invalidate()
    try:
        get_redis().incr(VERSION_KEY)
    except redis.RedisError:
        log.warning("could not bump %s; gateways pick the change up within %ss", VERSION_KEY, MAX_AGE_SECONDS)


@receiver([post_save, post_delete], sender=KindPolicy)
@receiver([post_save, post_delete], sender=CustomRule)
def _policy_changed(sender, **kwargs) -> None:
    transaction.on_commit(bump_version)
