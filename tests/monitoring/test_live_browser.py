"""The live events page in headless Chromium, against a real gateway process."""

import json
import re
import subprocess
import sys
import uuid

import httpx
import pytest
from django.contrib.auth import get_user_model

from tests.browser import chromium_page, log_in, screenshot
from tests.live import gateway_process

PASSWORD = "correct horse battery"


def an_event(**fields) -> dict:
    event = {
        "event_id": uuid.uuid4().hex,
        "event_type": "masking",
        "timestamp": "2026-11-25T21:00:00.123Z",
        "request_id": uuid.uuid4().hex[:12],
        "tenant": "default",
        "source": "cli",
        "counts_by_kind": {"ec2_instance": 2, "s3_bucket": 1},
        "total": 3,
        "duration_ms": 1.25,
    }
    event.update(fields)
    return event


def publish_from_another_process(*events: dict) -> None:
    script = (
        "import os, sys, redis\n"
        "client = redis.Redis.from_url(os.environ['REDIS_URL'])\n"
        "for event in sys.argv[1:]: client.publish('aws-masker:events:masking', event)\n"
    )
    subprocess.run([sys.executable, "-c", script, *map(json.dumps, events)], check=True, timeout=30)


def mask_through_the_api(base_url: str, page, text: str, request_id: str) -> None:
    """A POST /api/v1/mask from this test process, as the operator whose browser is on the page."""
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    headers = {"X-CSRFToken": cookies["csrftoken"], "x-request-id": request_id}
    response = httpx.post(f"{base_url}/api/v1/mask", json={"text": text}, cookies=cookies, headers=headers, timeout=30)
    assert response.status_code == 200, response.text


def open_live_page(page, url: str, query: str = "") -> None:
    page.goto(f"{url}/dashboard/live/{query}")
    page.wait_for_selector("#conn-state[data-state=live]")


@pytest.fixture
def operator(transactional_db):
    return get_user_model().objects.create_user("operator", password=PASSWORD, is_staff=True)


@pytest.mark.browser
@pytest.mark.slow
def test_an_operator_sees_a_masking_appear_on_the_live_page_without_reloading(tmp_path, operator):
    original = "i-0123456789abcdef0"
    with gateway_process(tmp_path) as url, chromium_page() as page:
        log_in(page, url, "operator", PASSWORD)
        open_live_page(page, url)
        mask_through_the_api(url, page, f"{original} is down", request_id="browser-mask-1")
        row = page.wait_for_selector("#rows tr:has-text('browser-mask-1')")
        text = row.inner_text()
        assert "masking" in text and "api" in text and "×1" in text and " ms" in text
        assert original not in page.content()
        assert page.is_hidden("#empty")
        screenshot(page, "live-events")


@pytest.mark.browser
@pytest.mark.slow
def test_an_event_from_another_process_shows_its_kinds_counts_and_duration(tmp_path, operator):
    event = an_event()
    with gateway_process(tmp_path) as url, chromium_page() as page:
        log_in(page, url, "operator", PASSWORD)
        open_live_page(page, url)
        publish_from_another_process(event)
        row = page.wait_for_selector(f'#rows tr[data-event-id="{event["event_id"]}"]')
        text = row.inner_text()
        assert "ec2_instance ×2" in text and "s3_bucket ×1" in text
        assert event["request_id"] in text and "1.3 ms" in text


@pytest.mark.browser
@pytest.mark.slow
def test_pause_holds_new_rows_until_resume_and_filters_apply_on_the_server(tmp_path, operator):
    held = an_event()
    with gateway_process(tmp_path) as url, chromium_page() as page:
        log_in(page, url, "operator", PASSWORD)
        open_live_page(page, url)

        page.click("#pause")
        publish_from_another_process(held)
        page.wait_for_selector("#pause:has-text('Resume (1 new)')")
        assert page.locator("#rows tr").count() == 0
        page.click("#pause")
        page.wait_for_selector(f'#rows tr[data-event-id="{held["event_id"]}"]')

        page.fill("input[name=tenant]", "acme")
        page.click("#filters button[type=submit]")
        page.wait_for_url(f"{url}/dashboard/live/?tenant=acme")
        page.wait_for_selector("#conn-state[data-state=live]")
        acme, globex = an_event(tenant="acme"), an_event(tenant="globex")
        publish_from_another_process(globex, acme)
        page.wait_for_selector(f'#rows tr[data-event-id="{acme["event_id"]}"]')
        assert page.locator("#rows tr").count() == 1
        screenshot(page, "live-events-filtered")


@pytest.mark.browser
@pytest.mark.slow
def test_the_page_shows_when_redis_is_unavailable_and_goes_live_again(tmp_path, operator, redis_server):
    with gateway_process(tmp_path) as url, chromium_page() as page:
        log_in(page, url, "operator", PASSWORD)
        open_live_page(page, url)
        redis_server.stop()
        page.wait_for_selector("#conn-state[data-state=degraded]", timeout=30_000)
        screenshot(page, "live-events-redis-down")
        redis_server.start()
        page.wait_for_selector("#conn-state[data-state=live]", timeout=30_000)
        event = an_event()
        publish_from_another_process(event)
        page.wait_for_selector(f'#rows tr[data-event-id="{event["event_id"]}"]')


@pytest.mark.browser
@pytest.mark.slow
def test_a_visitor_who_is_not_logged_in_is_sent_to_the_login_page(tmp_path, transactional_db):
    with gateway_process(tmp_path) as url, chromium_page() as page:
        page.goto(f"{url}/dashboard/live/")
        assert page.url.startswith(f"{url}/admin/login/")


@pytest.mark.browser
@pytest.mark.slow
def test_a_dropped_socket_reconnects_and_a_signed_out_page_stops_retrying(tmp_path, operator):
    routes = []

    def through_the_server(route) -> None:
        route.connect_to_server()
        routes.append(route)

    with gateway_process(tmp_path) as url, chromium_page() as page:
        log_in(page, url, "operator", PASSWORD)
        page.route_web_socket(re.compile(r"/ws/events/"), through_the_server)
        open_live_page(page, url)

        routes[-1].close(code=4000, reason="network blip")
        page.wait_for_selector("#conn-state[data-state=reconnecting]")
        page.wait_for_selector("#conn-state[data-state=live]")
        assert len(routes) == 2

        page.context.clear_cookies()
        routes[-1].close(code=4000, reason="network blip")
        page.wait_for_selector("#conn-state[data-state=closed]:has-text('log in again')")
        screenshot(page, "live-events-signed-out")
