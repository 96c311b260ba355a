import json

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from masking import events
from masking.engine import scan
from masking.models import ApiClient, Tenant
from tests.live import gateway_process

pytestmark = pytest.mark.django_db


def default_tenant() -> Tenant:
    # A transactional test flushes the database, the data migration's default tenant included.
    return Tenant.objects.get_or_create(slug="default", defaults={"name": "Default"})[0]


EC2 = "i-0123456789abcdef0"
VPC = "vpc-0a1b2c3d4e5f67890"
ROLE = "arn:aws:iam::123456789012:role/deploy-bot"
ACCESS_KEY = "ASIAY34FZKBOKMUTVV7A"
CLOUDTRAIL = json.dumps(
    {
        "eventVersion": "1.08",
        "userIdentity": {"type": "AssumedRole", "arn": ROLE, "accessKeyId": ACCESS_KEY},
        "eventTime": "2026-11-25T10:00:00Z",
        "eventSource": "ec2.amazonaws.com",
        "eventName": "StopInstances",
        "awsRegion": "eu-west-1",
        "requestParameters": {"instancesSet": {"items": [{"instanceId": EC2}]}},
        "responseElements": {"instancesSet": {"items": [{"instanceId": EC2, "vpcId": VPC}]}},
    },
    indent=2,
)


@pytest.fixture
def api_key() -> str:
    return ApiClient.objects.create_with_key("tests", default_tenant())[1]


@pytest.fixture
def api(api_key):
    """POST JSON as a program holding a valid key."""
    client = Client()

    def post(path: str, body, **headers):
        data = body if isinstance(body, bytes | str) else json.dumps(body)
        return client.post(path, data, content_type="application/json", headers={"x-api-key": api_key, **headers})

    return post


@pytest.fixture
def subscriber(redis_client):
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("aws-masker:events:masking")
    yield pubsub
    pubsub.close()


def next_message(pubsub) -> bytes:
    for _ in range(50):
        message = pubsub.get_message(timeout=0.1)
        if message:
            return message["data"]
    raise AssertionError("no event")


