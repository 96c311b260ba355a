import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from config import env
from tests.live import ROOT


def import_settings(**overrides: str) -> subprocess.CompletedProcess:
    clean = {"PATH": "/usr/bin:/bin", "ENV_FILE": "/nonexistent", **overrides}
    return subprocess.run(
        [sys.executable, "-c", "import config.settings as s; print(s.MASKING_REDIS_URL, s.CELERY_BROKER_URL)"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
    )


def test_it_refuses_to_start_without_a_secret_key_when_debug_is_off():
    result = import_settings(DEBUG="0", ALLOWED_HOSTS="example.com")
    assert result.returncode != 0
    assert "SECRET_KEY is required" in result.stderr


def test_it_refuses_to_start_without_allowed_hosts_when_debug_is_off():
    result = import_settings(DEBUG="0", SECRET_KEY="x")
    assert "ALLOWED_HOSTS is required" in result.stderr


def test_seed_variables_build_the_redis_urls_with_separate_databases():
    result = import_settings(
        DEBUG="1", REDIS_HOST="cache.internal", REDIS_PORT="6380", REDIS_PASSWORD="p@ss", REDIS_DB="4"
    )
    assert result.stdout.split() == ["redis://:p%40ss@cache.internal:6380/4", "redis://:p%40ss@cache.internal:6380/6"]


def test_redis_url_overrides_the_seed_variables():
    result = import_settings(DEBUG="1", REDIS_HOST="ignored", REDIS_URL="rediss://:pw@redis.example:6390/2")
    assert result.stdout.split()[0] == "rediss://:pw@redis.example:6390/2"


def test_a_bad_redis_url_scheme_is_refused():
    result = import_settings(DEBUG="1", REDIS_URL="http://redis:6379")
    assert "REDIS_URL must start with redis://" in result.stderr


@pytest.mark.parametrize("raw", ["maybe", "2"])
def test_env_bool_refuses_values_it_cannot_read(monkeypatch, raw):
    monkeypatch.setenv("SOME_FLAG", raw)
    with pytest.raises(ImproperlyConfigured, match="SOME_FLAG"):
        env.env_bool("SOME_FLAG")


def test_env_int_refuses_words_and_values_below_the_minimum(monkeypatch):
    monkeypatch.setenv("SOME_INT", "ten")
    with pytest.raises(ImproperlyConfigured):
        env.env_int("SOME_INT", 1)
    monkeypatch.setenv("SOME_INT", "0")
    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        env.env_int("SOME_INT", 1, minimum=1)


def test_env_secret_reads_docker_secret_files(monkeypatch, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\n")
    monkeypatch.setenv("SOME_SECRET_FILE", str(secret))
    assert env.env_secret("SOME_SECRET") == "from-a-file"
