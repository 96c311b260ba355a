"""Put the mappings of a backup back into the running Redis, without a restart.

The backup is proven first (checksum, walk), then loaded into a scratch redis-server; each mapping
key is copied into the live Redis with its original absolute expiry (PEXPIRETIME -> SET PXAT), and
only where the live Redis has no such key (the live one is newer). Sequence counters end at
max(live, backup) so a token number is never handed out twice. Reports counts only.
"""

import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from itertools import islice
from pathlib import Path

import redis
from django.conf import settings

from masking.connection import get_redis
from masking.store import new_mapping_epoch
from monitoring import rdb

MAPPING_KEY = re.compile(rb"aws:(?:t:[^:]+:)?(?:mask|unmask):")
SEQUENCE_PREFIX = b"aws:seq:"
_BATCH = 500
# Raise a counter only upwards, in one step, whatever else writes it meanwhile.
_RAISE_COUNTER = """
local live = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > live then
  redis.call('SET', KEYS[1], ARGV[1])
  return 1
end
return 0
"""


@dataclass
class RestoreReport:
    restored: int = 0
    present: int = 0  # already in the live Redis, left alone
    conflicts: int = 0  # ...of which the live value differs from the backup's
    expired: int = 0  # keys of the backup's mapping database whose TTL ran out since it was taken
    unsupported: int = 0  # a mapping-shaped key that is not a string
    counters_raised: int = 0
    counters_kept: int = 0

    def lines(self) -> list[str]:
        return [f"{f.name.replace('_', ' ')}: {getattr(self, f.name)}" for f in fields(self)]


def restore_mappings(path: Path, live: redis.Redis | None = None) -> RestoreReport:
    """Verify `path`, then merge its mapping keys and counters into `live` (default: the mapping DB)."""
    summary = rdb.verify_file(path)
    live = live or get_redis()
    report = RestoreReport()
    databases = max([16, *(db + 1 for db in summary.keys_by_db)])
    scratch = rdb.scratch_server(path, settings.BACKUP_REDIS_SERVER, databases, settings.BACKUP_TIMEOUT_SECONDS)
    with scratch as server:
        with server.client(settings.REDIS_DB) as source:
            in_file, seen = source.dbsize(), 0
            for keys in batched(source.scan_iter(count=1000), _BATCH):
                seen += len(keys)
                _copy_mappings(source, live, [k for k in keys if MAPPING_KEY.match(k)], report)
                _raise_counters(source, live, [k for k in keys if k.startswith(SEQUENCE_PREFIX)], report)
    # The scratch server is a replica: DBSIZE still counts keys whose TTL ran out, SCAN skips them.
    report.expired += in_file - seen
    if report.restored:
        new_mapping_epoch(live)  # workers re-read what they remember (masking/cache.py)
    return report


def batched(items: Iterable, size: int) -> Iterator[list]:  # itertools.batched arrives in 3.12
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _copy_mappings(source: redis.Redis, live: redis.Redis, keys: list[bytes], report: RestoreReport) -> None:
    if not keys:
        return
    pipe = source.pipeline(transaction=False)
    for key in keys:
        pipe.get(key)
        pipe.pexpiretime(key)
    replies = pipe.execute(raise_on_error=False)
    now_ms = int(time.time() * 1000)
    writes = live.pipeline(transaction=False)
    written = []
    for key, value, expire_at in zip(keys, replies[::2], replies[1::2], strict=True):
        if isinstance(value, redis.ResponseError):
            report.unsupported += 1
        elif value is None or expire_at == -2 or 0 <= expire_at <= now_ms:
            report.expired += 1
        else:
            # NX: a key the live Redis already has is newer than the backup's; PXAT keeps the
            # original absolute expiry, so the remaining TTL is exactly what it would have been.
            writes.set(key, value, nx=True, pxat=expire_at if expire_at > 0 else None)
            written.append((key, value))
    results = writes.execute()
    present = [(key, value) for (key, value), ok in zip(written, results, strict=True) if not ok]
    report.restored += len(written) - len(present)
    report.present += len(present)
    if present:
        current = live.mget([key for key, _ in present])
        report.conflicts += sum(1 for (_, value), now in zip(present, current, strict=True) if now != value)


def _raise_counters(source: redis.Redis, live: redis.Redis, keys: list[bytes], report: RestoreReport) -> None:
    if not keys:
        return
    values = source.mget(keys)
    raise_counter = live.register_script(_RAISE_COUNTER)
    for key, value in zip(keys, values, strict=True):
        if value is None or not value.isdigit():
            continue
        if raise_counter(keys=[key], args=[value]):
            report.counters_raised += 1
        else:
            report.counters_kept += 1
