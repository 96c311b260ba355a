"""The numbers on the operator dashboard: KPIs from the Redis counters, charts from the rollups,
Redis and Celery health. Redis being down is a state to show, not an error to raise."""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import redis
from django.conf import settings
from django.utils import timezone

from masking.connection import get_redis
from monitoring.backups import backup_warning
from monitoring.models import StatsRollup
from monitoring.rollups import COUNTS_KEY, latency_quantile, period_start
from monitoring.taskruns import task_freshness

DAILY_KEY_PREFIX = "aws:stats:daily:"
SLOWLOG_ENTRIES = 10
# name, granularity, step, points
CHART_WINDOWS = (
    ("hour", StatsRollup.Granularity.MINUTE, timedelta(minutes=1), 60),
    ("day", StatsRollup.Granularity.HOUR, timedelta(hours=1), 24),
    ("month", StatsRollup.Granularity.DAY, timedelta(days=1), 30),
)
SERIES = ("mask_operations", "unmask_operations", "identifiers", "requests", "upstream_errors")


@dataclass
class Kpis:
    active_mappings: int | None
    total_mappings: int
    masks_today: int
    unmasks_today: int
    identifiers_today: int
    identifiers_today_by_kind: list[tuple[str, int]]
    unresolved_today: int
    unresolved_total: int
    requests_today: int
    server_errors_today: int
    upstream_errors_today: int
    upstream_errors_total: int
    p50_ms_today: float | None
    p95_ms_today: float | None

    @property
    def operations_today(self) -> int:
        return self.masks_today + self.unmasks_today

    @property
    def error_rate_today(self) -> float | None:
        """Share of today's proxied requests answered with a 5xx."""
        return self.server_errors_today / self.requests_today if self.requests_today else None

    @property
    def error_rate_percent(self) -> float | None:
        rate = self.error_rate_today
        return None if rate is None else rate * 100


@dataclass
class RedisHealth:
    ok: bool
    error: str = ""
    kpis: Kpis | None = None
    info: dict = field(default_factory=dict)
    keyspace: list[dict] = field(default_factory=list)
    slowlog: list[dict] = field(default_factory=list)


def overview(now: datetime | None = None) -> dict:
    """Everything the dashboard page shows."""
    now = now or timezone.now()
    health = redis_health(now)
    month = kinds_since(period_start(now, StatsRollup.Granularity.DAY) - timedelta(days=29))
    return {
        "now": now,
        "redis": health,
        "tasks": task_freshness(now),
        "backup_warning": backup_warning(now),
        "kinds_rows": kinds_table(health.kpis.identifiers_today_by_kind if health.kpis else None, month),
        "charts": {
            name: chart_series(granularity, step, points, now) for name, granularity, step, points in CHART_WINDOWS
        },
    }


def redis_health(now: datetime) -> RedisHealth:
    client = get_redis()
    try:
        pipe = client.pipeline(transaction=False)
        pipe.hgetall(COUNTS_KEY)
        pipe.hgetall(f"{DAILY_KEY_PREFIX}{now:%Y-%m-%d}")
        totals, today = (_decode(raw) for raw in pipe.execute())
    except (redis.RedisError, OSError) as exc:
        return RedisHealth(ok=False, error=f"redis unreachable: {type(exc).__name__}")
    health = RedisHealth(ok=True)
    try:
        info = client.info()
        health.slowlog = slow_commands(client.slowlog_get(SLOWLOG_ENTRIES))
    except redis.ResponseError as exc:  # INFO / SLOWLOG may be disabled on managed Redis
        info = {}
        health.error = f"server details unavailable: {type(exc).__name__}"
    except (redis.RedisError, OSError) as exc:
        return RedisHealth(ok=False, error=f"redis unreachable: {type(exc).__name__}")
    health.info = server_info(info)
    health.keyspace = keyspace(info)
    health.kpis = kpis(totals, today, _active_mappings(info))
    return health


def kpis(totals: dict[str, float], today: dict[str, float], active_mappings: int | None) -> Kpis:
    by_kind = sorted(((f[5:], int(n)) for f, n in today.items() if f.startswith("kind:") and n), key=lambda kv: -kv[1])
    buckets = {f.split(":", 1)[1]: n for f, n in today.items() if f.startswith("latency_bucket:")}
    server_errors = sum(n for f, n in today.items() if f.startswith("status:5"))
    return Kpis(
        active_mappings=active_mappings,
        total_mappings=int(totals.get("total_mappings", 0)),
        masks_today=int(today.get("mask_operations", 0)),
        unmasks_today=int(today.get("unmask_operations", 0)),
        identifiers_today=int(today.get("identifiers", 0)),
        identifiers_today_by_kind=by_kind,
        unresolved_today=int(today.get("unresolved_tokens", 0)),
        unresolved_total=int(totals.get("unresolved_tokens", 0)),
        requests_today=int(today.get("requests", 0)),
        server_errors_today=int(server_errors),
        upstream_errors_today=int(today.get("upstream_errors", 0)),
        upstream_errors_total=int(totals.get("upstream_errors", 0)),
        p50_ms_today=latency_quantile(buckets, 0.5),
        p95_ms_today=latency_quantile(buckets, 0.95),
    )


