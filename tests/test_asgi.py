"""config/asgi.py: what a worker does before it serves its first request."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_worker_compiles_the_rules_and_freezes_its_start_up_objects_before_serving():
    code = (
        "import gc, config.asgi; from masking import engine;"
        "print(engine._BUILTIN._db is not None or engine._default_backend == 'python', gc.get_freeze_count() > 1000)"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "True"]
