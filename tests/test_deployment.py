"""No container engine runs in CI, so the deployment files are checked by reading them."""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
APP_SERVICES = ["web", "worker", "beat"]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def words(command) -> str:
    return " ".join(command) if isinstance(command, list) else command


def test_compose_runs_redis_web_worker_and_beat(services):
    assert set(services) == {"redis", "web", "worker", "beat"}


def test_redis_is_redis_7_alpine_with_a_required_password(services):
    redis = services["redis"]
    assert redis["image"] == "redis:7-alpine"
    command = redis["command"]
    password = command[command.index("--requirepass") + 1]
    assert re.fullmatch(r"\$\{REDIS_PASSWORD(:\?[^}]*)?\}", password)


def test_redis_keeps_its_data_in_the_redis_data_directory(services):
    assert "./redis/data:/data" in services["redis"]["volumes"]


def test_redis_never_publishes_a_port(services):
    assert "ports" not in services["redis"]
    assert "expose" not in services["redis"]


def test_redis_is_health_checked_with_redis_cli_ping(services):
    assert "redis-cli ping" in words(services["redis"]["healthcheck"]["test"])


def test_redis_never_evicts_mappings(services):
    command = services["redis"]["command"]
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_processes_share_one_image_and_one_env_file(services, name):
    service = services[name]
    assert service["image"] == services["web"]["image"]
    assert service["build"] == "."
    assert service["env_file"] == ".env"


@pytest.mark.parametrize("name", ["redis", *APP_SERVICES])
def test_every_service_has_a_health_check(services, name):
    check = services[name]["healthcheck"]
    assert check["test"] and check["interval"] and check["retries"]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_processes_wait_for_a_healthy_redis(services, name):
    assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_backups_are_written_to_a_volume(compose, services, name):
    service = services[name]
    backup_dir = service["environment"]["BACKUP_DIR"]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in service["volumes"]}
    assert mounts[backup_dir] in compose["volumes"]


def test_web_is_the_gateway_server_and_migrates_first(services):
    command = words(services["web"]["command"])
    assert "python -m config.server --host 0.0.0.0 --port 8000" in command
    assert command.index("migrate") < command.index("config.server")
    assert any(port.endswith(":8000") for port in services["web"]["ports"])


def test_worker_and_beat_run_celery(services):
    assert words(services["worker"]["command"]).startswith("celery -A config worker")
    assert words(services["beat"]["command"]).startswith("celery -A config beat")


def test_the_app_reaches_redis_by_its_service_name(services):
    for name in APP_SERVICES:
        assert services[name]["environment"]["REDIS_HOST"] == "redis"


def test_every_variable_compose_reads_is_documented_in_env_example(compose):
    text = (ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"(?<!\$)\$\{([A-Z_]+)", text))
    documented = set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE))
    assert used <= documented


def test_the_image_runs_as_an_unprivileged_user_with_redis_server_for_restore_tests():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11", dockerfile, re.MULTILINE)
    assert "/usr/local/bin/redis-server" in dockerfile
    users = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert users and users[-1] not in {"root", "0"}
    assert "config.server" in dockerfile


def test_secrets_and_data_stay_out_of_the_image():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in [".env", ".git", ".venv", "var/", "redis/", "backups/", "*.rdb"]:
        assert entry in ignored
