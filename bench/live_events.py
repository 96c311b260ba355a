"""Live events under load: N websocket viewers while events are published at a fixed rate.

Starts its own redis-server (free port, temporary directory) and one gateway process (uvicorn,
the real ASGI app), connects the viewers with a staff session, and publishes from a separate
process, as a Celery worker or another gateway host would. Reports events lost per viewer, the
gateway's RSS before and after each round (flat memory = no growth from round to round) and
publish-to-browser latency, against a plain redis-py subscriber in this process as the baseline.

    .venv/bin/python bench/live_events.py [--viewers 20] [--rate 500] [--seconds 10] [--rounds 2]
"""

import argparse
import asyncio
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEADLINE_SECONDS = 300  # the whole run, whatever happens


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, httpx.HTTPError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start")


def start_redis(workdir: Path, port: int, password: str) -> subprocess.Popen:
    binary = shutil.which("redis-server") or sys.exit("redis-server is not installed")
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--requirepass", password, "--save", ""]
    args += ["--appendonly", "no", "--dir", str(workdir)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import redis

    wait_for(lambda: redis.Redis(port=port, password=password).ping(), "redis-server")
    return proc


def prepare_django(env: dict[str, str]) -> str:
    """Migrate the temporary database, create a staff user, return its session cookie."""
    os.environ.update(env)
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench", password=secrets.token_hex(8), is_staff=True)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def publish(redis_url: str, rate: int, seconds: float, round_no: int) -> None:
    """Publisher process: `rate` events/s for `seconds`, paced in 10 ms ticks."""
    import redis

    client = redis.Redis.from_url(redis_url)
    total, tick = int(rate * seconds), 0.01
    per_tick = rate * tick
    started, sent = time.monotonic(), 0
    while sent < total:
        due = min(total, int((time.monotonic() - started) / tick * per_tick) + int(per_tick))
        pipe = client.pipeline(transaction=False)
        for number in range(sent, due):
            pipe.publish("aws-masker:events:masking", json.dumps(bench_event(round_no, number)))
        pipe.execute()
        sent = due
        time.sleep(tick)


def bench_event(round_no: int, number: int) -> dict:
    return {
        "event_id": f"{round_no}-{number}",
        "event_type": "masking",
        "timestamp": datetime.now(UTC).isoformat(),
        "request_id": f"bench-{number}",
        "tenant": "default",
        "source": "bench",
        "counts_by_kind": {"ec2_instance": 3, "s3_bucket": 1, "iam_role": 2},
        "total": 6,
        "new_mappings": 1,
        "unresolved": 0,
        "duration_ms": 0.42,
        "bytes": 2048,
    }


class Viewer:
    def __init__(self):
        self.ids: set[str] = set()
        self.latencies: list[float] = []
        self.frames = 0
        self.dropped = 0

    def take(self, events: list[dict]) -> None:
        now = time.time()
        for event in events:
            self.ids.add(event["event_id"])
            self.latencies.append(now - datetime.fromisoformat(event["timestamp"]).timestamp())


async def watch(ws_url: str, origin: str, cookie: str, viewer: Viewer, ready: asyncio.Event, stop: asyncio.Event):
    from websockets.asyncio.client import connect

    async with connect(ws_url, origin=origin, additional_headers={"Cookie": cookie}, max_size=None) as socket:
        while not stop.is_set():
            try:
                frame = json.loads(await asyncio.wait_for(socket.recv(), 0.5))
            except TimeoutError:
                continue
            if frame["type"] == "state" and frame["state"] == "live":
                ready.set()
            elif frame["type"] == "events":
                viewer.frames += 1
                viewer.dropped += frame["dropped"]
                viewer.take(frame["events"])


async def baseline(redis_url: str, viewer: Viewer, ready: asyncio.Event, stop: asyncio.Event):
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    async with client.pubsub() as pubsub:
        await pubsub.psubscribe("aws-masker:events:*")
        ready.set()
        while not stop.is_set():
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
            if message:
                viewer.take([json.loads(message["data"])])
    await client.aclose()


def percentile(values: list[float], pct: float) -> float:
    return statistics.quantiles(values, n=100)[pct - 1] * 1000 if len(values) > 1 else float("nan")


async def run_rounds(args, base_url: str, redis_url: str, cookie: str, gateway_pid: int) -> list[str]:
    ws_url, lines = base_url.replace("http://", "ws://") + "/ws/events/", []
    stop = asyncio.Event()
    viewers = [Viewer() for _ in range(args.viewers)]
    direct = Viewer()
    readies = [asyncio.Event() for _ in range(args.viewers + 1)]
    tasks = [
        asyncio.create_task(watch(ws_url, base_url, cookie, v, r, stop)) for v, r in zip(viewers, readies, strict=False)
    ]
    tasks.append(asyncio.create_task(baseline(redis_url, direct, readies[-1], stop)))
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 30)
    lines.append(f"gateway RSS with {args.viewers} viewers connected, before any event: {rss_mib(gateway_pid):.1f} MiB")
    expected = int(args.rate * args.seconds)
    for round_no in range(1, args.rounds + 1):
        for v in [*viewers, direct]:
            v.ids.clear()
            v.latencies.clear()
        cpu_before, rss_before = cpu_seconds(gateway_pid), rss_mib(gateway_pid)
        publisher = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--publish", redis_url, str(args.rate), str(args.seconds), str(round_no)
        )
        await asyncio.wait_for(publisher.wait(), args.seconds * 3 + 10)

        def received(v: Viewer, prefix: str = f"{round_no}-") -> int:
            return sum(1 for event_id in v.ids if event_id.startswith(prefix))

        deadline = time.monotonic() + 10  # let the tail arrive
        while time.monotonic() < deadline and any(received(v) < expected for v in [*viewers, direct]):
            await asyncio.sleep(0.05)
        lost = [expected - received(v) for v in viewers]
        latencies = [x for v in viewers for x in v.latencies]
        lines += [
            f"round {round_no}: {expected} events at {args.rate}/s for {args.seconds:g} s to {args.viewers} viewers",
            f"  lost: total {sum(lost)}, worst viewer {max(lost)};"
            f" server-reported drops {sum(v.dropped for v in viewers)};"
            f" baseline subscriber lost {expected - received(direct)}",
            f"  latency publish->viewer p50 {percentile(latencies, 50):.1f} ms, p99 {percentile(latencies, 99):.1f} ms"
            f" (baseline redis-py subscriber p50 {percentile(direct.latencies, 50):.1f} ms,"
            f" p99 {percentile(direct.latencies, 99):.1f} ms)",
            f"  frames per viewer {statistics.mean(v.frames for v in viewers):.0f} (events are batched under load)",
            f"  gateway RSS {rss_before:.1f} -> {rss_mib(gateway_pid):.1f} MiB;"
            f" CPU {cpu_seconds(gateway_pid) - cpu_before:.2f} s for the round",
        ]
        for v in viewers:
            v.frames = 0
    stop.set()
    await asyncio.gather(*tasks)
    await asyncio.sleep(1)
    lines.append(f"gateway RSS after the viewers left: {rss_mib(gateway_pid):.1f} MiB")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--viewers", type=int, default=20)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-live-"))
    redis_port, password, web_port = free_port(), secrets.token_hex(12), free_port()
    redis_url = f"redis://:{password}@127.0.0.1:{redis_port}/0"
    env = {
        "REDIS_URL": redis_url,
        "VAR_DIR": str(workdir),
        "ENV_FILE": str(workdir / "none.env"),
        "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
        "SECRET_KEY": secrets.token_hex(32),
        "ALLOWED_HOSTS": "127.0.0.1",
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    procs: list[subprocess.Popen] = []
    try:
        procs.append(start_redis(workdir, redis_port, password))
        cookie = prepare_django(env)
        base_url = f"http://127.0.0.1:{web_port}"
        server = [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1"]
        server += ["--port", str(web_port), "--log-level", "warning"]
        gateway = subprocess.Popen(server, cwd=ROOT, env={**os.environ, **env})
        procs.append(gateway)
        wait_for(lambda: httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200, "gateway")
        print(f"gateway RSS at start: {rss_mib(gateway.pid):.1f} MiB")
        coroutine = run_rounds(args, base_url, redis_url, cookie, gateway.pid)
        for line in asyncio.run(asyncio.wait_for(coroutine, DEADLINE_SECONDS)):
            print(line)
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--publish":
        publish(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]))
    else:
        main()
