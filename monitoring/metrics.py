"""Prometheus metrics, computed from Redis at scrape time.

uvicorn runs several worker processes (and the web tier may span hosts), and a scrape reaches
one of them at random. Rather than prometheus-client's multiprocess mode (a per-host directory of
mmap files that must be wiped at start-up, and still per-host), every number lives in Redis:
- what the store already counts in `aws:stats:counts` is read from there (one source of truth,
  the same numbers the dashboard shows);
- what it does not (durations, upstream latency, event publishing, Redis errors) is added to
  `aws:metrics:counts` by the `observe_*` functions below.
So any worker answers with the cluster-wide totals. Label values are bounded sets (kind names,
HTTP codes, sources); never an original value, token or key.
"""

import re
from bisect import bisect_left
from collections.abc import Iterable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from redis.exceptions import RedisError

from masking import counters
from masking.connection import get_redis

CONTENT_TYPE = CONTENT_TYPE_LATEST
STATS_KEY = "aws:stats:counts"
METRICS_KEY = "aws:metrics:counts"
DURATION_BOUNDS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
UPSTREAM_BOUNDS_S = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
REQUEST_BOUNDS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
SOURCES = {"api", "proxy", "cli"}
EVENT_TYPES = {"masking", "unmasking", "alert"}
_OPERATION = re.compile(r"[a-z][a-z0-9_]{0,31}")
_STORE_COUNTERS = {
    "mask_operations": ("aws_masker_mask_operations", "Masking operations (one per mask call)."),
    "unmask_operations": ("aws_masker_unmask_operations", "Unmasking operations (one per unmask call)."),
    "identifiers": ("aws_masker_identifiers", "AWS identifiers found and masked or redacted."),
    "new_mappings": ("aws_masker_new_mappings", "Mappings created (an original seen for the first time)."),
    "restored_tokens": ("aws_masker_restored_tokens", "Tokens restored to their original in answers."),
    "unresolved_tokens": ("aws_masker_unresolved_tokens", "Tokens that could not be restored (unknown or expired)."),
    "upstream_errors": ("aws_masker_upstream_errors", "Proxied requests that failed upstream."),
}


def _add(increments: dict[str, float]) -> None:
    counters.add(METRICS_KEY, increments)


def flush() -> None:
    """Write this process's pending observations (and the store's pending counters) now."""
    counters.flush()


async def aflush() -> None:
    await counters.aflush()


def _histogram(name: str, value: float, bounds: tuple[float, ...]) -> dict[str, float]:
    fields = _fields.get((name, bounds)) or _histogram_fields(name, bounds)
    return {fields[0][bisect_left(bounds, value)]: 1, fields[1]: float(value), fields[2]: 1}


_fields: dict[tuple[str, tuple[float, ...]], tuple[list[str], str, str]] = {}


def _histogram_fields(name: str, bounds: tuple[float, ...]) -> tuple[list[str], str, str]:
    """A histogram's field names (bucket by bisect index, sum, count), made once: the proxy notes
    a few observations per request."""
    fields = _fields.get((name, bounds))
    if fields is None:
        buckets = [f"{name}:bucket:{bound}" for bound in bounds] + [f"{name}:bucket:+Inf"]
        fields = _fields[name, bounds] = (buckets, f"{name}:sum", f"{name}:count")
    return fields


def _source(source: str) -> str:
    return source if source in SOURCES else "other"


def _masking(kind: str, duration_s: float, source: str) -> dict[str, float]:
    return _histogram(f"{kind}_duration:{_source(source)}", max(duration_s, 0.0), DURATION_BOUNDS_S)


def _event(event_type: str, published: bool) -> dict[str, float]:
    return {_event_field(event_type, published): 1}


def _event_field(event_type: str, published: bool) -> str:
    event_type = event_type if event_type in EVENT_TYPES else "other"
    return f"events:{event_type}:{'published' if published else 'failed'}"


def observe_masking(duration_s: float, source: str = "api", flush: bool = True) -> None:
    """`flush=False` when the caller writes another observation right after (one round trip for both)."""
    _add(_masking("masking", duration_s, source))
    if flush:
        counters.flush()


