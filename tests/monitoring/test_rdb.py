import shutil
import struct
import time
from pathlib import Path

import pytest
import redis

from monitoring import rdb


def snapshot(redis_server, dest: Path) -> Path:
    """A real RDB: BGSAVE on the test server, then copy its dump.rdb."""
    client = redis_server.client()
    saves = client.info("persistence")["rdb_saves"]
    client.bgsave()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        info = client.info("persistence")
        if info["rdb_saves"] > saves and not info["rdb_bgsave_in_progress"]:
            break
        time.sleep(0.02)
    shutil.copyfile(redis_server.data_dir / "dump.rdb", dest)
    return dest


@pytest.fixture
def every_type(redis_server):
    fill_every_type(redis_server)
    yield
    redis_server.client().function_flush()  # FLUSHALL leaves functions behind


def fill_every_type(redis_server) -> None:
    db0, db4 = redis_server.client(0), redis_server.client(4)
    db0.set("aws:mask:i-0123456789abcdef0", "AWS_EC2_001", ex=3600)
    db0.set("aws:unmask:AWS_EC2_001", "i-0123456789abcdef0", ex=3600)
    db0.set("aws:seq:EC2", 1)
    db0.set("long", "x" * 20000)  # LZF-compressed
    db0.rpush("small-list", "a", "b")
    db0.rpush("big-list", *range(1000))
    db0.sadd("ints", 1, 2, 3)
    db0.sadd("members", *[f"member-{i}" for i in range(300)])
    db0.zadd("small-zset", {"a": 1.5})
    db0.zadd("big-zset", {f"m{i}": i / 3 for i in range(300)})
    db0.hset("small-hash", mapping={"a": 1})
    db0.hset("big-hash", mapping={f"f{i}": "v" * 80 for i in range(300)})
    db0.xadd("stream", {"a": 1})
    db0.xgroup_create("stream", "group", id="0")
    db0.xreadgroup("group", "consumer", {"stream": ">"})
    db0.pfadd("hll", "a", "b")
    db4.set("cache-entry", "v", ex=60)
    # A function library is saved as its own record (not a key).
    db0.function_load("#!lua name=backuptest\nredis.register_function('noop', function() return 1 end)", replace=True)


def test_crc64_matches_the_redis_reference_vector():
    # The check value from Redis's own crc64.c test.
    assert rdb.crc64(b"123456789") == 0xE9C6D914C4B8D9CA


def test_crc64_can_be_computed_in_pieces_of_any_size():
    data = bytes(range(256)) * 41
    whole = rdb.crc64(data)
    assert rdb.crc64(data[1003:], rdb.crc64(data[:1003])) == whole
    assert rdb.crc64(b"") == 0


def test_it_accepts_a_snapshot_written_by_redis_and_counts_keys_per_database(redis_server, tmp_path, every_type):
    path = snapshot(redis_server, tmp_path / "dump.rdb")

    summary = rdb.verify_file(path)

    assert summary.version >= 9
    assert summary.redis_version == redis_server.client().info("server")["redis_version"]
    assert summary.keys_by_db == {0: 14, 4: 1}
    assert summary.expires_by_db == {0: 2, 4: 1}
    assert summary.declared_by_db == summary.keys_by_db


def test_a_loaded_snapshot_holds_as_many_keys_as_the_file(redis_server, tmp_path, every_type):
    path = snapshot(redis_server, tmp_path / "dump.rdb")

    summary = rdb.prove_restorable(path)

    assert summary.keys_by_db[0] == 14


def test_keys_that_expired_after_the_snapshot_still_count_when_proving_it(redis_server, tmp_path):
    redis_server.client().set("aws:mask:short-lived", "AWS_EC2_001", px=200)
    path = snapshot(redis_server, tmp_path / "dump.rdb")
    time.sleep(0.3)

    with rdb.scratch_server(path) as server:
        assert rdb.loaded_key_counts(server) == {0: 1}
        assert server.client().get("aws:mask:short-lived") is None  # but reads treat it as gone


def test_the_scratch_server_is_gone_afterwards(redis_server, tmp_path):
    redis_server.client().set("k", "v")
    path = snapshot(redis_server, tmp_path / "dump.rdb")
    with rdb.scratch_server(path) as server:
        client = server.client()
        assert client.get("k") == b"v"
    with pytest.raises(redis.ConnectionError):
        client.ping()
    assert path.read_bytes()[:5] == b"REDIS"


def test_a_flipped_byte_fails_the_checksum(redis_server, tmp_path):
    redis_server.client().set("aws:mask:10.0.0.1", "AWS_IP_001")
    path = snapshot(redis_server, tmp_path / "dump.rdb")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))

    with pytest.raises(rdb.RdbError, match="checksum mismatch"):
        rdb.prove_restorable(path)


@pytest.mark.parametrize("cut", [1, 9, 100])
def test_a_truncated_file_is_rejected(redis_server, tmp_path, cut):
    redis_server.client().set("aws:mask:10.0.0.1", "AWS_IP_001")
    path = snapshot(redis_server, tmp_path / "dump.rdb")
    path.write_bytes(path.read_bytes()[:-cut])

    with pytest.raises(rdb.RdbError):
        rdb.prove_restorable(path)


def test_a_file_without_the_redis_header_is_rejected(tmp_path):
    path = tmp_path / "notes.rdb"
    path.write_bytes(b"hello, this is not a snapshot at all")

    with pytest.raises(rdb.RdbError, match="not an RDB file"):
        rdb.verify_file(path)


def test_a_file_saved_without_a_checksum_is_refused(redis_server, tmp_path):
    redis_server.client().set("k", "v")
    path = snapshot(redis_server, tmp_path / "dump.rdb")
    path.write_bytes(path.read_bytes()[:-8] + b"\0" * 8)

    with pytest.raises(rdb.RdbError, match="rdbchecksum"):
        rdb.verify_file(path)


def test_a_damaged_record_with_a_recomputed_checksum_is_still_rejected(redis_server, tmp_path):
    redis_server.client().set("aws:mask:10.0.0.1", "AWS_IP_001")
    path = snapshot(redis_server, tmp_path / "dump.rdb")
    body = path.read_bytes()[:-8]
    # Make the key's length claim more bytes than the file holds, then re-sign the file.
    at = body.index(b"aws:mask:10.0.0.1") - 1
    body = body[:at] + bytes([0x3F]) + body[at + 1 :]
    path.write_bytes(body + struct.pack("<Q", rdb.crc64(body)))

    with pytest.raises(rdb.RdbError):
        rdb.prove_restorable(path)


def test_errors_never_quote_key_names(redis_server, tmp_path):
    redis_server.client().set("aws:mask:secret-bucket-name", "AWS_S3_001")
    path = snapshot(redis_server, tmp_path / "dump.rdb")
    body = path.read_bytes()[:-8]
    at = body.index(b"aws:mask:secret-bucket-name") - 1
    body = body[:at] + bytes([0x3F]) + body[at + 1 :]
    path.write_bytes(body + struct.pack("<Q", rdb.crc64(body)))

    with pytest.raises(rdb.RdbError) as excinfo:
        rdb.prove_restorable(path)
    assert "secret" not in str(excinfo.value)
