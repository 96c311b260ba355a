import pytest
from django.contrib.auth import get_user_model

from tests.browser import chromium_page, log_in, screenshot
from tests.live import gateway_process


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_operator_logs_into_the_admin_in_a_real_browser(tmp_path):
    get_user_model().objects.create_superuser("operator", None, "correct horse battery")
    with gateway_process(tmp_path) as url, chromium_page() as page:
        log_in(page, url, "operator", "correct horse battery")
        assert "Site administration" in page.content()
        screenshot(page, "admin-home")
