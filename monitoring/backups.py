"""RDB snapshots of the mapping Redis: fetch, write atomically, prove they restore, prune.

The snapshot is streamed over the replication protocol, as `redis-cli --rdb` does: the server
runs its BGSAVE for a replica and sends the file over the same connection, so it works when Redis
is on another host or container. With BACKUP_SOURCE=volume it instead runs BGSAVE and copies the
server's dump.rdb from a volume shared with it. See docs/backups.md.
"""

import hashlib
import logging
import os
import shutil
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

import redis
from django.conf import settings
from django.utils import timezone

from masking import events
from masking.connection import get_redis
from monitoring import rdb
from monitoring.models import BackupRecord

logger = logging.getLogger(__name__)

_READ_TIMEOUT = 60.0  # the server sends a newline every second while its BGSAVE runs
_CHUNK = 1 << 20


class BackupError(Exception):
    """The snapshot could not be obtained. Messages carry no key data."""


@dataclass(frozen=True)
class RedisTarget:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool

    @classmethod
    def from_url(cls, url: str) -> "RedisTarget":
        parts = urlsplit(url)
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 6379,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=parts.scheme == "rediss",
        )


def _command(*args: str) -> bytes:
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _open(target: RedisTarget) -> socket.socket:
    sock = socket.create_connection((target.host, target.port), timeout=settings.REDIS_CONNECT_TIMEOUT)
    if target.tls:
        sock = ssl.create_default_context().wrap_socket(sock, server_hostname=target.host)
    sock.settimeout(_READ_TIMEOUT)
    return sock


def _expect_ok(reader, what: str) -> None:
    line = reader.readline()
    if not line.startswith(b"+"):
        raise BackupError(f"{what} refused: {line.decode(errors='replace').strip()[:200]}")


def stream_snapshot(dest: Path, url: str | None = None, timeout: float | None = None) -> None:
    """Ask the server for a full resync (SYNC) and write the RDB payload it sends to `dest`.

    Without `REPLCONF capa eof` the server always sends a disk-based snapshot: `$<length>` and then
    exactly that many bytes, preceded by keep-alive newlines while its BGSAVE runs."""
    target = RedisTarget.from_url(url or settings.MASKING_REDIS_URL)
    deadline = time.monotonic() + (timeout or settings.BACKUP_TIMEOUT_SECONDS)
    with _open(target) as sock, sock.makefile("rb") as reader:
        if target.password:
            auth = ("AUTH", target.username, target.password) if target.username else ("AUTH", target.password)
            sock.sendall(_command(*auth))
            _expect_ok(reader, "AUTH")
        # Redis 7+: send the snapshot only, no replication stream after it. Older servers refuse; fine.
        sock.sendall(_command("REPLCONF", "rdb-only", "1"))
        reader.readline()
        sock.sendall(_command("SYNC"))
        header = _read_bulk_header(reader, deadline)
        if not header.isdigit():  # "EOF:<mark>" is a diskless transfer, only sent to replicas asking for it
            raise BackupError("the server answered SYNC with an unexpected transfer format")
        with open(dest, "wb") as out:
            _copy_exactly(reader, out, int(header), deadline)
            out.flush()
            os.fsync(out.fileno())


def _read_bulk_header(reader, deadline: float) -> bytes:
    while True:
        if time.monotonic() > deadline:
            raise BackupError("timed out waiting for the server's snapshot")
        line = reader.readline()
        if not line:
            raise BackupError("the server closed the connection before sending a snapshot")
        if line.strip() == b"":  # keep-alive newlines while the server's BGSAVE runs
            continue
        if line.startswith(b"$"):
            return line[1:].strip()
        raise BackupError(f"SYNC refused: {line.decode(errors='replace').strip()[:200]}")


def _copy_exactly(reader, out, size: int, deadline: float) -> None:
    remaining = size
    while remaining:
        chunk = reader.read(min(_CHUNK, remaining))
        if not chunk:
            raise BackupError(f"the connection closed with {remaining} of {size} bytes still to come")
        out.write(chunk)
        remaining -= len(chunk)
        if time.monotonic() > deadline:
            raise BackupError("timed out while receiving the snapshot")


def copy_from_volume(dest: Path, client: redis.Redis, source: Path, timeout: float | None = None) -> None:
    """BGSAVE, wait for it to finish, then copy the server's dump.rdb from the shared volume."""
    deadline = time.monotonic() + (timeout or settings.BACKUP_TIMEOUT_SECONDS)
    saves_before = client.info("persistence").get("rdb_saves", 0)
    try:
        client.bgsave()
    except redis.ResponseError as exc:
        if "in progress" not in str(exc):
            raise
    while True:
        info = client.info("persistence")
        if not info["rdb_bgsave_in_progress"] and info.get("rdb_saves", 0) > saves_before:
            break
        if not info["rdb_bgsave_in_progress"] and info["rdb_last_bgsave_status"] != "ok":
            raise BackupError("the server's BGSAVE failed (see its log)")
        if time.monotonic() > deadline:
            raise BackupError("timed out waiting for BGSAVE")
        time.sleep(0.2)
    if info["rdb_last_bgsave_status"] != "ok":
        raise BackupError("the server's BGSAVE failed (see its log)")
    # Redis renames a finished snapshot into place, so this copies one whole file.
    shutil.copyfile(source, dest)
    with open(dest, "rb+") as out:
        os.fsync(out.fileno())


