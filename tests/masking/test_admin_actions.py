import pytest

from masking.models import AuditLog

URL = "/admin/masking/mapping/"
EC2 = "i-0123456789abcdef0"
VPC = "vpc-0123456789abcdef0"

pytestmark = pytest.mark.django_db


@pytest.fixture
def mapped(put_mapping):
    put_mapping(EC2, "AWS_EC2_001", ttl=600)
    put_mapping(VPC, "AWS_VPC_001", ttl=600)


def act(client, action, tokens, **extra):
    return client.post(URL, {"action": action, "tenant": "default", "tokens": tokens, **extra})


def test_an_operator_reveals_selected_originals_and_it_is_audited(operator, operator_client, mapped):
    response = act(operator_client, "reveal", ["AWS_EC2_001"])
    content = response.content.decode()
    assert response.status_code == 200
    assert EC2 in content and VPC not in content
    assert "no-store" in response["Cache-Control"]
    row = AuditLog.objects.get()
    assert (row.user, row.username, row.action, row.token, row.tenant, row.client_ip) == (
        operator,
        "olivia",
        "reveal",
        "AWS_EC2_001",
        "default",
        "203.0.113.7",
    )


def test_a_superuser_may_reveal_too(superuser_client, mapped):
    assert EC2 in act(superuser_client, "reveal", ["AWS_EC2_001"]).content.decode()


def test_a_viewer_cannot_reveal_and_nothing_is_audited(viewer_client, mapped):
    response = act(viewer_client, "reveal", ["AWS_EC2_001", "AWS_VPC_001"])
    assert response.status_code == 403
    assert EC2 not in response.content.decode() and VPC not in response.content.decode()
    assert not AuditLog.objects.exists()


def test_a_viewer_is_offered_neither_reveal_revoke_nor_extend(viewer_client, mapped):
    content = viewer_client.get(URL).content.decode()
    assert '<option value="export">' in content
    for action in ("reveal", "revoke", "extend"):
        assert f'<option value="{action}">' not in content


def test_an_operator_revokes_a_mapping_in_both_directions(operator_client, mapped, redis_client):
    response = act(operator_client, "revoke", ["AWS_EC2_001"])
    assert response.status_code == 302
    assert redis_client.get("aws:unmask:AWS_EC2_001") is None
    assert redis_client.get(f"aws:mask:{EC2}") is None
    assert redis_client.get("aws:unmask:AWS_VPC_001") == VPC.encode()
    assert AuditLog.objects.get().action == "revoke"
    page = operator_client.get(response["Location"]).content.decode()
    assert "Revoked 1 mapping(s): AWS_EC2_001." in page


def test_a_viewer_cannot_revoke(viewer_client, mapped, redis_client):
    assert act(viewer_client, "revoke", ["AWS_EC2_001"]).status_code == 403
    assert redis_client.get("aws:unmask:AWS_EC2_001") == EC2.encode()


def test_revoking_a_token_that_is_gone_is_not_audited(operator_client, mapped):
    act(operator_client, "revoke", ["AWS_EC2_999"])
    assert not AuditLog.objects.exists()


def test_an_operator_extends_the_ttl_of_both_directions(operator_client, mapped, redis_client):
    act(operator_client, "extend", ["AWS_EC2_001"], extend_seconds=86400)
    assert redis_client.ttl("aws:unmask:AWS_EC2_001") > 86400
    assert redis_client.ttl(f"aws:mask:{EC2}") > 86400
    row = AuditLog.objects.get()
    assert (row.action, row.detail) == ("extend", "+86400s")


def test_a_viewer_cannot_extend(viewer_client, mapped, redis_client):
    assert act(viewer_client, "extend", ["AWS_EC2_001"], extend_seconds=86400).status_code == 403
    assert redis_client.ttl("aws:unmask:AWS_EC2_001") <= 600