async def aobserve_masking(duration_s: float, source: str = "api") -> None:
    note_masking(duration_s, source)


def note_masking(duration_s: float, source: str = "api") -> None:
    """`aobserve_masking` for a caller in an event loop that will not wait for it (memory only)."""
    _add(_masking("masking", duration_s, source))
    counters.start_flushing()


def observe_unmasking(duration_s: float, source: str = "api") -> None:
    _add(_masking("unmasking", duration_s, source))
    counters.flush()


async def aobserve_unmasking(duration_s: float, source: str = "api") -> None:
    note_unmasking(duration_s, source)


def note_unmasking(duration_s: float, source: str = "api") -> None:
    _add(_masking("unmasking", duration_s, source))
    counters.start_flushing()


def observe_upstream(latency_s: float) -> None:
    _add(_histogram("upstream_latency", max(latency_s, 0.0), UPSTREAM_BOUNDS_S))
    counters.flush()


async def aobserve_upstream(latency_s: float) -> None:
    note_upstream(latency_s)


def note_upstream(latency_s: float) -> None:
    """`aobserve_upstream` for a caller in an event loop that will not wait for it: noted, and
    added up with the others when the loop writes the counters (`counters.Tally`)."""
    _upstream_latencies.note(latency_s)
    counters.start_flushing()


def _add_upstream_latencies(noted: list[tuple[float]]) -> None:
    buckets, total, count = _histogram_fields("upstream_latency", UPSTREAM_BOUNDS_S)
    increments: dict[str, float] = {total: 0.0, count: len(noted)}
    for (latency_s,) in noted:
        latency_s = max(latency_s, 0.0)
        bucket = buckets[bisect_left(UPSTREAM_BOUNDS_S, latency_s)]
        increments[bucket] = increments.get(bucket, 0) + 1
        increments[total] += latency_s
    _add(increments)


_upstream_latencies = counters.Tally(_add_upstream_latencies)


def observe_event(event_type: str, published: bool) -> None:
    _add(_event(event_type, published))
    counters.flush()


async def aobserve_event(event_type: str, published: bool) -> None:
    note_event(event_type, published)


def note_event(event_type: str, published: bool) -> None:
    _add(_event(event_type, published))
    counters.start_flushing()


def note_events(outcomes: Iterable[tuple[str, float, str, bool]]) -> None:
    """`note_masking` / `note_unmasking` and `note_event` for a batch of published events, as
    (event type, duration in seconds, source, published): one addition for the batch."""
    increments: dict[str, float] = {}
    get = increments.get
    for event_type, duration_s, source, published in outcomes:
        outcome = (event_type, source, published)
        histogram, field = _outcome_fields.get(outcome) or _fields_of_outcome(*outcome)
        if histogram is not None:
            buckets, total, count = histogram
            duration_s = max(duration_s, 0.0)
            bucket = buckets[bisect_left(DURATION_BOUNDS_S, duration_s)]
            increments[bucket] = get(bucket, 0) + 1
            increments[total] = get(total, 0.0) + float(duration_s)
            increments[count] = get(count, 0) + 1
        increments[field] = get(field, 0) + 1
    if increments:
        _add(increments)
        counters.start_flushing()


# (event type, source, published) -> (its duration histogram's fields or None, its outcome field)
_outcome_fields: dict[tuple[str, str, bool], tuple[tuple[list[str], str, str] | None, str]] = {}


def _fields_of_outcome(event_type: str, source: str, published: bool) -> tuple:
    histogram = None
    if event_type in ("masking", "unmasking"):
        histogram = _histogram_fields(f"{event_type}_duration:{_source(source)}", DURATION_BOUNDS_S)
    fields = (histogram, _event_field(event_type, published))
    if len(_outcome_fields) < 1000:  # sources and types are bounded sets, but never trust a bound
        _outcome_fields[(event_type, source, published)] = fields
    return fields


