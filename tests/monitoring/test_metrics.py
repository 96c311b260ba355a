import asyncio
import re

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings
from prometheus_client.parser import text_string_to_metric_families

from masking import counters
from monitoring import metrics
from tests.live import gateway_process

ELSEWHERE = {"REMOTE_ADDR": "10.1.2.3"}


def scrape(client, **extra) -> str:
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def samples(text: str) -> dict[tuple, float]:
    """{(sample name, sorted label pairs): value}"""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def record_store_traffic(redis_client):
    """Counters as the store writes them (docs/contracts.md)."""
    counts = {
        "mask_operations": 6,
        "unmask_operations": 2,
        "identifiers": 9,
        "kind:ec2_instance": 7,
        "kind:account_id": 2,
        "requests": 3,
        "status:200": 2,
        "status:502": 1,
        "upstream_errors": 1,
        "latency_ms_count": 3,
        "latency_bucket:10": 1,
        "latency_bucket:25": 1,
        "latency_bucket:50": 2,
        "latency_bucket:100": 2,
        "latency_bucket:250": 3,
        "latency_bucket:+Inf": 3,
    }
    for field, n in counts.items():
        redis_client.hincrby("aws:stats:counts", field, n)
    for le in ("500", "1000", "2500", "5000", "10000"):
        redis_client.hincrby("aws:stats:counts", f"latency_bucket:{le}", 3)
    redis_client.hincrbyfloat("aws:stats:counts", "latency_ms_sum", 250.5)


@pytest.mark.django_db
def test_an_unauthenticated_remote_client_is_refused(client):
    response = client.get("/metrics", **ELSEWHERE)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.django_db
def test_without_a_token_a_client_on_this_host_may_scrape(client):
    assert "aws_masker_redis_up 1.0" in scrape(client)


@pytest.mark.django_db
def test_a_local_reverse_proxy_does_not_count_as_this_host(client):
    response = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert response.status_code == 401


@pytest.mark.django_db
@override_settings(METRICS_TOKEN="scrape-secret")
def test_with_a_token_only_that_bearer_token_or_staff_may_scrape(client):
    assert client.get("/metrics").status_code == 401  # loopback is no longer enough
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}, **ELSEWHERE).status_code == 401
    scrape(client, headers={"Authorization": "Bearer scrape-secret"}, **ELSEWHERE)
    client.force_login(get_user_model().objects.create_user("op", password="pw", is_staff=True))
    scrape(client, **ELSEWHERE)


@pytest.mark.django_db
def test_a_logged_in_non_staff_user_may_not_scrape(client):
    client.force_login(get_user_model().objects.create_user("viewer", password="pw"))
    assert client.get("/metrics", **ELSEWHERE).status_code == 401


@pytest.mark.django_db
def test_the_store_counters_become_counters_and_a_histogram(client, redis_client):
    record_store_traffic(redis_client)
    values = samples(scrape(client))
    assert values[("aws_masker_mask_operations_total", ())] == 6
    assert values[("aws_masker_unmask_operations_total", ())] == 2
    assert values[("aws_masker_identifiers_by_kind_total", (("kind", "ec2_instance"),))] == 7
    assert values[("aws_masker_proxy_requests_total", (("status", "502"),))] == 1
    assert values[("aws_masker_upstream_errors_total", ())] == 1
    assert values[("aws_masker_request_duration_seconds_bucket", (("le", "0.05"),))] == 2
    assert values[("aws_masker_request_duration_seconds_bucket", (("le", "+Inf"),))] == 3
    assert values[("aws_masker_request_duration_seconds_count", ())] == 3
    assert values[("aws_masker_request_duration_seconds_sum", ())] == pytest.approx(0.2505)


@pytest.mark.django_db
def test_observations_from_callers_appear_in_the_exposition(client):
    metrics.observe_masking(0.003, source="proxy")
    metrics.observe_masking(0.0004, source="proxy")
    metrics.observe_unmasking(0.02, source="api")
    metrics.observe_upstream(1.7)
    metrics.observe_event("masking", published=True)
    metrics.observe_event("alert", published=False)
    metrics.note_redis_error("mask")
    metrics.observe_event("masking", published=True)  # carries the buffered Redis error along
    values = samples(scrape(client))
    masking = ("aws_masker_masking_duration_seconds_bucket", (("le", "0.005"), ("source", "proxy")))
    assert values[masking] == 2
    assert values[("aws_masker_masking_duration_seconds_count", (("source", "proxy"),))] == 2
    assert values[("aws_masker_unmasking_duration_seconds_count", (("source", "api"),))] == 1
    assert values[("aws_masker_upstream_latency_seconds_bucket", (("le", "1.0"),))] == 0
    assert values[("aws_masker_upstream_latency_seconds_bucket", (("le", "2.5"),))] == 1
    assert values[("aws_masker_upstream_latency_seconds_sum", ())] == pytest.approx(1.7)
    assert values[("aws_masker_events_total", (("outcome", "published"), ("type", "masking")))] == 2
    assert values[("aws_masker_events_total", (("outcome", "failed"), ("type", "alert")))] == 1
    assert values[("aws_masker_redis_errors_total", (("operation", "mask"),))] == 1


