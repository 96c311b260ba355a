import json
import os
import re
import shutil
import subprocess
import time
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
import redis
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from masking.masker import mask_texts
from masking.unmasker import unmask_texts
from monitoring import backups, rdb
from monitoring.models import BackupRecord, TaskRun
from monitoring.tasks import backup_redis
from tests.redis_server import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def backup_dir(settings, tmp_path) -> Path:
    settings.BACKUP_DIR = tmp_path / "backups"
    return settings.BACKUP_DIR


def write_mappings(client, pairs: dict[str, str], ttl_ms: int, prefix: str = "aws:") -> None:
    """Mappings in the store's documented layout (docs/contracts.md)."""
    for original, token in pairs.items():
        client.set(f"{prefix}mask:{original}", token, px=ttl_ms)
        client.set(f"{prefix}unmask:{token}", original, px=ttl_ms)


def test_it_streams_a_snapshot_over_the_replication_protocol(redis_server, redis_client, tmp_path):
    redis_client.set("aws:mask:i-0abc", "AWS_EC2_001")
    redis_server.client(2).set("celery-ish", "1")
    dest = tmp_path / "stream.rdb"

    backups.stream_snapshot(dest, url=redis_server.url + "/0")

    assert rdb.verify_file(dest).keys_by_db == {0: 1, 2: 1}


def test_it_waits_through_keep_alive_newlines_while_the_server_saves(redis_server, redis_client, tmp_path):
    redis_client.set("aws:mask:i-0abc", "AWS_EC2_001")
    redis_client.set("aws:unmask:AWS_EC2_001", "i-0abc")
    redis_client.config_set("rdb-key-save-delay", 1_200_000)  # µs per key: a BGSAVE of over two seconds
    try:
        backups.stream_snapshot(tmp_path / "slow.rdb", url=redis_server.url + "/0")
    finally:
        redis_client.config_set("rdb-key-save-delay", 0)

    assert rdb.verify_file(tmp_path / "slow.rdb").keys_by_db == {0: 2}


