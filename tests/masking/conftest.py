"""Personas for the admin: a superuser, an operator who may reveal originals, a viewer who may
not, and an anonymous visitor; and a way to put mappings in Redis in the documented key layout."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from masking import mappings, masker
from masking.models import Tenant

OPERATOR_PERMS = [
    "view_mapping",
    "change_mapping",
    "delete_mapping",
    "reveal_original",
    "view_auditlog",
    "view_kindpolicy",
    "add_kindpolicy",
    "change_kindpolicy",
    "delete_kindpolicy",
    "view_customrule",
    "add_customrule",
    "change_customrule",
    "delete_customrule",
]
VIEWER_PERMS = ["view_mapping", "view_auditlog", "view_kindpolicy", "view_customrule"]


def _staff(username: str, codenames: list[str]):
    # No password (hashing one is slow): the personas' clients log in with force_login.
    user = get_user_model().objects.create_user(username, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="masking", codename__in=codenames))
    return user


def _client_for(user) -> Client:
    client = Client(REMOTE_ADDR="203.0.113.7")
    client.force_login(user)
    return client


@pytest.fixture
def default_tenant(db) -> Tenant:
    # Migration 0002 creates it, but a transactional test elsewhere may have flushed the table.
    return Tenant.objects.get_or_create(slug="default", defaults={"name": "Default"})[0]


@pytest.fixture
def superuser(default_tenant):
    return get_user_model().objects.create_superuser("root", None, None)


@pytest.fixture
def operator(default_tenant):
    return _staff("olivia", OPERATOR_PERMS)


@pytest.fixture
def viewer(default_tenant):
    return _staff("victor", VIEWER_PERMS)


@pytest.fixture
def superuser_client(superuser) -> Client:
    return _client_for(superuser)


@pytest.fixture
def operator_client(operator) -> Client:
    return _client_for(operator)


@pytest.fixture
def viewer_client(viewer) -> Client:
    return _client_for(viewer)


@pytest.fixture
def anon_client(db) -> Client:
    return Client(REMOTE_ADDR="203.0.113.99")


@pytest.fixture
def put_mapping(redis_client):
    """Write one mapping, both directions, as the store lays it out."""

    def put(original: str, token: str, tenant: str = "default", ttl: int = 3600) -> None:
        redis_client.set(mappings.mask_key(original, tenant), token, ex=ttl)
        redis_client.set(mappings.unmask_key(token, tenant), original, ex=ttl)

    return put


@pytest.fixture
def texts_masked(redis_client):
    """`mask(text)`: one text through the masker (needs the database too: mark the test django_db)."""

    def mask(text: str) -> str:
        (result,) = masker.mask_texts([text]).texts
        return result

    return mask
