import pytest

from masking.models import Tenant

URL = "/admin/masking/mapping/"
EC2 = "i-0123456789abcdef0"
ROLE = "arn:aws:iam::123456789012:role/deploy"

pytestmark = pytest.mark.django_db


def search(client, search_by: str, query: str, tenant: str = "default"):
    return client.post(URL, {"action": "search", "tenant": tenant, "search_by": search_by, "query": query})


@pytest.fixture
def two_mappings(put_mapping):
    put_mapping(EC2, "AWS_EC2_001")
    put_mapping(ROLE, "AWS_IAM_ROLE_001")


def test_an_anonymous_visitor_is_sent_to_the_login_page(anon_client, two_mappings):
    response = anon_client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_staff_without_the_view_permission_is_refused(viewer, viewer_client, two_mappings):
    viewer.user_permissions.clear()
    assert viewer_client.get(URL).status_code == 403


def test_the_mappings_page_is_listed_under_masking_in_the_admin_index(viewer_client):
    content = viewer_client.get("/admin/").content.decode()
    assert 'href="/admin/masking/mapping/"' in content
    assert 'href="/admin/masking/auditlog/"' in content


def test_a_viewer_lists_mappings_with_kind_and_length_but_never_the_original(viewer_client, two_mappings):
    content = viewer_client.get(URL).content.decode()
    assert "AWS_EC2_001" in content and "AWS_IAM_ROLE_001" in content
    assert "ec2_instance" in content and "iam_role_arn" in content
    assert f"hidden · {len(EC2)} characters" in content
    assert EC2 not in content and ROLE not in content


def test_a_viewer_finds_a_mapping_by_token_without_seeing_its_original(viewer_client, two_mappings):
    response = search(viewer_client, "token", "AWS_EC2_001")
    content = response.content.decode()
    assert "AWS_EC2_001" in content and "AWS_IAM_ROLE_001" not in content
    assert EC2 not in content


def test_a_token_search_tolerates_markdown_escaped_underscores(viewer_client, two_mappings):
    response = viewer_client.get(URL, {"tenant": "default", "query": r"AWS\_EC2\_001"})
    assert "<code>AWS_EC2_001</code>" in response.content.decode()


def test_a_viewer_may_not_search_by_original_and_the_value_is_not_echoed(viewer_client, two_mappings):
    for search_by in ("original", "prefix"):
        response = search(viewer_client, search_by, EC2)
        assert response.status_code == 403
        assert EC2 not in response.content.decode()


def test_a_viewer_is_not_offered_searching_by_original(viewer_client):
    content = viewer_client.get(URL).content.decode()
    assert 'value="original"' not in content and 'value="prefix"' not in content


def test_an_operator_finds_the_token_of_an_exact_original(operator_client, two_mappings):
    response = search(operator_client, "original", EC2)
    content = response.content.decode()
    assert "<code>AWS_EC2_001</code>" in content and "AWS_IAM_ROLE_001" not in content


def test_an_operator_finds_mappings_by_original_prefix(operator_client, put_mapping):
    put_mapping("i-0aaaaaaaaaaaaaaaa", "AWS_EC2_001")
    put_mapping("i-0aaaaaaaaaaaaaaab", "AWS_EC2_002")
    put_mapping("i-0bbbbbbbbbbbbbbbb", "AWS_EC2_003")
    response = search(operator_client, "prefix", "i-0a")
    content = response.content.decode()
    assert "AWS_EC2_001" in content and "AWS_EC2_002" in content and "AWS_EC2_003" not in content


def test_even_an_operator_sees_originals_hidden_until_revealing_them(operator_client, superuser_client, two_mappings):
    for client in (operator_client, superuser_client):
        content = client.get(URL).content.decode()
        assert "AWS_EC2_001" in content and EC2 not in content


def test_the_kind_filter_lists_only_that_kind(viewer_client, two_mappings):
    content = viewer_client.get(URL, {"tenant": "default", "kind": "IAM_ROLE"}).content.decode()
    assert "AWS_IAM_ROLE_001" in content and "AWS_EC2_001" not in content


def test_the_tenant_selector_shows_that_tenants_mappings_only(viewer_client, put_mapping):
    Tenant.objects.create(slug="blue", name="Blue team")
    put_mapping(EC2, "AWS_EC2_001", tenant="default")
    put_mapping(EC2, "AWS_EC2_002", tenant="blue")
    content = viewer_client.get(URL, {"tenant": "blue"}).content.decode()
    assert "AWS_EC2_002" in content and "AWS_EC2_001" not in content


def test_an_unknown_tenant_shows_nothing(viewer_client, two_mappings):
    response = viewer_client.get(URL, {"tenant": "nope"})
    assert response.status_code == 200
    assert "AWS_EC2_001" not in response.content.decode()


def test_a_large_listing_is_paginated_with_a_next_page_button(viewer_client, redis_client):
    with redis_client.pipeline() as pipe:
        for n in range(1, 301):
            pipe.set(f"aws:unmask:AWS_EC2_{n:03d}", f"i-{n:017x}", ex=3600)
        pipe.execute()
    response = viewer_client.get(URL)
    first_page = response.context["page"]
    assert 50 <= len(first_page.mappings) < 300
    assert 'id="next-page"' in response.content.decode()
    second = viewer_client.post(URL, {"action": "search", "tenant": "default", "cursor": first_page.next_cursor})
    first_tokens = {m.token for m in first_page.mappings}
    assert {m.token for m in second.context["page"].mappings} - first_tokens


def test_a_search_by_original_is_refused_in_a_url_even_for_an_operator(operator_client, two_mappings):
    response = operator_client.get(URL, {"tenant": "default", "search_by": "original", "query": EC2})
    assert response.status_code == 403
    assert EC2 not in response.content.decode()