@pytest.fixture
def tls_redis(tmp_path, monkeypatch):
    """A throw-away redis-server that only speaks TLS, with a certificate from a test CA."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=tmp_path, check=True, capture_output=True)

    key = ("-newkey", "rsa:2048", "-nodes")
    openssl("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=test CA")
    openssl("req", "-new", *key, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    (tmp_path / "san.ext").write_text("subjectAltName=DNS:localhost\n")
    openssl(
        *("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial"),
        *("-out", "server.pem", "-days", "1", "-extfile", "san.ext"),
    )
    port, password = free_port(), "tls-test-password"
    args = ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1"]
    args += ["--tls-cert-file", "server.pem", "--tls-key-file", "server.key", "--tls-ca-cert-file", "ca.pem"]
    args += ["--tls-auth-clients", "no", "--requirepass", password, "--save", "", "--dir", str(tmp_path)]
    process = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(
        host="localhost", port=port, password=password, ssl=True, ssl_ca_certs=str(tmp_path / "ca.pem")
    )
    try:
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))  # the default context trusts the test CA
        yield client, f"rediss://:{password}@localhost:{port}/0"
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=10)


def test_it_streams_a_snapshot_over_tls(tls_redis, tmp_path):
    client, url = tls_redis
    client.set("aws:mask:i-0abc", "AWS_EC2_001")

    backups.stream_snapshot(tmp_path / "tls.rdb", url=url)

    assert rdb.verify_file(tmp_path / "tls.rdb").keys_by_db == {0: 1}


def test_the_replication_stream_refuses_a_wrong_password(redis_server, tmp_path):
    url = f"redis://:wrong@127.0.0.1:{redis_server.port}/0"
    with pytest.raises(backups.BackupError, match="AUTH refused"):
        backups.stream_snapshot(tmp_path / "x.rdb", url=url)


def test_a_backup_is_written_atomically_verified_and_recorded(redis_client, backup_dir):
    write_mappings(redis_client, {"i-0abc": "AWS_EC2_001", "10.0.0.1": "AWS_IP_001"}, ttl_ms=3_600_000)

    record = backups.run_backup()

    assert record.status == BackupRecord.Status.OK, record.error
    assert record.verified
    assert record.key_count == 4
    assert record.redis_version == redis_client.info("server")["redis_version"]
    path = Path(record.file)
    assert path.parent == backup_dir
    assert re.fullmatch(rf"redis-\d{{8}}T\d{{6}}Z-{record.pk}\.rdb", path.name)
    assert record.size_bytes == path.stat().st_size
    assert len(record.sha256) == 64
    assert record.duration_ms is not None
    assert [p.name for p in backup_dir.iterdir()] == [path.name]  # no temporary file left behind
    assert path.stat().st_mode & 0o077 == 0


def test_the_volume_source_runs_bgsave_and_copies_the_servers_file(settings, redis_server, redis_client):
    settings.BACKUP_SOURCE = "volume"
    settings.BACKUP_VOLUME_RDB = str(redis_server.data_dir / "dump.rdb")
    write_mappings(redis_client, {"i-0abc": "AWS_EC2_001"}, ttl_ms=3_600_000)

    record = backups.run_backup()

    assert record.status == BackupRecord.Status.OK, record.error
    assert record.key_count == 2


def test_a_backup_that_fails_verification_is_marked_failed_and_raises_an_alert(settings, redis_client):
    settings.BACKUP_REDIS_SERVER = "no-such-redis-server"
    redis_client.set("aws:mask:i-0abc", "AWS_EC2_001")
    alerts = redis_client.pubsub()
    alerts.subscribe("aws-masker:events:alerts")
    alerts.get_message(timeout=1)

    record = backups.run_backup()

    assert record.status == BackupRecord.Status.FAILED
    assert not record.verified
    assert "no-such-redis-server" in record.error
    message = alerts.get_message(timeout=5)
    event = json.loads(message["data"])
    assert event["event_type"] == "alert"
    assert event["alert"] == "backup_failed"
    assert event["backup_id"] == record.pk
    assert "i-0abc" not in message["data"].decode()
    assert backups.backup_warning().startswith("the last Redis backup failed")
    alerts.close()


@pytest.mark.parametrize("damage", ["flipped byte", "truncated"])
def test_a_snapshot_damaged_on_its_way_is_marked_failed_and_alerts(settings, redis_server, redis_client, damage):
    write_mappings(redis_client, {"i-0abc": "AWS_EC2_001"}, ttl_ms=60_000)
    good = Path(backups.run_backup().file).read_bytes()
    damaged = bytearray(good)
    if damage == "flipped byte":
        damaged[len(damaged) // 2] ^= 0x04
    else:
        del damaged[-30:]
    # A volume (a disk, a network mount) that hands back bytes other than Redis wrote.
    settings.BACKUP_SOURCE = "volume"
    settings.BACKUP_VOLUME_RDB = str(redis_server.data_dir / "damaged.rdb")
    Path(settings.BACKUP_VOLUME_RDB).write_bytes(bytes(damaged))
    alerts = redis_client.pubsub()
    alerts.subscribe("aws-masker:events:alerts")
    alerts.get_message(timeout=1)

    record = backups.run_backup()

    assert record.status == BackupRecord.Status.FAILED and not record.verified
    assert record.error.startswith("RdbError")
    assert json.loads(alerts.get_message(timeout=5)["data"])["backup_id"] == record.pk
    alerts.close()


def test_a_backup_of_an_unreachable_redis_is_recorded_as_failed(settings, redis_server, backup_dir):
    settings.MASKING_REDIS_URL = f"redis://:{redis_server.password}@127.0.0.1:1/0"

    record = backups.run_backup()

    assert record.status == BackupRecord.Status.FAILED
    assert record.error.startswith("ConnectionRefusedError")
    assert list(backup_dir.iterdir()) == []


def test_an_unwritable_backup_directory_fails_the_backup_instead_of_leaving_it_running(settings, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    settings.BACKUP_DIR = blocker / "backups"

    record = backups.run_backup()

    assert record.status == BackupRecord.Status.FAILED
    assert record.error.startswith(("FileExistsError", "NotADirectoryError"))


def test_backup_redis_prints_the_backup_path_alone_on_its_last_line(redis_client):
    redis_client.set("aws:mask:i-0abc", "AWS_EC2_001")
    out = StringIO()

    call_command("backup_redis", stdout=out)

    last_line = out.getvalue().splitlines()[-1]
    assert last_line == BackupRecord.objects.get().file
    assert Path(last_line).is_file()


def test_the_beat_task_backs_up_prunes_and_leaves_a_task_run(redis_client):
    redis_client.set("aws:mask:i-0abc", "AWS_EC2_001")

    result = backup_redis()

    record = BackupRecord.objects.get()
    assert result == {"backup_id": record.pk, "bytes": record.size_bytes, "keys": 1, "pruned": 0}
    run = TaskRun.objects.get(task="monitoring.tasks.backup_redis")
    assert run.status == TaskRun.Status.SUCCESS


def test_the_schedule_backs_up_every_six_hours_and_expires_runs_before_the_next(settings):
    (entry,) = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "monitoring.tasks.backup_redis"]
    assert entry["schedule"] == 6 * 3600
    assert 0 < entry["options"]["expires"] < entry["schedule"]


def make_backup(backup_dir: Path, age: timedelta, status=BackupRecord.Status.OK) -> BackupRecord:
    backup_dir.mkdir(exist_ok=True)
    record = BackupRecord.objects.create(status=status)
    path = backup_dir / f"redis-{record.pk}.rdb"
    path.write_bytes(b"REDIS0010")
    BackupRecord.objects.filter(pk=record.pk).update(file=str(path), created_at=timezone.now() - age)
    record.refresh_from_db()
    return record


def test_pruning_keeps_the_last_good_backups_and_recent_ones_and_deletes_files_with_rows(settings, backup_dir):
    settings.BACKUP_KEEP_LAST, settings.BACKUP_KEEP_DAYS = 2, 3
    old_good = [make_backup(backup_dir, timedelta(days=d)) for d in (10, 11, 12)]
    old_failed = make_backup(backup_dir, timedelta(days=9), status=BackupRecord.Status.FAILED)
    recent_failed = make_backup(backup_dir, timedelta(days=1), status=BackupRecord.Status.FAILED)

    assert backups.prune_backups() == 2

    kept = set(BackupRecord.objects.values_list("pk", flat=True))
    assert kept == {old_good[0].pk, old_good[1].pk, recent_failed.pk}
    kept_files = {Path(record.file).name for record in BackupRecord.objects.all()}
    assert {p.name for p in backup_dir.iterdir()} == kept_files
    assert not Path(old_failed.file).exists()


def test_pruning_clears_runs_abandoned_by_a_dead_worker(settings, backup_dir):
    settings.BACKUP_TIMEOUT_SECONDS = 60
    abandoned = make_backup(backup_dir, timedelta(minutes=5), status=BackupRecord.Status.RUNNING)
    in_progress = make_backup(backup_dir, timedelta(seconds=10), status=BackupRecord.Status.RUNNING)
    old_partial = backup_dir / ".redis-20261125T000000Z-1.rdb.partial"
    old_partial.write_bytes(b"REDIS")
    os.utime(old_partial, (time.time() - 600, time.time() - 600))
    fresh_partial = backup_dir / ".redis-20261125T000000Z-2.rdb.partial"
    fresh_partial.write_bytes(b"REDIS")

    backups.prune_backups()

    abandoned.refresh_from_db()
    in_progress.refresh_from_db()
    assert abandoned.status == BackupRecord.Status.FAILED and abandoned.error.startswith("abandoned")
    assert in_progress.status == BackupRecord.Status.RUNNING
    assert not old_partial.exists() and fresh_partial.exists()


def test_the_dashboard_warns_when_backups_are_missing_or_stale(settings, backup_dir):
    assert backups.backup_warning() == "no Redis backup has been taken yet"
    make_backup(backup_dir, timedelta(hours=13))
    assert backups.backup_warning().startswith("no Redis backup since")
    make_backup(backup_dir, timedelta(hours=1))
    assert backups.backup_warning() is None


# --- restore ---------------------------------------------------------------------------------


def test_mappings_survive_a_flush_through_backup_and_restore_with_their_ttls(redis_client):
    originals = {"i-0123456789abcdef0": "AWS_EC2_001", "arn:aws:iam::123456789012:role/Admin": "AWS_IAM_ROLE_001"}
    write_mappings(redis_client, originals, ttl_ms=3_600_000)
    write_mappings(redis_client, {"10.0.0.7": "AWS_IP_001"}, ttl_ms=7_200_000, prefix="aws:t:acme:")
    redis_client.set("aws:seq:EC2", 1)
    redis_client.set("aws:seq:IP", 1)
    expiry_before = {key: redis_client.pexpiretime(key) for key in redis_client.scan_iter("aws:*")}
    path = call_backup()
    redis_client.flushdb()

    out = StringIO()
    call_command("restore_mappings", path, stdout=out)

    assert "restored: 6" in out.getvalue()
    assert "counters raised: 2" in out.getvalue()
    for original, token in originals.items():
        assert redis_client.get(f"aws:unmask:{token}").decode() == original
        assert redis_client.get(f"aws:mask:{original}").decode() == token
    assert redis_client.get("aws:t:acme:unmask:AWS_IP_001") == b"10.0.0.7"
    assert redis_client.get("aws:seq:EC2") == b"1"
    # Same absolute expiry, so the remaining TTL is what it would have been without the flush.
    for key, before in expiry_before.items():
        after = redis_client.pexpiretime(key)
        if before == -1:
            assert after == -1, key
        else:
            assert abs(before - after) < 1000, key
    assert 3_500_000 < redis_client.pttl("aws:mask:i-0123456789abcdef0") <= 3_600_000


def test_a_masked_payload_unmasks_again_after_backup_flush_and_restore(redis_client):
    payload = (
        "Instance i-0123456789abcdef0 in account 123456789012 cannot reach s3://prod-billing-exports "
        "from 10.20.30.40 (role arn:aws:iam::123456789012:role/BillingExporter)."
    )
    masked = mask_texts([payload], source="cli")
    assert masked.texts[0] != payload and masked.new_mappings >= 2
    sequences = {key: redis_client.get(key) for key in redis_client.scan_iter("aws:seq:*")}
    path = call_backup()
    redis_client.flushdb()
    assert unmask_texts(masked.texts, source="cli").unresolved  # the flush really lost them

    call_command("restore_mappings", path, stdout=StringIO())

    restored = unmask_texts(masked.texts, source="cli")
    assert restored.texts == [payload]
    assert restored.unresolved == []
    assert mask_texts([payload], source="cli").texts == masked.texts  # same tokens, no new numbers
    assert {key: redis_client.get(key) for key in redis_client.scan_iter("aws:seq:*")} == sequences


def test_restore_takes_a_backup_id_as_well_as_a_path(redis_client):
    write_mappings(redis_client, {"i-0abc": "AWS_EC2_001"}, ttl_ms=60_000)
    call_backup()
    redis_client.flushdb()

    out = StringIO()
    call_command("restore_mappings", str(BackupRecord.objects.get().pk), stdout=out)

    assert "restored: 2" in out.getvalue()


def test_restore_keeps_newer_live_keys_and_never_lowers_a_counter(redis_client):
    write_mappings(redis_client, {"i-0abc": "AWS_EC2_001", "i-0def": "AWS_EC2_002"}, ttl_ms=60_000)
    redis_client.set("aws:seq:EC2", 2)
    redis_client.set("aws:seq:S3", 9)
    path = call_backup()
    redis_client.flushdb()
    # After the flush, the gateway went on: a new token for i-0abc, and counters moved on.
    write_mappings(redis_client, {"i-0abc": "AWS_EC2_005"}, ttl_ms=60_000)
    redis_client.set("aws:seq:EC2", 5)
    redis_client.set("aws:seq:S3", 1)

    out = StringIO()
    call_command("restore_mappings", path, stdout=out)

    report = dict(line.split(": ") for line in out.getvalue().splitlines())
    assert report["restored"] == "3"
    assert report["present"] == "1"
    assert report["conflicts"] == "1"
    assert report["counters raised"] == "1"
    assert report["counters kept"] == "1"
    assert redis_client.get("aws:mask:i-0abc") == b"AWS_EC2_005"
    assert redis_client.get("aws:unmask:AWS_EC2_001") == b"i-0abc"  # old conversations still unmask
    assert redis_client.get("aws:seq:EC2") == b"5"
    assert redis_client.get("aws:seq:S3") == b"9"


def test_restore_leaves_out_mappings_that_expired_since_the_backup(redis_client):
    write_mappings(redis_client, {"i-0abc": "AWS_EC2_001"}, ttl_ms=300)
    path = call_backup()
    redis_client.flushdb()
    time.sleep(0.4)

    out = StringIO()
    call_command("restore_mappings", path, stdout=out)

    assert "expired: 2" in out.getvalue()
    assert redis_client.dbsize() == 0


def test_restore_reports_counts_never_values(redis_client):
    write_mappings(redis_client, {"secret-bucket-name": "AWS_S3_001"}, ttl_ms=60_000)
    path = call_backup()

    out = StringIO()
    call_command("restore_mappings", path, stdout=out)

    assert "secret" not in out.getvalue()
    assert "AWS_S3_001" not in out.getvalue()


@pytest.mark.parametrize("damage", ["flipped byte", "truncated"])
def test_a_corrupted_backup_is_detected_and_never_restored(redis_client, damage):
    write_mappings(redis_client, {"i-0abc": "AWS_EC2_001"}, ttl_ms=60_000)
    path = Path(call_backup())
    redis_client.flushdb()
    data = bytearray(path.read_bytes())
    if damage == "flipped byte":
        data[len(data) // 2] ^= 0x40
    else:
        del data[-20:]
    path.write_bytes(bytes(data))

    with pytest.raises(CommandError, match="not restored"):
        call_command("restore_mappings", str(path), stdout=StringIO())

    assert redis_client.dbsize() == 0


def call_backup() -> str:
    out = StringIO()
    call_command("backup_redis", stdout=out)
    return out.getvalue().splitlines()[-1]
