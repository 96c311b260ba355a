"""Real processes for tests: the gateway (config/server.py: uvicorn), a Celery worker.

They inherit the test session's environment (its redis-server, its SQLite test database file),
so what a test writes through the ORM in a `transactional_db` test is visible to them."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from django.conf import settings

from tests.redis_server import free_port

ROOT = Path(__file__).resolve().parent.parent


def process_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["DATABASE_URL"] = f"sqlite:///{settings.DATABASES['default']['TEST']['NAME']}"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@contextmanager
def running(args: list[str], env: dict[str, str], ready: callable, log: Path, timeout: float = 30) -> Iterator:
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while not ready():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{args[2:4]} did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.05)
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


LISTENING, ESTABLISHED = "0A", "01"  # TCP states as /proc/net/tcp writes them


def socket_inodes(port: int, state: str) -> list[str]:
    """The inodes of the sockets on local `port` in `state` (from /proc/net/tcp and tcp6)."""
    inodes = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == state and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.append(fields[9])
    return inodes


def listening_sockets(port: int) -> int:
    """How many sockets listen on `port` (a gateway worker binds its own once it is ready to serve)."""
    return len(socket_inodes(port, LISTENING))


@contextmanager
def gateway_process(tmp_path: Path, workers: int = 1, **env: str) -> Iterator[str]:
    """Run the gateway as in production (`python -m config.server`) until every worker serves;
    yields its base URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            answered = httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False
        return answered and listening_sockets(port) >= workers

    args = [sys.executable, "-m", "config.server", "--host", "127.0.0.1", "--port", str(port)]
    args += ["--workers", str(workers), "--log-level", "warning"]
    with running(args, process_env(**env), ready, tmp_path / f"gateway-{port}.log"):
        yield url


@contextmanager
def celery_worker(tmp_path: Path) -> Iterator[subprocess.Popen]:
    """A real Celery worker on the test Redis broker."""
    log = tmp_path / "worker.log"

    def ready() -> bool:
        return log.exists() and b"ready." in log.read_bytes()

    args = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "--pool",
        "solo",
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    with running(args, process_env(), ready, log, timeout=60) as proc:
        yield proc