def test_an_extension_needs_a_sane_number_of_seconds(operator_client, mapped, redis_client):
    for seconds in ("", "5", "999999999999"):
        act(operator_client, "extend", ["AWS_EC2_001"], extend_seconds=seconds)
    assert redis_client.ttl("aws:unmask:AWS_EC2_001") <= 600
    assert not AuditLog.objects.exists()


def test_an_operator_exports_the_selection_with_originals_and_each_row_is_audited(operator_client, mapped):
    response = act(operator_client, "export", ["AWS_EC2_001", "AWS_VPC_001"])
    assert response["Content-Type"].startswith("text/csv")
    body = response.content.decode()
    assert EC2 in body and VPC in body
    assert sorted(AuditLog.objects.values_list("token", "action", "detail")) == [
        ("AWS_EC2_001", "export", "with originals"),
        ("AWS_VPC_001", "export", "with originals"),
    ]


def test_a_viewer_exports_without_originals(viewer_client, mapped):
    response = act(viewer_client, "export", ["AWS_EC2_001", "AWS_VPC_001"])
    body = response.content.decode()
    assert "AWS_EC2_001,ec2_instance,default," in body
    assert EC2 not in body and VPC not in body
    assert set(AuditLog.objects.values_list("detail", flat=True)) == {"originals hidden"}


def test_an_anonymous_visitor_cannot_act_at_all(anon_client, mapped, redis_client):
    for action in ("reveal", "revoke", "extend", "export"):
        response = act(anon_client, action, ["AWS_EC2_001"], extend_seconds=3600)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
        assert EC2 not in response.content.decode()
    assert redis_client.get("aws:unmask:AWS_EC2_001") == EC2.encode()
    assert not AuditLog.objects.exists()


def test_an_action_without_a_valid_selection_does_nothing(operator_client, mapped):
    for tokens in ([], ["not a token"], ["AWS_EC2_001", "aws:unmask:*"]):
        response = act(operator_client, "revoke", tokens)
        assert response.status_code == 302
    assert not AuditLog.objects.exists()


def test_actions_in_one_tenant_do_not_touch_another(operator_client, put_mapping, redis_client):
    from masking.models import Tenant

    Tenant.objects.create(slug="blue", name="Blue")
    put_mapping(EC2, "AWS_EC2_001", tenant="default")
    put_mapping(EC2, "AWS_EC2_001", tenant="blue")
    operator_client.post(URL, {"action": "revoke", "tenant": "blue", "tokens": ["AWS_EC2_001"]})
    assert redis_client.get("aws:t:blue:unmask:AWS_EC2_001") is None
    assert redis_client.get("aws:unmask:AWS_EC2_001") == EC2.encode()
    assert AuditLog.objects.get().tenant == "blue"


def test_a_viewer_never_receives_an_original_from_any_admin_page_or_action(viewer_client, mapped, operator_client):
    act(operator_client, "reveal", ["AWS_EC2_001"])  # leaves audit rows for the audit pages
    pages = [
        viewer_client.get("/admin/"),
        viewer_client.get("/admin/masking/"),
        viewer_client.get(URL),
        viewer_client.get(URL, {"tenant": "default", "kind": "EC2"}),
        viewer_client.get(URL, {"tenant": "default", "query": "AWS_EC2_001"}),
        viewer_client.post(URL, {"action": "search", "tenant": "default", "query": "AWS_VPC_001"}),
        viewer_client.post(URL, {"action": "search", "tenant": "default", "search_by": "prefix", "query": "i-"}),
        viewer_client.get("/admin/masking/auditlog/"),
        viewer_client.get(f"/admin/masking/auditlog/{AuditLog.objects.first().pk}/change/"),
        viewer_client.get("/admin/masking/kindpolicy/"),
        viewer_client.get("/admin/masking/customrule/"),
    ]
    for action in ("reveal", "revoke", "extend", "export"):
        pages.append(act(viewer_client, action, ["AWS_EC2_001", "AWS_VPC_001"], extend_seconds=3600))
    for response in pages:
        body = response.content.decode()
        assert EC2 not in body and VPC not in body, response.request["PATH_INFO"]
    assert {response.status_code for response in pages} <= {200, 403}