def fetch_snapshot(dest: Path) -> None:
    if settings.BACKUP_SOURCE == "volume":
        copy_from_volume(dest, get_redis(), Path(settings.BACKUP_VOLUME_RDB))
    else:
        stream_snapshot(dest)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _source_version() -> str:
    try:
        return str(get_redis().info("server").get("redis_version", ""))[:32]
    except redis.RedisError:
        return ""


def run_backup() -> BackupRecord:
    """Take, store and verify one snapshot; leaves a BackupRecord either way and alerts on failure."""
    record = BackupRecord.objects.create(redis_version=_source_version())
    started = time.monotonic()
    directory = Path(settings.BACKUP_DIR)
    final = directory / f"redis-{timezone.now():%Y%m%dT%H%M%SZ}-{record.pk}.rdb"
    partial = directory / f".{final.name}.partial"
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fetch_snapshot(partial)
        partial.chmod(0o600)
        os.replace(partial, final)
        _fsync_dir(directory)
        record.file, record.size_bytes, record.sha256 = str(final), final.stat().st_size, _sha256(final)
        summary = rdb.prove_restorable(final, settings.BACKUP_REDIS_SERVER, settings.BACKUP_TIMEOUT_SECONDS)
        record.redis_version = summary.redis_version or record.redis_version
        record.key_count = summary.keys_by_db.get(settings.REDIS_DB, 0)
        record.verified, record.status = True, BackupRecord.Status.OK
    except (BackupError, rdb.RdbError, redis.RedisError, OSError, ValueError) as exc:
        record.status, record.error = BackupRecord.Status.FAILED, _describe(exc)
        if partial.exists():
            partial.unlink()
    record.duration_ms = int((time.monotonic() - started) * 1000)
    record.save()
    if record.status == BackupRecord.Status.FAILED:
        logger.error("backup %s failed: %s", record.pk, record.error)
        _alert(record)
    else:
        logger.info("backup %s: %s bytes, %s mapping-db keys, verified", record.pk, record.size_bytes, record.key_count)
    return record


def _describe(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return f"{type(exc).__name__}: {exc}"[:1000]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _alert(record: BackupRecord) -> None:
    event = events.build_event(events.ALERT, tenant="", source="backup")
    event.update(alert="backup_failed", backup_id=record.pk, message=record.error[:300])
    events.publish_event(event)


def prune_backups(now: datetime | None = None) -> int:
    """Keep the newest BACKUP_KEEP_LAST good backups and everything younger than BACKUP_KEEP_DAYS;
    delete the rest, file and row together. Returns how many went."""
    now = now or timezone.now()
    _clear_abandoned(now)
    newest_good = BackupRecord.objects.filter(status=BackupRecord.Status.OK).order_by("-created_at")
    keep = list(newest_good.values_list("pk", flat=True)[: settings.BACKUP_KEEP_LAST])
    cutoff = now - timedelta(days=settings.BACKUP_KEEP_DAYS)
    doomed = BackupRecord.objects.filter(created_at__lt=cutoff).exclude(pk__in=keep)
    pruned = 0
    for record in doomed.exclude(status=BackupRecord.Status.RUNNING):
        if record.file:
            try:
                Path(record.file).unlink(missing_ok=True)
            except OSError as exc:
                logger.warning("backup %s: cannot delete its file (%s); row kept", record.pk, exc.strerror)
                continue
        record.delete()
        pruned += 1
    return pruned


def _clear_abandoned(now: datetime) -> None:
    """A run whose process died (a killed worker, a reboot) leaves a running row and maybe a partial file."""
    stale = now - timedelta(seconds=2 * settings.BACKUP_TIMEOUT_SECONDS)
    BackupRecord.objects.filter(status=BackupRecord.Status.RUNNING, created_at__lt=stale).update(
        status=BackupRecord.Status.FAILED, error="abandoned: the process taking it stopped"
    )
    for partial in Path(settings.BACKUP_DIR).glob(".*.partial"):
        if partial.stat().st_mtime < stale.timestamp():
            partial.unlink(missing_ok=True)


def backup_warning(now: datetime | None = None) -> str | None:
    """One line for the dashboard when backups need attention, else None."""
    now = now or timezone.now()
    latest = BackupRecord.objects.exclude(status=BackupRecord.Status.RUNNING).first()
    if latest is None:
        return "no Redis backup has been taken yet"
    if latest.status == BackupRecord.Status.FAILED:
        return f"the last Redis backup failed ({latest.created_at:%Y-%m-%d %H:%M} UTC): {latest.error[:200]}"
    if now - latest.created_at > timedelta(seconds=2 * settings.BACKUP_INTERVAL_SECONDS):
        return f"no Redis backup since {latest.created_at:%Y-%m-%d %H:%M} UTC"
    return None


def resolve_backup(reference: str) -> Path:
    """A backup named by its record id or by a file path."""
    if reference.isdigit():
        record = BackupRecord.objects.filter(pk=int(reference)).first()
        if record is None or not record.file:
            raise BackupError(f"no backup file recorded for backup {reference}")
        return Path(record.file)
    return Path(reference)
