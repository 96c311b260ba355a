"""A real redis-server owned by the test session.

Loaded as a pytest plugin (`-p tests.redis_server`) so the server is up and the environment
points at it *before* pytest-django imports the settings. The server gets a free port, a
password and its own data directory, and is shut down when the session ends. Tests never
touch the shared server on 6379.
"""

import atexit
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from tests.ports import free_port  # also imported from here by tests


class RedisServer:
    """A redis-server process that a test can stop and start again on the same port."""

    def __init__(self, data_dir: Path, port: int | None = None, password: str | None = None):
        self.data_dir = data_dir
        self.port = port or free_port()
        self.password = password or secrets.token_hex(12)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}"

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, db=db)

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if not binary:
            raise RuntimeError(
                "redis-server is not installed: run `make test` (it installs it) or apt-get install redis-server"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--requirepass",
                self.password,
                "--dir",
                str(self.data_dir),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dbfilename",
                "dump.rdb",
                "--logfile",
                str(self.data_dir / "redis.log"),
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


SESSION_DIR = Path(tempfile.mkdtemp(prefix="aws-masker-tests-"))
SERVER = RedisServer(SESSION_DIR / "redis")
SERVER.start()


def _cleanup() -> None:
    SERVER.stop()
    shutil.rmtree(SESSION_DIR, ignore_errors=True)


atexit.register(_cleanup)

# Point every part of the project at the session's server before the settings are imported.
for name in ("REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", "REDIS_DB", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
    os.environ.pop(name, None)
os.environ["REDIS_URL"] = SERVER.url + "/0"
os.environ["VAR_DIR"] = str(SESSION_DIR / "var")
os.environ["ENV_FILE"] = str(SESSION_DIR / "no-env-file")
os.environ.setdefault("SECRET_KEY", "test-secret-key")
os.environ.setdefault("ALLOWED_HOSTS", "localhost,127.0.0.1,testserver")
os.environ["DEBUG"] = "0"
(SESSION_DIR / "var").mkdir(exist_ok=True)


def pytest_unconfigure(config) -> None:
    _cleanup()
