"""Masking a 200-identifier request: the store's one EVALSHA against one command per identifier.

Runs its own redis-server on a free port (nothing else is touched), then times, on the same
client (redis-py + hiredis) and the same server:
  sequential  GET, then INCR + SET + SET for a new identifier: one round trip per command
  pipeline    one pipelined GET for all, then one pipeline of INCR + SETs (two round trips, not atomic)
  script      masking.store.get_or_create_tokens: one EVALSHA (atomic, with TTLs and stats)
Every round uses 200 identifiers never seen before; "script, all known" repeats a round's.
Prints medians and ratios; the last line is `ratio_vs_sequential=<x>`.

    .venv/bin/python bench/store.py [--rounds 40]
"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
N = 200
TTL = 86400


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis(data_dir: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen([*args, "--dir", str(data_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.02)
    proc.kill()
    raise SystemExit("redis-server did not start")


def setup_django(port: int, var_dir: Path) -> None:
    os.environ.update(
        REDIS_URL=f"redis://127.0.0.1:{port}/0",
        DEBUG="1",
        VAR_DIR=str(var_dir),
        ENV_FILE=str(var_dir / "none"),
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def identifiers(batch: int) -> list[tuple[str, str]]:
    return [("EC2", f"i-{batch:08x}{n:09x}") for n in range(N)]


def sequential(client, items) -> list[str]:
    tokens = []
    for prefix, original in items:
        token = client.get(f"aws:mask:{original}")
        if token is None:
            token = f"AWS_{prefix}_{client.incr(f'aws:seq:{prefix}'):03d}"
            client.set(f"aws:mask:{original}", token, ex=TTL)
            client.set(f"aws:unmask:{token}", original, ex=TTL)
        tokens.append(token)
    return tokens


def pipelined(client, items) -> list[str]:
    pipe = client.pipeline(transaction=False)
    for _, original in items:
        pipe.get(f"aws:mask:{original}")
    tokens = pipe.execute()
    missing = [i for i, token in enumerate(tokens) if token is None]
    for i in missing:
        pipe.incr(f"aws:seq:{items[i][0]}")
    for i, number in zip(missing, pipe.execute(), strict=True):
        prefix, original = items[i]
        tokens[i] = f"AWS_{prefix}_{number:03d}"
        pipe.set(f"aws:mask:{original}", tokens[i], ex=TTL)
        pipe.set(f"aws:unmask:{tokens[i]}", original, ex=TTL)
    pipe.execute()
    return tokens


def timed(methods: dict, rounds: int) -> dict[str, float]:
    """Median ms per method. Rounds interleave the methods so a busy machine slows them alike."""
    samples: dict[str, list[float]] = {name: [] for name in methods}
    for r in range(rounds):
        for name, (fn, offset) in methods.items():
            items = identifiers(offset * 100_000 + r)
            started = time.perf_counter()
            tokens = fn(items)
            samples[name].append((time.perf_counter() - started) * 1000)
            assert len(tokens) == N
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=40)
    rounds = parser.parse_args().rounds
    if not shutil.which("redis-server"):
        raise SystemExit("redis-server is not installed")
    workdir = Path(tempfile.mkdtemp(prefix="bench-store-"))
    proc, port = start_redis(workdir)
    try:
        setup_django(port, workdir)
        from masking import store
        from masking.connection import get_redis
        from masking.models import Tenant

        client = get_redis()
        tenant = Tenant(slug="default", name="Default", ttl_seconds=TTL)  # unsaved: no database needed
        script = lambda items: store.get_or_create_tokens(items, tenant).tokens  # noqa: E731
        script(identifiers(0))  # load the script and warm the connection pool
        sequential(client, identifiers(1))

        results = timed(
            {
                "sequential GET/SET": (lambda items: sequential(client, items), 1),
                "pipeline (2 round trips)": (lambda items: pipelined(client, items), 2),
                "script (1 EVALSHA)": (script, 3),
                "script, all known": (script, 3),  # the same identifiers, just created
            },
            rounds,
        )
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)

    base = results["sequential GET/SET"]
    print(f"masking {N} identifiers, median of {rounds} rounds (redis-py {client_version()}, hiredis)")
    for name, ms in results.items():
        print(f"  {name:26} {ms:8.2f} ms   {base / ms:6.1f}x vs sequential")
    print(f"ratio_vs_pipeline={results['pipeline (2 round trips)'] / results['script (1 EVALSHA)']:.1f}")
    print(f"ratio_vs_sequential={base / results['script (1 EVALSHA)']:.1f}")


def client_version() -> str:
    import redis

    return redis.__version__


if __name__ == "__main__":
    main()