def server_info(info: dict) -> dict:
    if not info:
        return {}
    last_save = info.get("rdb_last_save_time")
    return {
        "version": info.get("redis_version", ""),
        "uptime": _duration(int(info.get("uptime_in_seconds", 0))),
        "used_memory": info.get("used_memory", 0),
        "peak_memory": info.get("used_memory_peak", 0),
        "maxmemory": info.get("maxmemory", 0),
        "maxmemory_policy": info.get("maxmemory_policy", ""),
        "connected_clients": info.get("connected_clients", 0),
        "last_save": datetime.fromtimestamp(last_save, UTC) if last_save else None,
        "last_save_status": info.get("rdb_last_bgsave_status", ""),
        "changes_since_save": info.get("rdb_changes_since_last_save", 0),
    }


def keyspace(info: dict) -> list[dict]:
    roles = _database_roles()
    rows = []
    for name, stats in sorted(info.items()):
        if name.startswith("db") and name[2:].isdigit() and isinstance(stats, dict):
            db = int(name[2:])
            rows.append(
                {"db": db, "role": roles.get(db, ""), "keys": stats.get("keys", 0), "expires": stats.get("expires", 0)}
            )
    return rows


def slow_commands(entries: list[dict]) -> list[dict]:
    """Command names and durations only: the arguments are keys and values, i.e. originals."""
    rows = []
    for entry in entries:
        command = entry.get("command") or b""
        name = command.split(b" ", 1)[0] if isinstance(command, bytes) else str(command).split(" ", 1)[0]
        rows.append(
            {
                "when": datetime.fromtimestamp(entry["start_time"], UTC),
                "duration_ms": entry["duration"] / 1000,
                "command": (name.decode(errors="replace") if isinstance(name, bytes) else name).upper()[:32],
            }
        )
    return rows


def chart_series(granularity: str, step: timedelta, points: int, now: datetime) -> dict:
    """One value per period (zero when no row), oldest first; times are Unix seconds for uPlot."""
    first = period_start(now, granularity) - step * (points - 1)
    rows = {
        row.period_start: row
        for row in StatsRollup.objects.filter(granularity=granularity, period_start__gte=first).only(
            *SERIES, "period_start", "latency_p95_ms"
        )
    }
    starts = [first + step * i for i in range(points)]
    series = {"t": [int(start.timestamp()) for start in starts]}
    for name in SERIES:
        series[name] = [getattr(rows[s], name) if s in rows else 0 for s in starts]
    series["latency_p95_ms"] = [rows[s].latency_p95_ms if s in rows else None for s in starts]
    return series


def kinds_since(start: datetime) -> list[tuple[str, int]]:
    totals: dict[str, int] = {}
    rows = StatsRollup.objects.filter(granularity=StatsRollup.Granularity.DAY, period_start__gte=start)
    for by_kind in rows.values_list("identifiers_by_kind", flat=True):
        for kind, n in by_kind.items():
            totals[kind] = totals.get(kind, 0) + n
    return sorted(totals.items(), key=lambda kv: -kv[1])


def kinds_table(today: list[tuple[str, int]] | None, month: list[tuple[str, int]]) -> list[tuple[str, dict]]:
    """Rows of (kind, today, 30 days, bar width %), most frequent first; today is None without Redis."""
    today_by_kind, month_by_kind = dict(today or []), dict(month)
    kinds = sorted(set(today_by_kind) | set(month_by_kind), key=lambda k: (-month_by_kind.get(k, 0), k))
    largest = max([*month_by_kind.values(), *today_by_kind.values(), 1])
    rows = []
    for kind in kinds:
        n_today, n_month = today_by_kind.get(kind, 0), month_by_kind.get(kind, 0)
        share = round(100 * max(n_today, n_month) / largest)
        rows.append((kind, {"today": n_today if today is not None else None, "month": n_month, "share": share}))
    return rows


def _active_mappings(info: dict) -> int | None:
    """Every mapping is two TTL'd keys (original -> token, token -> original); the few other
    expiring keys (daily stats, probes) make this a close estimate, O(1) instead of a SCAN."""
    stats = info.get(f"db{settings.REDIS_DB}")
    if not isinstance(stats, dict):
        return 0 if info else None
    return int(stats.get("expires", 0)) // 2


def _database_roles() -> dict[int, str]:
    roles = {}
    for url, role in (
        (settings.MASKING_REDIS_URL, "mappings"),
        (settings.CACHE_REDIS_URL, "cache"),
        (settings.CELERY_REDIS_URL, "celery"),
        (settings.CHANNELS_REDIS_URL, "channels"),
    ):
        base, _, db = url.rpartition("/")
        if base == settings.REDIS_BASE_URL and db.isdigit():
            roles[int(db)] = role
    return roles


def _decode(raw: dict) -> dict[str, float]:
    return {key.decode(): float(value) for key, value in raw.items()}


def _duration(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    return f"{days}d {hours}h" if days else f"{hours}h {minutes}m"