def assert_error(response, status: int, error_type: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type
    assert body["error"]["message"]
    return body


def test_a_cloudtrail_record_round_trips_through_the_api(api, redis_client, subscriber):
    originals = {CLOUDTRAIL[m.start : m.end] for m in scan(CLOUDTRAIL)}
    assert {EC2, VPC, ROLE, ACCESS_KEY} <= originals

    response = api("/api/v1/mask", {"text": CLOUDTRAIL}, **{"x-request-id": "trail-1"})

    assert response.status_code == 200
    masked = response.json()["text"]
    for original in originals:
        assert original not in masked
        token = redis_client.get(f"aws:mask:{original}").decode()
        assert redis_client.ttl(f"aws:mask:{original}") > 0
        assert redis_client.get(f"aws:unmask:{token}") == original.encode()
        assert redis_client.ttl(f"aws:unmask:{token}") > 0
    for entity in response.json()["entities"]:
        assert masked[entity["start"] : entity["end"]] == entity["token"]

    restored = api("/api/v1/unmask", {"text": masked})
    assert restored.status_code == 200
    assert restored.json() == {"text": CLOUDTRAIL, "unresolved": []}
    assert restored.json()["text"].encode() == CLOUDTRAIL.encode()

    raw = next_message(subscriber)
    event = json.loads(raw)
    assert event["request_id"] == "trail-1"
    assert event["source"] == "api"
    assert event["total"] == len(response.json()["entities"])
    assert not any(original.encode() in raw for original in originals)
    assert response["x-request-id"] == "trail-1"


def test_it_masks_every_string_of_a_json_document_and_says_where(api):
    response = api("/api/v1/mask", {"json": {"instances": [EC2, {"vpc": VPC}], "count": 2}})

    assert response.status_code == 200
    body = response.json()
    assert body["json"] == {"instances": ["AWS_EC2_001", {"vpc": "AWS_VPC_001"}], "count": 2}
    assert body["entities"] == [
        {"token": "AWS_EC2_001", "kind": "ec2_instance", "start": 0, "end": 11, "path": ["instances", 0]},
        {"token": "AWS_VPC_001", "kind": "vpc", "start": 0, "end": 11, "path": ["instances", 1, "vpc"]},
    ]
    restored = api("/api/v1/unmask", {"json": body["json"]})
    assert restored.json() == {"json": {"instances": [EC2, {"vpc": VPC}], "count": 2}, "unresolved": []}


def test_unknown_tokens_are_left_in_place_and_listed(api):
    response = api("/api/v1/unmask", {"text": "AWS_EC2_404 is gone"})

    assert response.json() == {"text": "AWS_EC2_404 is gone", "unresolved": ["AWS_EC2_404"]}


def test_a_bearer_token_works_like_x_api_key(api_key):
    response = Client().post(
        "/api/v1/mask", {"text": EC2}, content_type="application/json", headers={"authorization": f"Bearer {api_key}"}
    )

    assert response.json()["text"] == "AWS_EC2_001"


def test_a_client_masks_in_its_own_tenant(redis_client):
    key = ApiClient.objects.create_with_key("team", Tenant.objects.create(slug="team-c", name="C"))[1]

    response = Client().post("/api/v1/mask", {"text": EC2}, content_type="application/json", headers={"x-api-key": key})

    assert response.json()["text"] == "AWS_EC2_001"
    assert redis_client.get(f"aws:t:team-c:mask:{EC2}") == b"AWS_EC2_001"
    assert redis_client.get(f"aws:mask:{EC2}") is None


def test_anonymous_requests_and_wrong_keys_get_401(db):
    anonymous = Client().post("/api/v1/mask", {"text": EC2}, content_type="application/json")
    wrong = Client().post(
        "/api/v1/mask", {"text": EC2}, content_type="application/json", headers={"x-api-key": "awsm_x"}
    )

    assert_error(anonymous, 401, "authentication_error")
    assert_error(wrong, 401, "authentication_error")
    assert anonymous["www-authenticate"].startswith("Bearer")


def test_operators_use_their_session_but_other_users_may_not():
    users = get_user_model().objects
    operator, visitor = Client(), Client()
    operator.force_login(users.create_user("olga", password="pw", is_staff=True))
    visitor.force_login(users.create_user("vic", password="pw"))

    ok = operator.post("/api/v1/mask", {"text": EC2}, content_type="application/json")
    refused = visitor.post("/api/v1/mask", {"text": EC2}, content_type="application/json")

    assert ok.json()["text"] == "AWS_EC2_001"
    assert_error(refused, 403, "permission_error")


def test_a_body_declared_larger_than_the_limit_gets_413(api, settings):
    settings.MASKING_MAX_BODY_BYTES = 2048

    response = api("/api/v1/mask", {"text": EC2 + " " * 3000})

    body = assert_error(response, 413, "request_too_large")
    assert EC2 not in json.dumps(body)


def test_a_tenant_may_have_its_own_body_limit(db):
    small = Tenant.objects.create(slug="small", name="S", max_body_bytes=1024)
    key = ApiClient.objects.create_with_key("small", small)[1]

    response = Client().post(
        "/api/v1/mask", {"text": "x" * 2000}, content_type="application/json", headers={"x-api-key": key}
    )

    assert_error(response, 413, "request_too_large")


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b'{"text": "' + EC2.encode() + b' \xff\xfe"}', "not valid UTF-8"),
        ('{"text": "' + EC2 + '"', "not valid JSON"),
        ({"text": 12}, "text: Must be a string."),
        ({"text": [EC2]}, "text: Must be a string."),
        ({"text": EC2, "json": {"a": EC2}}, "exactly one"),
        ({"txt": EC2}, "exactly one"),
        ([EC2], "Expected a dictionary"),
        ('{"text": "' + EC2 + ' \\ud800"}', "unpaired surrogate"),
    ],
)
def test_malformed_requests_get_400_without_echoing_the_input(api, body, error):
    response = api("/api/v1/mask", body)

    payload = assert_error(response, 400, "invalid_request_error")
    assert error in payload["error"]["message"]
    assert EC2 not in response.content.decode()


