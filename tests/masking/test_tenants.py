"""Tenant isolation, end to end through the proxy (the real ASGI app, in-process) and the fake
Claude upstream, which answers by echoing the prompt: the "model's answer" carries every token."""

import pytest

from masking import masker, store, unmasker
from masking.models import ApiClient, Tenant
from tests.masking.gateway import gateway, headers, message, upstream  # noqa: F401 - fixtures

EC2 = "i-0123456789abcdef0"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def keys(transactional_db) -> dict[str, str]:
    keys = {}
    for slug in ("blue", "green"):
        tenant = Tenant.objects.create(slug=slug, name=slug.title())
        keys[slug] = ApiClient.objects.create_with_key(f"{slug}-client", tenant)[1]
    return keys


def ask(gateway, key: str, text: str):  # noqa: F811
    response = gateway.post("/v1/messages", json=message(text), headers=headers(key))
    assert response.status_code == 200, response.text
    return response.json()["content"][0]["text"]


def test_the_same_original_gets_independent_tokens_in_two_tenants(gateway, upstream, keys, redis_client):  # noqa: F811
    assert ask(gateway, keys["blue"], f"Restart {EC2}") == f"Restart {EC2}"
    blue_token = upstream.last.json["messages"][0]["content"].split()[-1]
    assert ask(gateway, keys["green"], f"Restart {EC2}") == f"Restart {EC2}"
    green_token = upstream.last.json["messages"][0]["content"].split()[-1]

    assert blue_token.startswith("AWS_EC2_") and green_token.startswith("AWS_EC2_")
    assert blue_token != green_token
    assert redis_client.get(f"aws:t:blue:mask:{EC2}") == blue_token.encode()
    assert redis_client.get(f"aws:t:green:mask:{EC2}") == green_token.encode()


def test_a_token_of_tenant_a_is_never_restored_for_tenant_b(gateway, upstream, keys):  # noqa: F811
    ask(gateway, keys["blue"], f"Restart {EC2}")
    blue_token = upstream.last.json["messages"][0]["content"].split()[-1]

    # Green's prompt carries blue's token, and the model's answer (the echo) repeats it.
    answer = ask(gateway, keys["green"], f"What is {blue_token}?")
    assert answer == f"What is {blue_token}?"
    assert EC2 not in answer
    assert EC2 not in upstream.last.body.decode()


def test_unmasking_through_the_service_stays_within_the_tenant(keys):
    blue_token = masker.mask_texts([EC2], tenant="blue").texts[0]
    assert unmasker.unmask_texts([blue_token], tenant="blue").texts == [EC2]
    green = unmasker.unmask_texts([blue_token], tenant="green")
    assert green.texts == [blue_token] and green.unresolved == [blue_token]
    assert store.lookup_originals([blue_token], "default") == {}


def test_the_default_tenant_keeps_the_seed_compatible_key_names(keys, redis_client):
    token = masker.mask_texts([EC2], tenant="default").texts[0]
    assert redis_client.get(f"aws:mask:{EC2}") == token.encode()
    assert redis_client.get(f"aws:unmask:{token}") == EC2.encode()


def test_a_tenants_own_policy_is_edited_on_its_tenant_page(superuser_client, keys):
    blue = Tenant.objects.get(slug="blue")
    page = superuser_client.get(f"/admin/masking/tenant/{blue.pk}/change/")
    assert "masking policy for this tenant" in page.content.decode().lower()
    form = {
        "name": "Blue",
        "ttl_seconds": "3600",
        "max_body_bytes": "",
        "rate_limit_per_minute": "",
        "kindpolicy_set-TOTAL_FORMS": "1",
        "kindpolicy_set-INITIAL_FORMS": "0",
        "kindpolicy_set-0-kind": "ec2_instance",
        "kindpolicy_set-0-mode": "redact",
    }
    response = superuser_client.post(f"/admin/masking/tenant/{blue.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert masker.mask_texts([EC2], tenant="blue").texts == ["AWS_EC2_REDACTED"]
    assert masker.mask_texts([EC2], tenant="green").texts[0].startswith("AWS_EC2_0")
