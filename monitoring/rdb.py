"""Reading and proving Redis RDB files: header, trailing CRC-64, a structural walk that counts
keys per database, and a scratch `redis-server` that loads the file for real.

Nothing here ever returns or logs a key name or value: only counts, versions and offsets.
"""

import os
import re
import secrets
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis

# CRC-64/Jones as Redis computes it: reflected, polynomial 0xad93d23594c935a9, init 0, no final xor.
_POLY_REFLECTED = 0x95AC9329AC4BC9B5


def _crc_tables() -> list[list[int]]:
    base = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY_REFLECTED if crc & 1 else crc >> 1
        base.append(crc)
    tables = [base]
    for _ in range(7):
        prev = tables[-1]
        tables.append([base[prev[i] & 0xFF] ^ (prev[i] >> 8) for i in range(256)])
    return tables


_TABLES = _crc_tables()


def crc64(data: bytes, crc: int = 0) -> int:
    """Continue a CRC-64/Jones over `data` (slicing-by-8: about twice the byte loop's speed)."""
    t0, t1, t2, t3, t4, t5, t6, t7 = _TABLES
    whole = len(data) - len(data) % 8
    for (word,) in struct.iter_unpack("<Q", memoryview(data)[:whole]):
        x = crc ^ word
        crc = (
            t7[x & 0xFF]
            ^ t6[(x >> 8) & 0xFF]
            ^ t5[(x >> 16) & 0xFF]
            ^ t4[(x >> 24) & 0xFF]
            ^ t3[(x >> 32) & 0xFF]
            ^ t2[(x >> 40) & 0xFF]
            ^ t1[(x >> 48) & 0xFF]
            ^ t0[x >> 56]
        )
    for byte in data[whole:]:
        crc = t0[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


class RdbError(Exception):
    """The file is not a complete, intact RDB we can vouch for. Messages carry no key data."""


@dataclass
class RdbSummary:
    version: int
    redis_version: str = ""
    keys_by_db: dict[int, int] = field(default_factory=dict)
    expires_by_db: dict[int, int] = field(default_factory=dict)
    declared_by_db: dict[int, int] = field(default_factory=dict)  # RESIZEDB: the source's own count at fork

    @property
    def key_count(self) -> int:
        return sum(self.keys_by_db.values())


_HEADER = re.compile(rb"REDIS(\d{4})")
_CHUNK = 1 << 20


def read_version(path: Path) -> int:
    with open(path, "rb") as fh:
        match = _HEADER.fullmatch(fh.read(9))
    if not match:
        raise RdbError("not an RDB file (the header is not REDISnnnn)")
    return int(match.group(1))


def verify_checksum(path: Path) -> None:
    """The last 8 bytes are the little-endian CRC-64 of everything before them."""
    size = path.stat().st_size
    if read_version(path) < 5:
        raise RdbError("RDB versions before 5 carry no checksum")
    if size < 9 + 1 + 8:
        raise RdbError("file is truncated")
    crc, remaining = 0, size - 8
    with open(path, "rb") as fh:
        while remaining:
            chunk = fh.read(min(_CHUNK, remaining))
            if not chunk:
                raise RdbError("file is truncated")
            crc = crc64(chunk, crc)
            remaining -= len(chunk)
        (stored,) = struct.unpack("<Q", fh.read(8))
    if stored == 0:
        raise RdbError("the server wrote no checksum (rdbchecksum no); enable it to get verifiable backups")
    if stored != crc:
        raise RdbError("checksum mismatch: the file is corrupted")


def verify_file(path: Path) -> RdbSummary:
    """Header, checksum, then a walk of every record: raises RdbError on anything off."""
    verify_checksum(path)
    with open(path, "rb") as fh:
        return _Walker(fh, path.stat().st_size - 8).walk()


# --- the structural walk -------------------------------------------------------------------------
# Opcodes and value types from Redis's rdb.h (RDB versions up to 12).
_EOF, _SELECTDB, _EXPIRETIME, _EXPIRETIME_MS, _RESIZEDB, _AUX = 0xFF, 0xFE, 0xFD, 0xFC, 0xFB, 0xFA
_FREQ, _IDLE, _MODULE_AUX, _FUNCTION2, _SLOT_INFO = 0xF9, 0xF8, 0xF7, 0xF5, 0xF4
_STRING_LIKE = {0, 9, 10, 11, 12, 13, 16, 17, 20}  # one string (plain or a ziplist/listpack/intset blob)
_STREAMS = {15: 1, 19: 2, 21: 3}


class _Walker:
    def __init__(self, fh, end: int):
        self.fh = fh
        self.end = end
        self.pos = 0

    def read(self, n: int) -> bytes:
        if self.pos + n > self.end:
            raise RdbError(f"record runs past the end of the data at offset {self.pos}")
        data = self.fh.read(n)
        if len(data) != n:
            raise RdbError(f"file is truncated at offset {self.pos}")
        self.pos += n
        return data

    def skip(self, n: int) -> None:
        if self.pos + n > self.end:
            raise RdbError(f"record runs past the end of the data at offset {self.pos}")
        self.fh.seek(n, os.SEEK_CUR)
        self.pos += n

    def byte(self) -> int:
        return self.read(1)[0]

    def length(self) -> tuple[int, bool]:
        """A length, or (encoding, True) for the special string encodings."""
        first = self.byte()
        kind = first >> 6
        if kind == 0:
            return first & 0x3F, False
        if kind == 1:
            return ((first & 0x3F) << 8) | self.byte(), False
        if kind == 3:
            return first & 0x3F, True
        if first == 0x80:
            return struct.unpack(">I", self.read(4))[0], False
        if first == 0x81:
            return struct.unpack(">Q", self.read(8))[0], False
        raise RdbError(f"bad length encoding at offset {self.pos - 1}")

    def number(self) -> int:
        value, special = self.length()
        if special:
            raise RdbError(f"expected a length at offset {self.pos}")
        return value

    def string(self, keep: bool = False) -> bytes | None:
        value, special = self.length()
        if not special:
            return self.read(value) if keep else self.skip(value)
        if value in (0, 1, 2):
            raw = self.read(1 << value)
            return str(int.from_bytes(raw, "little", signed=True)).encode() if keep else None
        if value == 3:  # LZF: compressed length, uncompressed length, data
            compressed = self.number()
            self.number()
            if keep:
                raise RdbError("compressed aux field")
            return self.skip(compressed)
        raise RdbError(f"unknown string encoding at offset {self.pos}")

    def walk(self) -> RdbSummary:
        self.fh.seek(0)
        summary = RdbSummary(version=int(self.read(9)[5:]))
        db, expiring = 0, False
        while True:
            op = self.byte()
            if op == _EOF:
                if self.pos != self.end:
                    raise RdbError("data continues after the end marker")
                return summary
            if op == _SELECTDB:
                db = self.number()
            elif op == _RESIZEDB:
                summary.declared_by_db[db] = self.number()
                self.number()
            elif op == _AUX:
                name = self.string(keep=True)
                value = self.string(keep=name == b"redis-ver")  # other values may be LZF-compressed
                if name == b"redis-ver":
                    summary.redis_version = value.decode("ascii", "replace")[:32]
            elif op == _EXPIRETIME_MS:
                self.skip(8)
                expiring = True
            elif op == _EXPIRETIME:
                self.skip(4)
                expiring = True
            elif op == _FREQ:
                self.skip(1)
            elif op == _IDLE:
                self.number()
            elif op == _FUNCTION2:
                self.string()
            elif op == _MODULE_AUX:
                self.number()
                self.module_value()
            elif op == _SLOT_INFO:
                self.number(), self.number(), self.number()
            else:
                self.string()  # the key
                self.value(op)
                summary.keys_by_db[db] = summary.keys_by_db.get(db, 0) + 1
                if expiring:
                    summary.expires_by_db[db] = summary.expires_by_db.get(db, 0) + 1
                expiring = False

    def value(self, kind: int) -> None:
        if kind in _STRING_LIKE:
            self.string()
        elif kind in (1, 2):  # linked list, set
            for _ in range(self.number()):
                self.string()
        elif kind == 3:  # zset with scores as strings
            for _ in range(self.number()):
                self.string()
                size = self.byte()
                if size < 253:
                    self.skip(size)
        elif kind == 5:  # zset with binary double scores
            for _ in range(self.number()):
                self.string()
                self.skip(8)
        elif kind == 4:
            for _ in range(self.number() * 2):
                self.string()
        elif kind == 14:  # quicklist of ziplists
            for _ in range(self.number()):
                self.string()
        elif kind == 18:  # quicklist of listpacks: container format, then the node
            for _ in range(self.number()):
                self.number()
                self.string()
        elif kind in _STREAMS:
            self.stream(_STREAMS[kind])
        elif kind == 7:
            self.number()
            self.module_value()
        else:
            raise RdbError(f"value type {kind} is not supported by the verifier (offset {self.pos})")

    def module_value(self) -> None:
        """Module values (type 7) describe themselves as opcode/value pairs up to opcode 0."""
        while (op := self.number()) != 0:
            if op in (1, 2):
                self.number()
            elif op == 3:
                self.skip(4)
            elif op == 4:
                self.skip(8)
            elif op == 5:
                self.string()
            else:
                raise RdbError(f"bad module opcode at offset {self.pos}")

    def stream(self, version: int) -> None:
        for _ in range(self.number()):  # listpacks: master id, then the listpack
            self.string()
            self.string()
        self.number(), self.number(), self.number()  # length, last id
        if version >= 2:
            for _ in range(5):  # first id, max deleted id, entries added
                self.number()
        for _ in range(self.number()):  # consumer groups
            self.string()
            self.number(), self.number()
            if version >= 2:
                self.number()
            for _ in range(self.number()):  # group PEL: id, delivery time, delivery count
                self.skip(16 + 8)
                self.number()
            for _ in range(self.number()):  # consumers
                self.string()
                self.skip(8 if version < 3 else 16)
                self.skip(16 * self.number())


# --- a scratch redis-server ----------------------------------------------------------------------
_VERSION_ERROR = re.compile(r"Can't handle RDB format version \d+")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ScratchRedis:
    port: int
    password: str

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, db=db, socket_timeout=30)


