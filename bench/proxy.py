"""What the masking proxy costs: the same requests sent direct to a fake Claude API, through the
gateway with masking off (pass-through), and through the gateway with masking on.

    .venv/bin/python bench/proxy.py   (BENCH_SECONDS=4 per measurement, BENCH_SLICES=8, BENCH_WORKERS=2)

Starts its own redis-server, SQLite database, fake upstream (answers at once, echoing the prompt)
and two gateways as in production (`python -m config.server`, measured once every worker listens),
measures a 16 KB prompt with ~40 AWS identifiers at concurrency 1 and 50, non-streaming and
streaming, and prints throughput, p50/p99 latency, time to first event, and the ratios against the
goals of issue 5. "masked" sends the same prompt every time, as a conversation resends its earlier
turns (the gateway remembers scans and mappings: masking/cache.py); "masked-fresh" numbers each
prompt, so no text is ever seen twice (the identifiers are, as in real use), and shows what masking
costs without the remembered scans. Everything runs on this machine, so the load generator competes
with the servers for the same cores: read the ratios, not the absolute numbers."""

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
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
SECONDS = float(os.environ.get("BENCH_SECONDS", "4"))
WARMUP_SECONDS = 0.5
SLICES = int(os.environ.get("BENCH_SLICES", "8"))  # each target's SECONDS, cut in turns taken in rotation
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))  # docs/proxy.md: 2 workers on 2 cores
CONCURRENCY = (1, 50)
# Issue 5: masked keeps >= 75 % of pass-through throughput at <= 1.3x its p50; pass-through keeps >= 50 % of direct.
MIN_MASKED_THROUGHPUT, MAX_MASKED_P50, MIN_PASSTHROUGH_THROUGHPUT = 0.75, 1.3, 0.5

SETUP = """
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from masking.models import ApiClient, Tenant
tenant = Tenant.objects.get_or_create(slug="default", defaults={"name": "Default"})[0]
print(ApiClient.objects.create_with_key("bench", tenant)[1])
"""


# Where a "fresh" request differs from the one before: a request number in the prompt's first line.
MARKER = "#000000000000#"


def prompt() -> str:
    """~16 KB of `aws ec2 describe-instances` output and questions, with 40 distinct identifiers."""
    lines = [f"Request {MARKER}: here is the output of aws ec2 describe-instances for our fleet:"]
    for n in range(10):
        lines.append(
            f'{{"InstanceId": "i-{n:02d}1b2c3d4e5f6789a", "VpcId": "vpc-0{n:02d}e2d3c4b5a6978f",'
            f' "IamInstanceProfile": {{"Arn": "arn:aws:iam::12345678{n:04d}:role/Web{n}"}},'
            f' "KeyOwner": "AKIA{n:04d}IOSFODNN7EXA", "State": {{"Name": "running"}}, "InstanceType": "m5.large",'
            f' "LaunchTime": "2024-05-0{n % 9 + 1}T10:00:00Z", "Monitoring": {{"State": "disabled"}}}}'
        )
    filler = (
        "The load balancer health checks fail intermittently, latency rises during deploys and the"
        " autoscaling group sometimes replaces healthy hosts; ünïcödé ✓ 日本語 included. "
    )
    text = "\n".join(lines) + "\n"
    while len(text.encode()) < 16 * 1024:
        text += filler
    return text + "\nWhich of these instances can reach the internet, and why?"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def process(args: list[str], env: dict, ready_url: str | None = None, port: int | None = None, listeners: int = 1):
    """Run `args` until the block ends, once `ready_url` answers 200 (or `port` accepts) and
    `listeners` sockets listen on `port` (a gateway's workers each bind one: config/server.py)."""
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not _ready(ready_url, port) or (port and listening_sockets(port) < listeners):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{args[:4]} did not start: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.05)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _ready(url: str | None, port: int | None) -> bool:
    try:
        if url:
            return httpx.get(url, timeout=0.5).status_code == 200
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except (httpx.HTTPError, OSError):
        return False


