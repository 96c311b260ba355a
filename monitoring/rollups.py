"""Roll the store's monotonic Redis counters up into minute, hour and day StatsRollup rows.

Each run reads `aws:stats:counts`, subtracts the snapshot the previous run left in Redis, adds
the difference to the rows of the current minute, hour and day, and replaces the snapshot.
Never double counting rests on two things:
- a Redis lock, so two workers (or a beat hiccup) do not both do the work;
- a versioned snapshot swapped with compare-and-set *inside* the database transaction: a run
  that computed its deltas against a snapshot someone else has since replaced rolls back.
The price of that order: if the process dies between the swap and the commit (microseconds),
that run's deltas are lost rather than counted twice.
"""

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import redis
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from masking.connection import get_redis
from monitoring.models import StatsRollup

COUNTS_KEY = "aws:stats:counts"
SNAPSHOT_KEY = "aws:rollup:snapshot"
LOCK_KEY = "aws:rollup:lock"
LOCK_SECONDS = 60
VERSION_FIELD = "_version"
# Rollup column <- store counter field (docs/contracts.md).
INT_FIELDS = {
    "mask_operations": "mask_operations",
    "unmask_operations": "unmask_operations",
    "identifiers": "identifiers",
    "new_mappings": "new_mappings",
    "unresolved_tokens": "unresolved_tokens",
    "requests": "requests",
    "upstream_errors": "upstream_errors",
}
LATENCY_BOUNDS = ("5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000", "10000", "+Inf")
Granularity = StatsRollup.Granularity

# KEYS[1] snapshot; ARGV[1] the version the deltas were computed against, then field, value pairs.
_SWAP_SNAPSHOT = """
local current = redis.call('HGET', KEYS[1], '_version') or '0'
if current ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], '_version', tostring(tonumber(ARGV[1]) + 1))
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
"""
_RELEASE_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class SnapshotConflict(Exception):
    """Another run replaced the snapshot after these deltas were computed."""


@dataclass
class Deltas:
    version: str
    current: dict[str, str]
    counts: dict[str, float] = field(default_factory=dict)
    changed: bool = True

    @property
    def empty(self) -> bool:
        return not any(self.counts.values())

    def kinds(self) -> dict[str, int]:
        return {f[5:]: int(n) for f, n in self.counts.items() if f.startswith("kind:") and n}

    def buckets(self) -> dict[str, int]:
        return {le: int(self.counts.get(f"latency_bucket:{le}", 0)) for le in LATENCY_BOUNDS}


def read_deltas(client: redis.Redis) -> Deltas:
    """Current counters minus the previous snapshot. A counter below its snapshot was reset
    (Redis flushed or restored from an older backup): all of its current value is new."""
    pipe = client.pipeline(transaction=True)
    pipe.hgetall(COUNTS_KEY)
    pipe.hgetall(SNAPSHOT_KEY)
    current_raw, snapshot_raw = pipe.execute()
    current = {k.decode(): v.decode() for k, v in current_raw.items()}
    snapshot = {k.decode(): v.decode() for k, v in snapshot_raw.items()}
    version = snapshot.pop(VERSION_FIELD, "0")
    deltas = Deltas(version=version, current=current, changed=current != snapshot)
    for name, raw in current.items():
        now_value, before = float(raw), float(snapshot.get(name, 0))
        deltas.counts[name] = now_value - before if now_value >= before else now_value
    return deltas


def apply_deltas(client: redis.Redis, deltas: Deltas, now: datetime) -> None:
    """Add the deltas to this minute's, hour's and day's rows and swap the snapshot, atomically."""
    with transaction.atomic():
        if not deltas.empty:
            for granularity in Granularity:
                _add_to_row(granularity, period_start(now, granularity), deltas)
        args = [deltas.version]
        for name, value in deltas.current.items():
            args += [name, value]
        if not client.eval(_SWAP_SNAPSHOT, 1, SNAPSHOT_KEY, *args):
            raise SnapshotConflict


