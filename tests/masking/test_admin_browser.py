import httpx
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from masking.models import ApiClient, AuditLog, Tenant
from tests.browser import chromium_page, log_in, screenshot
from tests.live import gateway_process
from tests.masking.conftest import OPERATOR_PERMS

EC2 = "i-0123456789abcdef0"
PASSWORD = "correct horse battery staple"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_operator_finds_reveals_and_revokes_a_mapping_in_a_real_browser(tmp_path):
    tenant, _ = Tenant.objects.get_or_create(slug="default", defaults={"name": "Default"})
    _, key = ApiClient.objects.create_with_key("browser-test", tenant)
    operator = get_user_model().objects.create_user("olivia", password=PASSWORD, is_staff=True)
    operator.user_permissions.set(Permission.objects.filter(codename__in=OPERATOR_PERMS))

    with gateway_process(tmp_path) as url, chromium_page() as page:
        api = httpx.Client(base_url=url, headers={"x-api-key": key})
        token = api.post("/api/v1/mask", json={"text": EC2}).json()["text"]
        assert token.startswith("AWS_EC2_")

        log_in(page, url, "olivia", PASSWORD)
        page.click("text=Mappings")
        page.fill("input[name=query]", token)
        page.click("#lookup-form input[type=submit]")
        row = page.locator("#result_list tbody tr")
        assert row.count() == 1
        assert token in row.inner_text() and EC2 not in page.content()

        page.check(f"input.action-select[value='{token}']")
        page.select_option("#mapping-action", "reveal")
        page.click("#mapping-go")
        page.wait_for_selector("span.original")
        assert page.inner_text("span.original") == EC2
        screenshot(page, "admin-mapping-revealed")

        page.select_option("#mapping-action", "revoke")
        page.click("#mapping-go")
        page.wait_for_selector(".messagelist")
        assert f"Revoked 1 mapping(s): {token}." in page.inner_text(".messagelist")
        assert EC2 not in page.content()
        screenshot(page, "admin-mapping-revoked")

        restored = api.post("/api/v1/unmask", json={"text": f"restart {token}"}).json()
        assert restored == {"text": f"restart {token}", "unresolved": [token]}

    # Playwright's sync API runs an event loop in this thread, so the ORM is used only afterwards.
    audited = AuditLog.objects.filter(token=token, username="olivia").values_list("action", "client_ip")
    assert sorted(audited) == [("reveal", "127.0.0.1"), ("revoke", "127.0.0.1")]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_rule_form_previews_what_a_pattern_would_mask_in_a_real_browser(tmp_path):
    get_user_model().objects.create_superuser("root", None, PASSWORD)
    with gateway_process(tmp_path) as url, chromium_page() as page:
        log_in(page, url, "root", PASSWORD)
        page.goto(f"{url}/admin/masking/customrule/add/")
        page.fill("#id_pattern", r"\bOPS-[0-9]{3,6}\b")
        page.fill("#id_kind", "ops_ticket")
        page.fill("#id_prefix", "OPS")
        page.fill("#rule-test-text", "OPS-123 broke i-0123456789abcdef0")
        page.click("#rule-test-run")
        page.wait_for_function("document.getElementById('rule-test-output').textContent.length > 0")
        assert page.inner_text("#rule-test-output") == "AWS_OPS_001 broke AWS_EC2_001"
        assert "OPS-123 (ops_ticket)" in page.inner_text("#rule-test-summary")
        screenshot(page, "admin-custom-rule-test")