def test_upstream_latencies_noted_in_a_loop_add_up_as_observed_ones(redis_client):
    latencies = [0.05, 0.3, 0.3, 7.0, 1000.0, -0.01]
    for latency in latencies:
        metrics.observe_upstream(latency)
    observed = redis_client.hgetall(metrics.METRICS_KEY)
    redis_client.delete(metrics.METRICS_KEY)

    async def note():
        for latency in latencies:
            metrics.note_upstream(latency)

    asyncio.run(note())  # the loop's writer adds them up when the loop ends
    noted = redis_client.hgetall(metrics.METRICS_KEY)
    total = b"upstream_latency:sum"
    assert float(noted.pop(total)) == pytest.approx(float(observed.pop(total)))
    assert noted == observed
    assert observed[b"upstream_latency:count"] == b"6" and observed[b"upstream_latency:bucket:0.5"] == b"2"


def test_the_async_variants_record_the_same_way(redis_client):
    async def observe():
        await metrics.aobserve_masking(0.001, source="cli")
        await metrics.aobserve_unmasking(0.001)
        await metrics.aobserve_upstream(0.2)
        await metrics.aobserve_event("unmasking", published=True)

    asyncio.run(observe())
    stored = redis_client.hgetall(metrics.METRICS_KEY)
    assert stored[b"masking_duration:cli:count"] == b"1"
    assert stored[b"unmasking_duration:api:count"] == b"1"
    assert stored[b"upstream_latency:bucket:0.25"] == b"1"
    assert stored[b"events:unmasking:published"] == b"1"


def test_a_batch_of_published_events_is_noted_as_each_of_them_would_be(redis_client):
    batch = [("masking", 0.003, "proxy", True), ("unmasking", 0.0004, "proxy", True)]
    batch += [("masking", 0.02, "i-0123456789abcdef0", False), ("alert", 0.0, "proxy", True)]

    async def each():
        for event_type, duration_s, source, published in batch:
            if event_type == "masking":
                metrics.note_masking(duration_s, source)
            elif event_type == "unmasking":
                metrics.note_unmasking(duration_s, source)
            metrics.note_event(event_type, published)

    async def together():
        metrics.note_events(batch)

    asyncio.run(each())  # the loop writes what it noted as it shuts down
    one_by_one = redis_client.hgetall(metrics.METRICS_KEY)
    redis_client.delete(metrics.METRICS_KEY)
    asyncio.run(together())

    assert redis_client.hgetall(metrics.METRICS_KEY) == one_by_one
    assert one_by_one[b"masking_duration:proxy:bucket:0.005"] == b"1"
    assert one_by_one[b"masking_duration:other:count"] == b"1"
    assert one_by_one[b"events:masking:failed"] == b"1" and one_by_one[b"events:alert:published"] == b"1"


@pytest.mark.django_db
def test_labels_are_bounded_and_never_carry_what_callers_pass_in(client, redis_client):
    record_store_traffic(redis_client)
    metrics.observe_masking(0.001, source="i-0123456789abcdef0")
    metrics.observe_event("arn:aws:iam::123456789012:role/x", published=True)
    metrics.note_redis_error("GET aws:mask:i-0123456789abcdef0")
    metrics.observe_upstream(0.1)
    text = scrape(client)
    assert "0123456789abcdef0" not in text and "123456789012" not in text and "aws:mask" not in text
    allowed = re.compile(r"^(le|kind|status|source|type|outcome|operation)$")
    for (_, labels), _value in samples(text).items():
        for name, value in labels:
            assert allowed.match(name)
            assert re.fullmatch(r"[a-z0-9_.+Inf]{1,40}", value), value


@pytest.mark.django_db
def test_with_redis_down_the_scrape_says_so_and_observations_wait(client, redis_server, monkeypatch):
    monkeypatch.setattr(counters, "RETRY_AFTER_FAILURE_S", 0)
    redis_server.stop()
    metrics.observe_upstream(0.3)
    metrics.note_redis_error("publish")
    text = scrape(client)
    assert "aws_masker_redis_up 0.0" in text
    redis_server.start()
    from masking.connection import reset_clients

    reset_clients()
    values = samples(scrape(client))
    assert values[("aws_masker_redis_up", ())] == 1
    assert values[("aws_masker_upstream_latency_seconds_count", ())] == 1
    assert values[("aws_masker_redis_errors_total", (("operation", "publish"),))] == 1
    assert values[("aws_masker_redis_errors_total", (("operation", "metrics"),))] >= 1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_every_uvicorn_worker_answers_with_the_same_cluster_wide_totals(tmp_path, redis_client):
    record_store_traffic(redis_client)
    with gateway_process(tmp_path, workers=2) as url:
        scrapes = {httpx.get(f"{url}/metrics", timeout=10).text for _ in range(8)}
    totals = {samples(text)[("aws_masker_mask_operations_total", ())] for text in scrapes}
    assert totals == {6}


@pytest.mark.django_db
def test_whole_and_fractional_durations_add_up_in_any_order(client):
    for latency in (1.0, 0.5, 1.0, 2.0):
        metrics.observe_upstream(latency)
    values = samples(scrape(client))
    assert values[("aws_masker_upstream_latency_seconds_sum", ())] == pytest.approx(4.5)
    assert values[("aws_masker_upstream_latency_seconds_count", ())] == 4
    assert ("aws_masker_redis_errors_total", (("operation", "metrics"),)) not in values
