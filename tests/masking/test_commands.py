import io
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command

from masking.auth import authenticate_key
from masking.models import Tenant
from tests.live import ROOT, process_env
from tests.redis_server import free_port

pytestmark = pytest.mark.django_db

EC2 = "i-0123456789abcdef0"
TEXT = f"Stopped {EC2}.\r\nDone\n"


class Stdin(io.TextIOWrapper):
    """A stdin made of bytes, as the real one is."""

    def __init__(self, data: bytes):
        super().__init__(io.BytesIO(data), encoding="utf-8")


def run(name: str, data: bytes, *args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(name, *args, stdin=Stdin(data), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_mask_writes_exactly_the_masked_text_to_stdout(redis_client):
    out, _ = run("mask", TEXT.encode())

    assert out == "Stopped AWS_EC2_001.\r\nDone\n"


def test_unmask_restores_the_text_byte_for_byte_and_reports_unknown_tokens_on_stderr(redis_client):
    masked, _ = run("mask", TEXT.encode())

    out, err = run("unmask", (masked + "AWS_EC2_404").encode())

    assert out == TEXT + "AWS_EC2_404"
    assert "1 token(s) not found" in err


def test_tenants_are_chosen_with_an_option(redis_client):
    Tenant.objects.create(slug="team-d", name="D")

    out, _ = run("mask", EC2.encode(), "--tenant", "team-d")

    assert out == "AWS_EC2_001"
    assert redis_client.get(f"aws:t:team-d:mask:{EC2}") == b"AWS_EC2_001"
    assert run("unmask", b"AWS_EC2_001")[0] == "AWS_EC2_001"
    assert run("unmask", b"AWS_EC2_001", "--tenant", "team-d")[0] == EC2


def test_an_unknown_tenant_is_a_clear_error():
    with pytest.raises(CommandError, match="no tenant with slug 'nope'"):
        run("mask", b"x", "--tenant", "nope")


def test_input_that_is_not_utf8_is_refused():
    with pytest.raises(CommandError, match="not valid UTF-8"):
        run("mask", b"\xff\xfe")


def test_create_api_key_prints_a_working_key_alone_on_its_last_line():
    Tenant.objects.create(slug="team-e", name="E")
    out = io.StringIO()

    call_command("create_api_key", "ci-pipeline", "--tenant", "team-e", stdout=out)

    key = out.getvalue().splitlines()[-1]
    client = authenticate_key(key)
    assert client.name == "ci-pipeline"
    assert client.tenant.slug == "team-e"


@pytest.mark.django_db(transaction=True)
def test_the_real_commands_pipe_stdin_to_stdout_and_fail_with_a_message_when_redis_is_down(redis_server):
    Tenant.objects.get_or_create(slug="default", defaults={"name": "Default"})  # an earlier flush may have removed it
    manage = [sys.executable, "manage.py"]
    env = process_env()

    masked = subprocess.run([*manage, "mask"], input=TEXT.encode(), capture_output=True, cwd=ROOT, env=env)
    restored = subprocess.run([*manage, "unmask"], input=masked.stdout, capture_output=True, cwd=ROOT, env=env)
    down = process_env(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    refused = subprocess.run([*manage, "mask"], input=TEXT.encode(), capture_output=True, cwd=ROOT, env=down)

    assert masked.returncode == 0, masked.stderr
    assert masked.stdout == b"Stopped AWS_EC2_001.\r\nDone\n"
    assert restored.stdout == TEXT.encode()
    assert refused.returncode == 1
    assert refused.stdout == b""
    assert b"masking unavailable: redis is unreachable" in refused.stderr
    assert EC2.encode() not in refused.stderr
