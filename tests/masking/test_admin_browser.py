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