def test_escaped_characters_outside_the_basic_plane_are_fine(api):
    response = api("/api/v1/mask", '{"text": "\\ud83d\\ude00 ' + EC2 + '"}')

    assert response.json()["text"] == "\U0001f600 AWS_EC2_001"


def test_other_methods_get_405_in_the_same_error_shape(api_key):
    response = Client().get("/api/v1/mask", headers={"x-api-key": api_key})

    assert_error(response, 405, "invalid_request_error")


def test_it_answers_503_and_returns_nothing_unmasked_when_redis_is_down(api, redis_server):
    redis_server.stop()

    masked = api("/api/v1/mask", {"text": CLOUDTRAIL})
    unmasked = api("/api/v1/unmask", {"text": "AWS_EC2_001"})

    for response in (masked, unmasked):
        body = assert_error(response, 503, "masking_unavailable")
        assert "unreachable" in body["error"]["message"]
        assert EC2 not in response.content.decode()
        assert ROLE not in response.content.decode()


def test_masking_stops_when_redis_stops_mid_run_and_resumes_when_it_is_back(api, redis_server):
    before = api("/api/v1/mask", {"text": EC2})
    redis_server.stop()
    during = api("/api/v1/mask", {"text": f"{EC2} {VPC}"})
    redis_server.start()  # without persistence in tests: it comes back empty
    after = api("/api/v1/mask", {"text": f"{EC2} {VPC}"})

    assert before.json()["text"] == "AWS_EC2_001"
    assert_error(during, 503, "masking_unavailable")
    assert EC2 not in during.content.decode() and VPC not in during.content.decode()
    assert after.status_code == 200
    assert EC2 not in after.json()["text"] and VPC not in after.json()["text"]


def test_a_failed_event_never_fails_the_request(api, redis_client):
    before = events.failed_count()
    redis_client.execute_command("ACL", "SETUSER", "default", "-publish")
    try:
        response = api("/api/v1/mask", {"text": EC2})
    finally:
        redis_client.execute_command("ACL", "SETUSER", "default", "+publish")

    assert response.json()["text"] == "AWS_EC2_001"
    assert events.failed_count() == before + 1


def test_the_openapi_schema_and_its_docs_page_are_served(db):
    schema = Client().get("/api/schema/", headers={"accept": "application/json"})
    docs = Client().get("/api/docs/")

    assert schema.status_code == 200
    paths = json.loads(schema.content)["paths"]
    assert {"/api/v1/mask", "/api/v1/unmask"} <= set(paths)
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
    assert b"cdn." not in docs.content


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_streamed_body_longer_than_the_limit_gets_413_from_the_real_server(tmp_path):
    key = ApiClient.objects.create_with_key("live", default_tenant())[1]

    def chunks():
        yield b'{"text": "'
        for _ in range(40):
            yield b"x" * 1024
        yield b'"}'

    with gateway_process(tmp_path, MASKING_MAX_BODY_BYTES="16384") as url:
        headers = {"x-api-key": key, "content-type": "application/json"}
        streamed = httpx.post(f"{url}/api/v1/mask", content=chunks(), headers=headers, timeout=30)
        small = httpx.post(f"{url}/api/v1/mask", json={"text": EC2}, headers=headers, timeout=30)

    assert "content-length" not in streamed.request.headers
    assert streamed.status_code == 413
    assert streamed.json()["error"]["type"] == "request_too_large"
    assert small.json()["text"] == "AWS_EC2_001"


def test_a_program_over_its_tenants_rate_limit_gets_429_with_a_retry_time(api):
    tenant = default_tenant()
    tenant.rate_limit_per_minute = 2
    tenant.save()
    statuses = [api("/api/v1/mask", {"text": EC2}).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    refused = api("/api/v1/mask", {"text": EC2})
    body = assert_error(refused, 429, "rate_limit_error")
    assert EC2 not in json.dumps(body)
    assert 1 <= int(refused["Retry-After"]) <= 60