def rollup_stats(now: datetime | None = None) -> dict:
    """One rollup run: lock, read, apply, unlock. Returns a summary for the TaskRun row."""
    now = now or timezone.now()
    client = get_redis()
    token = secrets.token_hex(8)
    if not client.set(LOCK_KEY, token, nx=True, ex=LOCK_SECONDS):
        return {"result": "skipped", "reason": "another rollup holds the lock"}
    try:
        deltas = read_deltas(client)
        if not deltas.changed:
            return {"result": "idle"}
        try:
            apply_deltas(client, deltas, now)
        except SnapshotConflict:
            return {"result": "skipped", "reason": "snapshot changed under us"}
    finally:
        client.eval(_RELEASE_LOCK, 1, LOCK_KEY, token)
    return {"result": "rolled up", "period": period_start(now, Granularity.MINUTE).isoformat(), **_summary(deltas)}


def prune_rollups(now: datetime | None = None) -> dict[str, int]:
    """Delete rows past their retention (a retention of 0 keeps that granularity forever)."""
    now = now or timezone.now()
    retention = {
        Granularity.MINUTE: timedelta(hours=settings.ROLLUP_MINUTE_RETENTION_HOURS),
        Granularity.HOUR: timedelta(days=settings.ROLLUP_HOUR_RETENTION_DAYS),
        Granularity.DAY: timedelta(days=settings.ROLLUP_DAY_RETENTION_DAYS),
    }
    deleted = {}
    for granularity, keep in retention.items():
        if not keep:
            continue
        rows = StatsRollup.objects.filter(granularity=granularity, period_start__lt=now - keep)
        deleted[str(granularity)] = rows.delete()[0]
    return deleted


def period_start(moment: datetime, granularity: str) -> datetime:
    moment = moment.replace(second=0, microsecond=0)
    if granularity in (Granularity.HOUR, Granularity.DAY):
        moment = moment.replace(minute=0)
    if granularity == Granularity.DAY:
        moment = moment.replace(hour=0)
    return moment


def latency_quantile(buckets: dict[str, int | float], q: float) -> float | None:
    """Estimate a quantile (ms) from cumulative `le` buckets, interpolating linearly inside the
    bucket like Prometheus' histogram_quantile. Past the last finite bound it answers that bound."""
    total = buckets.get("+Inf", 0)
    if not total:
        return None
    rank = q * total
    lower, below = 0.0, 0
    for le in LATENCY_BOUNDS[:-1]:
        upper, count = float(le), buckets.get(le, 0)
        if count >= rank:
            inside = count - below
            return lower + (upper - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = upper, count
    return lower


def latency_max_estimate(buckets: dict[str, int | float]) -> float:
    """The upper bound of the highest occupied bucket (counters keep no true maximum)."""
    previous, highest = 0, 0.0
    for le in LATENCY_BOUNDS:
        count = buckets.get(le, 0)
        if count > previous:
            highest = float(le) if le != "+Inf" else float(LATENCY_BOUNDS[-2])
        previous = max(previous, count)
    return highest


def _add_to_row(granularity: str, start: datetime, deltas: Deltas) -> None:
    row, _ = StatsRollup.objects.select_for_update().get_or_create(granularity=granularity, period_start=start)
    for column, counter in INT_FIELDS.items():
        setattr(row, column, getattr(row, column) + int(deltas.counts.get(counter, 0)))
    row.identifiers_by_kind = _merge(row.identifiers_by_kind, deltas.kinds())
    row.latency_buckets = _merge(row.latency_buckets, deltas.buckets())
    row.latency_sum_ms += deltas.counts.get("latency_ms_sum", 0.0)
    row.latency_max_ms = max(row.latency_max_ms, latency_max_estimate(deltas.buckets()))
    row.latency_p95_ms = latency_quantile(row.latency_buckets, 0.95)
    row.save()


def _merge(into: dict, extra: dict) -> dict:
    merged = dict(into)
    for key, value in extra.items():
        if value:
            merged[key] = merged.get(key, 0) + value
    return merged


def _summary(deltas: Deltas) -> dict:
    return {column: int(deltas.counts.get(counter, 0)) for column, counter in INT_FIELDS.items()}