def note_redis_error(operation: str) -> None:
    """Memory only: it reaches Redis with the next write (a flush, an observation or a scrape)."""
    operation = operation if _OPERATION.fullmatch(operation) else "other"
    _add({f"redis_errors:{operation}": 1})


# --- exposition ------------------------------------------------------------------------------


def render() -> bytes:
    """The Prometheus text exposition of the cluster-wide counters."""
    flush()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_RedisCollector())
    return generate_latest(registry)


class _RedisCollector:
    def collect(self) -> Iterator:
        up = GaugeMetricFamily("aws_masker_redis_up", "1 if Redis answered this scrape, else 0.")
        try:
            pipe = get_redis().pipeline(transaction=False)
            pipe.hgetall(STATS_KEY)
            pipe.hgetall(METRICS_KEY)
            stats_raw, metrics_raw = pipe.execute()
        except (RedisError, OSError):
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from _store_families(_decode(stats_raw))
        yield from _observed_families(_decode(metrics_raw))


def _decode(raw: dict) -> dict[str, float]:
    return {key.decode(): float(value) for key, value in raw.items()}


def _store_families(stats: dict[str, float]) -> Iterator:
    for field, (name, help_text) in _STORE_COUNTERS.items():
        yield CounterMetricFamily(name, help_text, value=stats.get(field, 0))
    kinds = CounterMetricFamily("aws_masker_identifiers_by_kind", "Identifiers masked, by kind.", labels=["kind"])
    statuses = CounterMetricFamily("aws_masker_proxy_requests", "Proxied requests by HTTP status.", labels=["status"])
    for field, value in sorted(stats.items()):
        if field.startswith("kind:"):
            kinds.add_metric([field[5:]], value)
        elif field.startswith("status:"):
            statuses.add_metric([field[7:]], value)
    yield kinds
    yield statuses
    buckets = [(str(le / 1000), stats.get(f"latency_bucket:{le}", 0)) for le in REQUEST_BOUNDS_MS]
    buckets.append(("+Inf", stats.get("latency_bucket:+Inf", 0)))
    yield HistogramMetricFamily(
        "aws_masker_request_duration_seconds",
        "Proxied request time through the gateway.",
        buckets=buckets,
        sum_value=stats.get("latency_ms_sum", 0) / 1000,
    )


def _observed_families(observed: dict[str, float]) -> Iterator:
    for kind in ("masking", "unmasking"):
        family = HistogramMetricFamily(
            f"aws_masker_{kind}_duration_seconds", f"Time spent in one {kind} call.", labels=["source"]
        )
        for source in sorted(SOURCES | {"other"}):
            prefix = f"{kind}_duration:{source}"
            if f"{prefix}:count" in observed:
                family.add_metric([source], _cumulative(observed, prefix, DURATION_BOUNDS_S), observed[f"{prefix}:sum"])
        yield family
    upstream = HistogramMetricFamily(
        "aws_masker_upstream_latency_seconds", "Time to the upstream API's response headers."
    )
    upstream.add_metric(
        [], _cumulative(observed, "upstream_latency", UPSTREAM_BOUNDS_S), observed.get("upstream_latency:sum", 0)
    )
    yield upstream
    events = CounterMetricFamily("aws_masker_events", "Pub/Sub events by type and outcome.", labels=["type", "outcome"])
    errors = CounterMetricFamily("aws_masker_redis_errors", "Redis errors by operation.", labels=["operation"])
    for field, value in sorted(observed.items()):
        parts = field.split(":")
        if parts[0] == "events" and len(parts) == 3:
            events.add_metric(parts[1:], value)
        elif parts[0] == "redis_errors" and len(parts) == 2:
            errors.add_metric(parts[1:], value)
    yield events
    yield errors


def _cumulative(observed: dict[str, float], prefix: str, bounds: Iterable[float]) -> list[tuple[str, float]]:
    """Per-bucket counts (as stored) to Prometheus' cumulative `le` buckets."""
    running, buckets = 0.0, []
    for le in [*map(str, bounds), "+Inf"]:
        running += observed.get(f"{prefix}:bucket:{le}", 0)
        buckets.append((le, running))
    return buckets
