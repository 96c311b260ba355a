import pytest
from django.test import RequestFactory

from masking import audit
from masking.models import AuditLog

MAPPINGS = "/admin/masking/mapping/"
AUDIT = "/admin/masking/auditlog/"
EC2 = "i-0123456789abcdef0"

pytestmark = pytest.mark.django_db


@pytest.fixture
def audited(operator_client, put_mapping):
    """One of each audited action by the operator."""
    put_mapping(EC2, "AWS_EC2_001")
    for action in ("reveal", "extend", "export", "revoke"):
        operator_client.post(
            MAPPINGS, {"action": action, "tenant": "default", "tokens": ["AWS_EC2_001"], "extend_seconds": 3600}
        )


def test_every_reveal_revoke_extend_and_export_leaves_one_row(audited):
    assert sorted(AuditLog.objects.values_list("action", flat=True)) == ["export", "extend", "reveal", "revoke"]


def test_no_audit_row_holds_the_original_in_any_field(audited):
    for row in AuditLog.objects.values():
        assert not any(EC2 in str(value) for value in row.values())


def test_the_audit_log_is_read_only_even_for_a_superuser(superuser_client, audited):
    row = AuditLog.objects.first()
    assert superuser_client.get(f"{AUDIT}add/").status_code == 403
    assert superuser_client.post(f"{AUDIT}{row.pk}/delete/", {"post": "yes"}).status_code == 403
    superuser_client.post(f"{AUDIT}{row.pk}/change/", {"username": "someone-else"})
    assert AuditLog.objects.get(pk=row.pk).username == "olivia"
    assert superuser_client.get(f"{AUDIT}{row.pk}/change/").status_code == 200


def test_the_audit_log_filters_by_action_and_tenant(viewer_client, audited):
    response = viewer_client.get(AUDIT, {"action": "revoke", "tenant": "default"})
    assert [row.action for row in response.context["cl"].result_list] == ["revoke"]


def test_a_viewer_reads_the_audit_log_without_ever_seeing_an_original(viewer_client, audited):
    response = viewer_client.get(AUDIT)
    content = response.content.decode()
    assert response.status_code == 200
    assert "AWS_EC2_001" in content and "olivia" in content and "203.0.113.7" in content
    assert EC2 not in content


def test_an_anonymous_visitor_cannot_read_the_audit_log(anon_client, audited):
    assert anon_client.get(AUDIT).status_code == 302


def test_the_client_ip_is_the_peer_address_not_a_forwarded_header(operator):
    request = RequestFactory().post("/", REMOTE_ADDR="198.51.100.1", HTTP_X_FORWARDED_FOR="10.9.9.9")
    request.user = operator
    [row] = audit.record(request, AuditLog.Action.REVEAL, "default", ["AWS_EC2_001"])
    assert row.client_ip == "198.51.100.1"