@contextmanager
def scratch_server(rdb: Path, binary: str = "redis-server", databases: int = 16, timeout: float = 300) -> Iterator:
    """Load `rdb` into a private redis-server (free port, own temp dir, random password).

    It runs as a replica of a port nobody listens on: a replica keeps keys whose TTL elapsed
    since the snapshot (a primary drops them while loading), so counts match the file exactly,
    while reads still treat those keys as gone. The file is linked, never written.
    """
    path = shutil.which(binary)
    if not path:
        raise RdbError(f"{binary} is not installed; it is needed to prove backups restore")
    workdir = Path(tempfile.mkdtemp(prefix="aws-masker-restore-"))
    port, password = _free_port(), secrets.token_hex(16)
    (workdir / "dump.rdb").symlink_to(rdb.resolve())
    args = [path, "--port", str(port), "--bind", "127.0.0.1", "--requirepass", password, "--dir", str(workdir)]
    args += ["--dbfilename", "dump.rdb", "--save", "", "--appendonly", "no", "--databases", str(databases)]
    args += ["--replicaof", "127.0.0.1", str(_free_port()), "--logfile", str(workdir / "redis.log")]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = ScratchRedis(port=port, password=password)
    client = server.client()
    try:
        _wait_loaded(process, client, workdir / "redis.log", timeout)
        yield server
    finally:
        client.close()
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_loaded(process: subprocess.Popen, client: redis.Redis, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            # The log of a failed load may quote key names (redis-check-rdb): surface only a
            # version mismatch, which is safe and actionable.
            text = log.read_text(errors="replace") if log.exists() else ""
            match = _VERSION_ERROR.search(text)
            detail = f": {match.group(0)} (the local redis-server is older than the source)" if match else ""
            raise RdbError(f"scratch redis-server refused the file{detail}")
        try:
            if client.info("persistence").get("loading") == 0:
                return
        except (redis.ConnectionError, redis.TimeoutError):
            pass
        time.sleep(0.05)
    raise RdbError("scratch redis-server did not finish loading in time")


def loaded_key_counts(server: ScratchRedis) -> dict[int, int]:
    """Keys per database as the scratch server holds them (INFO keyspace: db0:keys=3,...)."""
    with server.client() as client:
        return {int(name[2:]): stats["keys"] for name, stats in client.info("keyspace").items()}


def prove_restorable(path: Path, binary: str = "redis-server", timeout: float = 300) -> RdbSummary:
    """Everything a backup must pass: checksum, walk, and a real load whose key counts match
    both the walk and what the source declared when it forked."""
    summary = verify_file(path)
    for db, declared in summary.declared_by_db.items():
        if declared != summary.keys_by_db.get(db, 0):
            raise RdbError(
                f"db{db}: the source declared {declared} keys, the file holds {summary.keys_by_db.get(db, 0)}"
            )
    databases = max([16, *(db + 1 for db in summary.keys_by_db)])
    with scratch_server(path, binary=binary, databases=databases, timeout=timeout) as server:
        loaded = loaded_key_counts(server)
    for db in set(loaded) | set(summary.keys_by_db):
        if loaded.get(db, 0) != summary.keys_by_db.get(db, 0):
            raise RdbError(
                f"db{db}: the file holds {summary.keys_by_db.get(db, 0)} keys, redis loaded {loaded.get(db, 0)}"
            )
    return summary
