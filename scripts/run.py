"""`make run`: everything the gateway needs, in the foreground.

Makes sure a Redis is reachable (the configured one, or a local redis-server it starts with a
password and a data directory under var/redis/), migrates, creates an operator account on first
run, then runs web + Celery worker + Celery beat with prefixed logs. Ctrl-C stops all of them,
and the Redis it started.
"""

import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
ENV_FILE = VAR / "local.env"
PY = sys.executable
WEB_PORT = os.environ.get("PORT", "8000")
LOCAL_REDIS_PORT = os.environ.get("LOCAL_REDIS_PORT", "6390")


def read_env_file() -> dict[str, str]:
    if not ENV_FILE.exists():
        return {}
    pairs = (
        line.split("=", 1) for line in ENV_FILE.read_text().splitlines() if "=" in line and not line.startswith("#")
    )
    return {key.strip(): value.strip() for key, value in pairs}


def write_env_file(values: dict[str, str]) -> None:
    VAR.mkdir(exist_ok=True)
    lines = ["# Written by `make run` on first start. Real environment variables win over this file."]
    lines += [f"{key}={value}" for key, value in values.items()]
    ENV_FILE.write_text("\n".join(lines) + "\n")
    ENV_FILE.chmod(0o600)


def first_run_defaults() -> dict[str, str]:
    values = read_env_file()
    changed = False
    for key, make in {
        "SECRET_KEY": lambda: secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": lambda: "localhost,127.0.0.1,[::1]",
        "CSRF_TRUSTED_ORIGINS": lambda: f"http://localhost:{WEB_PORT},http://127.0.0.1:{WEB_PORT}",
    }.items():
        if key not in values:
            values[key], changed = make(), True
    redis_configured = any(os.environ.get(k) for k in ("REDIS_URL", "REDIS_HOST")) or "REDIS_URL" in values
    if not redis_configured:
        # No Redis configured: run our own, and write its URL so `manage.py` commands find it too.
        password = secrets.token_hex(16)
        values["LOCAL_REDIS_PASSWORD"] = password
        values["REDIS_URL"] = f"redis://:{password}@127.0.0.1:{LOCAL_REDIS_PORT}/0"
        changed = True
    if changed:
        write_env_file(values)
    return values


def redis_reachable(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def ensure_redis_server_binary() -> str:
    binary = shutil.which("redis-server")
    if binary:
        return binary
    print("redis-server is not installed; installing the distribution package...", flush=True)
    subprocess.run([str(ROOT / "scripts" / "install-system-packages.sh"), "redis-server"], check=False)
    binary = shutil.which("redis-server")
    if not binary:
        sys.exit(
            "redis-server is missing. Install it with:  sudo apt-get install redis-server  (or: brew install redis)"
        )
    return binary


def start_local_redis(password: str, url: str) -> subprocess.Popen | None:
    binary = ensure_redis_server_binary()
    data = VAR / "redis"
    data.mkdir(parents=True, exist_ok=True)
    port = url.rsplit(":", 1)[1].split("/")[0]
    if redis_reachable(url):  # ours, left over from an earlier run
        return None
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            port,
            "--bind",
            "127.0.0.1",
            "--requirepass",
            password,
            "--dir",
            str(data),
            "--appendonly",
            "yes",
            "--save",
            "900 1 300 10 60 10000",
            "--maxmemory-policy",
            "noeviction",
            "--logfile",
            str(data / "redis.log"),
        ],
        start_new_session=True,  # Ctrl-C reaches us; we stop Redis last, after its clients
    )
    for _ in range(100):
        if redis_reachable(url):
            print(f"started redis-server on 127.0.0.1:{port} (data in var/redis/)", flush=True)
            return proc
        time.sleep(0.1)
    sys.exit(f"redis-server did not start; see {data / 'redis.log'}")


def manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env, check=True)


def create_operator_on_first_run(env: dict[str, str]) -> None:
    args = [PY, "manage.py", "create_operator", "--username", "admin"]
    password = subprocess.run(args, cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout.strip()
    if password:
        print(
            f"\n  Operator account created. Log in at http://localhost:{WEB_PORT}/admin/ as admin / {password}\n"
            "  (shown once; change it in the admin, or: python manage.py changepassword admin)\n",
            flush=True,
        )


def pipe(name: str, proc: subprocess.Popen) -> None:
    for line in iter(proc.stdout.readline, b""):
        sys.stdout.write(f"{name:<6} | {line.decode(errors='replace')}")
        sys.stdout.flush()


def main() -> None:
    values = first_run_defaults()
    env = dict(os.environ)
    for key, value in values.items():
        env.setdefault(key, value)
    redis_proc = None
    if "LOCAL_REDIS_PASSWORD" in values and not any(os.environ.get(k) for k in ("REDIS_URL", "REDIS_HOST")):
        redis_proc = start_local_redis(values["LOCAL_REDIS_PASSWORD"], env["REDIS_URL"])
    try:
        run_everything(env)
    finally:
        if redis_proc:
            redis_proc.terminate()
            redis_proc.wait(timeout=15)
        print("stopped.")


def run_everything(env: dict[str, str]) -> None:
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(ROOT))
    os.environ.update(env)
    from django.conf import settings  # noqa: E402 - only once the environment is complete

    if not redis_reachable(settings.MASKING_REDIS_URL):
        sys.exit(
            "The configured Redis is not reachable (REDIS_URL / REDIS_HOST). Start it, or unset them "
            "and `make run` starts a local one."
        )
    manage("migrate", "--no-input", env=env)
    create_operator_on_first_run(env)

    commands = {
        "web": [
            PY,
            "-m",
            "config.server",  # uvicorn, a listening socket per worker
            "--host",
            os.environ.get("HOST", "127.0.0.1"),
            "--port",
            WEB_PORT,
            "--workers",
            os.environ.get("WEB_WORKERS", "2"),
        ],
        "worker": [PY, "-m", "celery", "-A", "config", "worker", "--loglevel", "INFO", "--concurrency", "2"],
        "beat": [
            PY,
            "-m",
            "celery",
            "-A",
            "config",
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            str(VAR / "celerybeat-schedule"),
        ],
    }
    procs = {}
    for name, args in commands.items():
        procs[name] = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
        threading.Thread(target=pipe, args=(name, procs[name]), daemon=True).start()
    print(
        f"gateway on http://localhost:{WEB_PORT}/  (admin: /admin/, dashboard: /dashboard/). Ctrl-C stops.", flush=True
    )

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        while not stopping.is_set() and all(p.poll() is None for p in procs.values()):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs.values():
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    main()
