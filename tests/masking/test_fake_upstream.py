"""tests/masking/fake_upstream.py as the benchmarks run it: a process of its own."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_fake_upstream_starts_no_redis_server_of_its_own():
    # Importing tests.redis_server starts the test session's redis-server: every benchmark run
    # left one behind per fake upstream it started.
    code = "import sys, tests.masking.fake_upstream; print('tests.redis_server' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"