def listening_sockets(port: int) -> int:
    """How many sockets listen on `port` (from /proc/net/tcp: a worker still starting has none)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            count += state == "0A" and int(local.rsplit(":", 1)[1], 16) == port
    return count


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and its children (uvicorn workers), from /proc: unaffected by other load."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += cpu_seconds(int(child))
    except (FileNotFoundError, ProcessLookupError):
        pass
    return total


def uvicorn(app: str, port: int) -> list[str]:
    """The fake upstream: one uvicorn process."""
    args = [sys.executable, "-m", "uvicorn", app, "--factory", "--host", "127.0.0.1", "--port", str(port)]
    return args + ["--log-level", "warning", "--no-access-log"]


def gateway(port: int) -> list[str]:
    """The gateway as it runs in production (config/server.py), with WORKERS workers."""
    args = [sys.executable, "-m", "config.server", "--host", "127.0.0.1", "--port", str(port)]
    return args + ["--workers", str(WORKERS), "--log-level", "warning", "--no-access-log"]


def environment(tmp: Path, redis_url: str, upstream_url: str) -> dict:
    env = dict(os.environ)
    for name in ("REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", "REDIS_DB", "DATABASE_URL"):
        env.pop(name, None)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        REDIS_URL=redis_url + "/0",
        DATABASE_URL=f"sqlite:///{tmp / 'bench.sqlite3'}",
        VAR_DIR=str(tmp),
        ENV_FILE=str(tmp / "none.env"),
        SECRET_KEY=secrets.token_hex(16),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DEBUG="0",
        LOG_LEVEL="WARNING",
        ANTHROPIC_UPSTREAM_URL=upstream_url,
        ANTHROPIC_API_KEY="sk-ant-bench",
        PYTHONPATH=str(ROOT),
    )
    return env


class Connection:
    """A bare keep-alive HTTP/1.1 client: the load generator must cost far less than what it measures
    (httpx's pool costs more CPU per request than the fake upstream does)."""

    sent = 0  # requests sent by all connections: numbers the fresh prompts

    def __init__(self, port: int, request: bytes, fresh: bool = False) -> None:
        self.port, self.request, self.fresh = port, request, fresh
        self.reader = self.writer = None

    def next_request(self) -> bytes:
        if not self.fresh:
            return self.request
        Connection.sent += 1
        return self.request.replace(MARKER.encode(), f"#{Connection.sent:012d}#".encode(), 1)

    async def post(self) -> tuple[float, float]:
        """(latency, time to the first body bytes) of one request, in seconds."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        request = self.next_request()
        started = time.perf_counter()
        self.writer.write(request)
        status = int((await self.reader.readline()).split()[1])
        length, chunked, close = 0, False, False
        while (line := await self.reader.readline()) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            length = int(value) if name == "content-length" else length
            chunked = chunked or (name == "transfer-encoding" and value == "chunked")
            close = close or (name == "connection" and value == "close")
        first = await self._body(length, chunked, started)
        if status != 200:
            raise RuntimeError(f"port {self.port} answered {status}")
        if close:
            self.writer.close()
            self.writer = None
        return time.perf_counter() - started, first

    async def _body(self, length: int, chunked: bool, started: float) -> float:
        first = 0.0
        if not chunked:
            await self.reader.readexactly(length)
            return time.perf_counter() - started
        while size := int((await self.reader.readline()).split(b";")[0], 16):
            await self.reader.readexactly(size + 2)
            first = first or time.perf_counter() - started
        await self.reader.readline()
        return first


def raw_request(url: str, headers: dict, body: dict) -> tuple[int, bytes]:
    parts = httpx.URL(url)
    payload = json.dumps(body).encode()
    lines = [f"POST {parts.raw_path.decode()} HTTP/1.1", f"Host: {parts.host}:{parts.port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += ["content-type: application/json", f"content-length: {len(payload)}", "", ""]
    return parts.port, "\r\n".join(lines).encode() + payload


class Load:
    """`concurrency` keep-alive connections sending the same request to one target, measured in
    slices: `bench()` interleaves the targets' slices, so that a machine whose speed drifts (a shared
    VM: a plain CPU loop's time varies by 2x here) weighs on every target alike."""

    def __init__(self, url: str, headers: dict, body: dict, concurrency: int, server_pid: int, fresh: bool):
        port, request = raw_request(url, headers, body)
        self.connections = [Connection(port, request, fresh) for _ in range(concurrency)]
        self.server_pid = server_pid
        self.results: list[tuple[float, float]] = []
        self.elapsed = self.cpu = 0.0
        self.served = 0

    async def run(self, seconds: float, keep: bool = True) -> None:
        results = self.results if keep else []

        async def worker(connection: Connection, until: float) -> int:
            done = 0
            while time.perf_counter() < until:
                result = await connection.post()
                done += 1
                if time.perf_counter() <= until:  # the requests still out at the end are not counted,
                    results.append(result)  # nor the time they take to come back (the others wait)
            return done

        cpu_before, started = cpu_seconds(self.server_pid), time.perf_counter()
        done = await asyncio.gather(*(worker(c, started + seconds) for c in self.connections))
        if keep:
            self.elapsed += seconds
            self.cpu += cpu_seconds(self.server_pid) - cpu_before
            self.served += sum(done)  # the late ones included: their CPU is in the slice's

    def close(self) -> None:
        for connection in self.connections:
            if connection.writer:
                connection.writer.close()

    def figures(self) -> dict:
        latencies = sorted(r[0] for r in self.results)
        firsts = sorted(r[1] for r in self.results)
        return {
            "rps": len(latencies) / self.elapsed,
            "p50": statistics.median(latencies) * 1000,
            "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
            "ttfe": statistics.median(firsts) * 1000,
            "cpu": self.cpu / self.served * 1000,
        }


async def bench(loads: dict[str, Load]) -> dict[str, dict]:
    """Each target warmed up, then measured for SECONDS in all, in SLICES turns taken in rotation."""
    for load in loads.values():
        await load.run(WARMUP_SECONDS, keep=False)
    for _ in range(SLICES):
        for load in loads.values():
            await load.run(SECONDS / SLICES)
    for load in loads.values():
        load.close()
    return {target: load.figures() for target, load in loads.items()}


def check_round_trip(gateway: str, key: str, text: str) -> None:
    body = {"model": "claude-sonnet-4-6", "max_tokens": 1024, "messages": [{"role": "user", "content": text}]}
    answer = httpx.post(f"{gateway}/v1/messages", json=body, headers={"x-api-key": key}, timeout=30).json()
    if answer["content"][0]["text"] != text:
        raise SystemExit("the masked gateway did not restore the prompt byte for byte")


def report(results: dict) -> list[str]:
    print(f"\n{'mode':<10}{'conc':>5} {'target':<12}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'ttfe ms':>9}{'cpu ms':>9}")
    for (stream, conc, target), r in results.items():
        mode = "stream" if stream else "json"
        ttfe = f"{r['ttfe']:9.1f}" if stream else f"{'':>9}"
        print(f"{mode:<10}{conc:>5} {target:<12}{r['rps']:9.1f}{r['p50']:9.1f}{r['p99']:9.1f}{ttfe}{r['cpu']:9.2f}")
    misses = []
    print(f"\n{'mode':<10}{'conc':>5}  masked/pass req/s   masked/pass p50   pass/direct req/s")
    for stream in (False, True):
        for conc in CONCURRENCY:
            direct, passthrough, masked = (results[(stream, conc, t)] for t in ("direct", "passthrough", "masked"))
            ratios = (
                masked["rps"] / passthrough["rps"],
                masked["p50"] / passthrough["p50"],
                passthrough["rps"] / direct["rps"],
            )
            ok = (
                ratios[0] >= MIN_MASKED_THROUGHPUT,
                ratios[1] <= MAX_MASKED_P50,
                ratios[2] >= MIN_PASSTHROUGH_THROUGHPUT,
            )
            marks = ["" if good else " MISS" for good in ok]
            mode = "stream" if stream else "json"
            print(
                f"{mode:<10}{conc:>5}  {ratios[0]:8.2f}{marks[0]:<10}{ratios[1]:8.2f}{marks[1]:<10}"
                f"{ratios[2]:8.2f}{marks[2]}"
            )
            misses += [f"{mode} c={conc}" for good in ok if not good]
    print("\ngoals: masked/pass req/s >= 0.75, masked/pass p50 <= 1.3, pass/direct req/s >= 0.5")
    print(f"\n{'mode':<10}{'conc':>5}  fresh/pass req/s    fresh/pass p50    (not a goal: every prompt new)")
    for stream in (False, True):
        for conc in CONCURRENCY:
            passthrough, fresh = (results[(stream, conc, t)] for t in ("passthrough", "masked-fresh"))
            mode = "stream" if stream else "json"
            rps, p50 = fresh["rps"] / passthrough["rps"], fresh["p50"] / passthrough["p50"]
            print(f"{mode:<10}{conc:>5}  {rps:8.2f}{'':<10}{p50:8.2f}")
    print("cpu ms: server CPU per request (the fake upstream for direct, the gateway's workers otherwise)")
    return misses


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-proxy-"))
    text = prompt()
    try:
        with ExitStack() as stack:
            redis_port, password = free_port(), secrets.token_hex(8)
            redis_args = [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(redis_port),
                "--bind",
                "127.0.0.1",
                "--requirepass",
                password,
            ]
            redis_args += ["--save", "", "--appendonly", "no", "--dir", str(tmp)]
            stack.enter_context(process(redis_args, dict(os.environ), port=redis_port))
            upstream_port = free_port()
            upstream = f"http://127.0.0.1:{upstream_port}"
            env = environment(tmp, f"redis://:{password}@127.0.0.1:{redis_port}", upstream)
            fake = uvicorn("tests.masking.fake_upstream:bench_app", upstream_port)
            pids = {"direct": stack.enter_context(process(fake, env, port=upstream_port)).pid}
            key = subprocess.run(
                [sys.executable, "-c", SETUP], cwd=ROOT, env=env, check=True, capture_output=True, text=True
            ).stdout.strip()
            gateways = {}
            for name, settings_module in (("passthrough", "bench.settings_passthrough"), ("masked", "config.settings")):
                port = free_port()
                gateways[name] = f"http://127.0.0.1:{port}"
                gw_env = {**env, "DJANGO_SETTINGS_MODULE": settings_module}
                ready = {"ready_url": f"{gateways[name]}/healthz", "port": port, "listeners": WORKERS}
                pids[name] = stack.enter_context(process(gateway(port), gw_env, **ready)).pid
            check_round_trip(gateways["masked"], key, text)
            print(
                f"prompt {len(text.encode())} bytes, {WORKERS} gateway workers, {SECONDS:g} s per measurement"
                f" in {SLICES} slices taken in turn with the other targets'"
            )
            results = {}
            for stream in (False, True):
                body = {"model": "claude-sonnet-4-6", "max_tokens": 4096, "stream": stream}
                body["messages"] = [{"role": "user", "content": text}]
                for conc in CONCURRENCY:
                    targets = {"direct": upstream, **gateways, "masked-fresh": gateways["masked"]}
                    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
                    loads = {}
                    for target, base in targets.items():
                        pid, fresh = pids[target.split("-")[0]], target == "masked-fresh"
                        loads[target] = Load(f"{base}/v1/messages", headers, body, conc, pid, fresh)
                    for target, figures in asyncio.run(bench(loads)).items():
                        results[(stream, conc, target)] = figures
            misses = report(results)
            print("all goals met" if not misses else f"goals missed: {', '.join(misses)}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
