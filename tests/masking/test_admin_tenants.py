import pytest

from masking.models import Tenant

pytestmark = pytest.mark.django_db

SECRET = "sk-ant-tenant-own-key-0123456789"


def inline_prefix(superuser_client, tenant) -> str:
    """The policy inline's formset prefix, as the change page names it."""
    html = superuser_client.get(f"/admin/masking/tenant/{tenant.pk}/change/").content.decode()
    end = html.index("-TOTAL_FORMS")
    return html[html.rindex('name="', 0, end) + len('name="') : end]


def save(superuser_client, tenant, **fields):
    prefix = inline_prefix(superuser_client, tenant)
    data = {
        "name": tenant.name,
        "ttl_seconds": "",
        "max_body_bytes": "",
        "rate_limit_per_minute": "",
        f"{prefix}-TOTAL_FORMS": "0",
        f"{prefix}-INITIAL_FORMS": "0",
        **fields,
    }
    return superuser_client.post(f"/admin/masking/tenant/{tenant.pk}/change/", data)


def test_an_operator_sets_a_tenants_upstream_key_and_it_is_never_shown_back(superuser_client):
    tenant = Tenant.objects.create(slug="team-a", name="Team A")
    response = save(superuser_client, tenant, new_upstream_api_key=SECRET)
    assert response.status_code == 302, response.content[:2000]
    tenant.refresh_from_db()
    assert tenant.upstream_api_key == SECRET
    assert SECRET not in superuser_client.get(f"/admin/masking/tenant/{tenant.pk}/change/").content.decode()


def test_saving_without_a_new_key_keeps_it_and_clearing_removes_it(superuser_client):
    tenant = Tenant.objects.create(slug="team-b", name="Team B", upstream_api_key=SECRET)
    save(superuser_client, tenant, name="Team B renamed")
    tenant.refresh_from_db()
    assert tenant.upstream_api_key == SECRET and tenant.name == "Team B renamed"
    save(superuser_client, tenant, clear_upstream_api_key="on")
    tenant.refresh_from_db()
    assert tenant.upstream_api_key == ""
