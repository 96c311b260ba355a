import asyncio
import time

import httpx
import pytest

from masking import masker, policy
from masking.models import ApiClient, KindPolicy, Tenant
from tests.live import gateway_process

EC2 = "i-0123456789abcdef0"
VPC = "vpc-0123456789abcdef0"
TEXT = f"{EC2} in {VPC}"


@pytest.fixture
def blue(db):
    return Tenant.objects.create(slug="blue", name="Blue")


@pytest.fixture
def committing(django_capture_on_commit_callbacks):
    """Run on-commit hooks (the version bump) as a real commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def saved(committing):
    def save(**fields) -> KindPolicy:
        with committing():
            return KindPolicy.objects.create(**fields)

    return save


@pytest.mark.django_db
def test_without_a_policy_every_kind_follows_the_engine_default():
    modes = policy.effective_modes("default")
    assert modes["ec2_instance"] == "mask"
    assert modes["secret_access_key"] == "redact"


@pytest.mark.django_db
def test_a_tenant_policy_overrides_the_all_tenants_policy_for_that_tenant_only(saved, blue):
    saved(kind="ec2_instance", mode="redact")
    saved(kind="ec2_instance", mode="off", tenant=blue)
    assert policy.effective_modes("default")["ec2_instance"] == "redact"
    assert policy.effective_modes("blue")["ec2_instance"] == "off"
    assert policy.effective_modes(blue)["vpc"] == "mask"


@pytest.mark.django_db
def test_redact_replaces_the_identifier_with_a_marker_and_stores_nothing(saved, redis_client):
    saved(kind="ec2_instance", mode="redact")
    assert masker.mask_texts([TEXT]).texts == ["AWS_EC2_REDACTED in AWS_VPC_001"]
    assert redis_client.get(f"aws:mask:{EC2}") is None


@pytest.mark.django_db
def test_off_leaves_the_kind_alone(saved):
    saved(kind="ec2_instance", mode="off")
    assert masker.mask_texts([TEXT]).texts == [f"{EC2} in AWS_VPC_001"]


@pytest.mark.django_db
def test_saving_or_deleting_a_policy_bumps_the_version_after_commit(saved, committing, redis_client):
    rule = saved(kind="vpc", mode="off")
    assert redis_client.get(policy.VERSION_KEY) == b"1"
    with committing():
        rule.delete()
    assert redis_client.get(policy.VERSION_KEY) == b"2"
    assert masker.mask_texts([TEXT]).texts == ["AWS_EC2_001 in AWS_VPC_001"]


@pytest.mark.django_db
def test_a_change_made_elsewhere_applies_when_the_version_moves_not_before(redis_client, monkeypatch):
    monkeypatch.setattr(policy, "CHECK_INTERVAL_SECONDS", 0)
    assert policy.effective_modes("default")["vpc"] == "mask"
    KindPolicy.objects.bulk_create([KindPolicy(kind="vpc", mode="off")])  # no signal: "another process"
    policy.refresh()
    assert policy.effective_modes("default")["vpc"] == "mask"  # no query per request
    redis_client.incr(policy.VERSION_KEY)
    policy.refresh()
    assert policy.effective_modes("default")["vpc"] == "off"


@pytest.mark.django_db
def test_the_version_is_read_at_most_once_per_interval(redis_client, monkeypatch):
    monkeypatch.setattr(policy, "CHECK_INTERVAL_SECONDS", 3600)
    policy.refresh()
    KindPolicy.objects.bulk_create([KindPolicy(kind="vpc", mode="off")])
    redis_client.incr(policy.VERSION_KEY)
    policy.refresh()
    assert policy.effective_modes("default")["vpc"] == "mask"


@pytest.mark.django_db
def test_an_unreachable_redis_keeps_the_current_policy_instead_of_raising(saved, redis_server, monkeypatch):
    saved(kind="vpc", mode="off")
    policy.refresh()
    monkeypatch.setattr(policy, "CHECK_INTERVAL_SECONDS", 0)
    redis_server.stop()
    policy.refresh()
    assert policy.effective_modes("default")["vpc"] == "off"


@pytest.mark.django_db(transaction=True)
def test_the_async_masker_applies_the_policy_too():
    Tenant.objects.get_or_create(slug="default", defaults={"name": "Default"})
    KindPolicy.objects.create(kind="ec2_instance", mode="redact")
    result = asyncio.run(masker.amask_texts([TEXT]))
    assert result.texts == ["AWS_EC2_REDACTED in AWS_VPC_001"]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_running_gateway_applies_an_admin_change_within_seconds_without_a_restart(tmp_path, operator_client):
    tenant, _ = Tenant.objects.get_or_create(slug="default", defaults={"name": "Default"})
    _, key = ApiClient.objects.create_with_key("policy-test", tenant)
    with gateway_process(tmp_path) as url:

        def mask() -> str:
            response = httpx.post(f"{url}/api/v1/mask", json={"text": TEXT}, headers={"x-api-key": key})
            return response.json()["text"]

        assert mask() == "AWS_EC2_001 in AWS_VPC_001"
        added = operator_client.post("/admin/masking/kindpolicy/add/", {"kind": "ec2_instance", "mode": "redact"})
        assert added.status_code == 302
        deadline = time.monotonic() + 15
        while (masked := mask()) != "AWS_EC2_REDACTED in AWS_VPC_001" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert masked == "AWS_EC2_REDACTED in AWS_VPC_001"


@pytest.mark.django_db
def test_a_save_in_this_process_never_leaves_an_async_request_without_a_policy():
    policy.refresh()
    policy.bump_version()  # an admin save in the same process, between a request's arefresh and its reads

    async def plan() -> dict:
        return policy.effective_modes("default")

    assert asyncio.run(plan())["ec2_instance"] == "mask"
