import asyncio
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from masking.auth import aauthenticate_key, authenticate_key, key_from_headers
from masking.models import ApiClient, Tenant, hash_api_key

pytestmark = pytest.mark.django_db


def default_tenant() -> Tenant:
    # A transactional test flushes the database, the data migration's default tenant included.
    return Tenant.objects.get_or_create(slug="default", defaults={"name": "Default"})[0]


@pytest.fixture
def tenant() -> Tenant:
    return default_tenant()


@pytest.fixture
def client_and_key(tenant) -> tuple[ApiClient, str]:
    return ApiClient.objects.create_with_key("ci", tenant)


def test_a_key_is_read_from_x_api_key_or_a_bearer_authorization_header():
    assert key_from_headers({"x-api-key": " awsm_abc "}) == "awsm_abc"
    assert key_from_headers({"authorization": "Bearer awsm_abc"}) == "awsm_abc"
    assert key_from_headers({"authorization": "bearer   awsm_abc"}) == "awsm_abc"
    assert key_from_headers({"authorization": "Basic dXNlcjpwYXNz"}) is None
    assert key_from_headers({"authorization": "Bearer "}) is None
    assert key_from_headers({}) is None


def test_a_valid_key_authenticates_its_client_with_its_tenant(client_and_key, tenant):
    client, key = client_and_key

    found = authenticate_key(key)

    assert found == client
    assert found.tenant == tenant


def test_only_the_hash_of_a_key_is_stored(client_and_key):
    client, key = client_and_key

    row = ApiClient.objects.values().get(pk=client.pk)

    assert key not in [str(value) for value in row.values()]
    assert row["key_hash"] == hash_api_key(key)
    assert key.startswith(row["key_hint"])


def test_wrong_and_inactive_keys_do_not_authenticate(client_and_key):
    client, key = client_and_key

    assert authenticate_key(key + "x") is None
    assert authenticate_key("") is None
    client.is_active = False
    client.save()
    assert authenticate_key(key) is None


def test_last_used_is_recorded_at_most_once_a_minute(client_and_key):
    client, key = client_and_key

    authenticate_key(key)
    first = ApiClient.objects.get(pk=client.pk).last_used_at
    authenticate_key(key)
    assert ApiClient.objects.get(pk=client.pk).last_used_at == first

    ApiClient.objects.filter(pk=client.pk).update(last_used_at=timezone.now() - timedelta(minutes=2))
    authenticate_key(key)
    assert ApiClient.objects.get(pk=client.pk).last_used_at > first


@pytest.mark.django_db(transaction=True)
def test_the_async_variant_authenticates_the_same_keys():
    client, key = ApiClient.objects.create_with_key("async", default_tenant())

    async def run():
        return await aauthenticate_key(key), await aauthenticate_key("awsm_nope")

    found, missing = asyncio.run(run())
    assert found.pk == client.pk
    assert found.tenant.slug == "default"
    assert missing is None
    assert ApiClient.objects.get(pk=client.pk).last_used_at is not None


def test_the_admin_shows_a_new_key_once_and_it_works(tenant):
    admin = get_user_model().objects.create_superuser("root", None, "pw")
    browser = Client()
    browser.force_login(admin)

    page = browser.post("/admin/masking/apiclient/add/", {"name": "from-admin", "tenant": tenant.pk})

    assert page.status_code == 200
    key = page.context["key"]
    assert key in page.content.decode()
    assert authenticate_key(key).name == "from-admin"
    change = browser.get(f"/admin/masking/apiclient/{authenticate_key(key).pk}/change/")
    assert change.status_code == 200
    assert key not in change.content.decode()


def test_changing_or_deleting_a_client_or_tenant_tells_the_proxies(
    tenant, redis_client, django_capture_on_commit_callbacks
):
    version = lambda: int(redis_client.get("aws:auth:version") or 0)  # noqa: E731
    with django_capture_on_commit_callbacks(execute=True):
        client = ApiClient.objects.create_with_key("ci", tenant)[0]
    created = version()
    with django_capture_on_commit_callbacks(execute=True):
        client.is_active = False
        client.save()
    with django_capture_on_commit_callbacks(execute=True):
        client.delete()
    with django_capture_on_commit_callbacks(execute=True):
        tenant.max_body_bytes = 1024
        tenant.save()

    assert created >= 1
    assert version() == created + 3


def test_a_client_saved_while_redis_is_down_is_saved_all_the_same(
    tenant, redis_server, django_capture_on_commit_callbacks
):
    redis_server.stop()
    try:
        with django_capture_on_commit_callbacks(execute=True):
            client = ApiClient.objects.create_with_key("ci", tenant)[0]
            client.is_active = False
            client.save()
    finally:
        redis_server.start()
    assert ApiClient.objects.get(pk=client.pk).is_active is False


def test_recording_last_use_does_not_tell_the_proxies(client_and_key, redis_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        authenticate_key(client_and_key[1])

    assert ApiClient.objects.get().last_used_at is not None
    assert callbacks == []
