import asyncio
import json
import threading
import time

import httpx
import pytest

from masking import cache, policy, proxy, redisline, store
from masking.models import ApiClient, Tenant
from masking.proxy import REQUEST_ID_HEADER
from masking.store import alookup_originals
from masking.streaming import SSEParser
from tests.live import gateway_process
from tests.masking.fake_upstream import TOOL
from tests.masking.gateway import UPSTREAM_KEY, headers, message
from tests.masking.samples import ORIGINALS, PROMPT

pytestmark = pytest.mark.django_db(transaction=True)


def assert_no_original(raw: bytes) -> None:
    for original in ORIGINALS:
        assert original.encode() not in raw


def mixed_request() -> dict:
    """Identifiers in every place a Messages request carries text."""
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "system": [{"type": "text", "text": f"You help the team running vpc-12345678. Context: {PROMPT}"}],
        "tools": [{**TOOL, "description": "Runs commands against vpc-12345678 only."}],
        "messages": [
            {"role": "user", "content": "What runs in vpc-0f1e2d3c4b5a69788?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me look at i-0123456789abcdef0."},
                    {
                        "type": "tool_use",
                        "id": "toolu_01",
                        "name": TOOL["name"],
                        "input": {"command": "aws ec2 describe-instances --instance-ids i-0123456789abcdef0"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01", "content": [{"type": "text", "text": PROMPT}]},
                    {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": PROMPT}},
                    {"type": "text", "text": PROMPT},
                ],
            },
        ],
    }


def test_the_upstream_never_sees_an_original_and_the_client_gets_them_back(gateway, upstream, api_key):
    response = gateway.post("/v1/messages", json=mixed_request(), headers=headers(api_key))

    assert response.status_code == 200
    assert_no_original(upstream.last.body)
    assert "AWS_EC2_" in upstream.last.body.decode()
    assert response.json()["content"] == [{"type": "text", "text": PROMPT + "\n" + PROMPT}]


@pytest.mark.parametrize(
    "write",
    [
        pytest.param(json.dumps, id="non-ASCII escaped"),
        pytest.param(lambda body: json.dumps(body, indent=2).replace("AWS_", "\\u0041WS\\u005f"), id="tokens escaped"),
    ],
)
def test_an_answer_is_restored_however_the_upstream_escapes_its_json(gateway, upstream, api_key, write):
    upstream.write_json = write
    text = f"{PROMPT}\n日本 🚀i-0a1b2c3d4e5f67890🚀\ti-0a1b2c3d4e5f67890"
    response = gateway.post("/v1/messages", json=message(text), headers=headers(api_key))

    assert response.status_code == 200
    assert "AWS_" not in response.text and "\\u0041WS" not in response.text
    assert response.json()["content"] == [{"type": "text", "text": text}]


def test_a_json_answer_comes_back_in_the_upstreams_own_layout(gateway, upstream, api_key):
    upstream.write_json = lambda body: json.dumps(body, indent=3)
    response = gateway.post("/v1/messages", json=message(PROMPT), headers=headers(api_key))

    assert response.content == json.dumps(response.json(), indent=3).encode()


def test_the_fail_closed_redis_read_goes_out_before_the_body_is_read(gateway, upstream, api_key, monkeypatch):
    calls = []
    send = redisline._Connection.send

    def recording(connection, commands):
        if ("GET", store.EPOCH_KEY) in commands:
            calls.append("epoch read")
        return send(connection, commands)

    async def body():
        await asyncio.sleep(0.05)  # the body takes a moment to arrive; the read does not wait for it
        calls.append("body read")
        yield json.dumps(message(PROMPT)).encode()

    monkeypatch.setattr(redisline._Connection, "send", recording)
    response = gateway.post("/v1/messages", content=body(), headers=headers(api_key))

    assert response.status_code == 200
    assert calls[0] == "epoch read" and "body read" in calls


def test_identifiers_used_as_tool_input_keys_never_reach_the_upstream(gateway, upstream, api_key):
    tool_input = {"i-0a1b2c3d4e5f67890": {"state": "running", "vpc-12345678": ["i-0a1b2c3d4e5f67890"]}}
    body = message(
        [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "done"}],
    )
    body["messages"] = [
        {"role": "user", "content": "Which instances run?"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_01", "name": TOOL["name"], "input": tool_input}],
        },
        *body["messages"],
    ]

    response = gateway.post("/v1/messages", json=body, headers=headers(api_key))

    assert response.status_code == 200
    assert b"i-0a1b2c3d4e5f67890" not in upstream.last.body and b"vpc-12345678" not in upstream.last.body
    sent = upstream.last.json["messages"][1]["content"][0]["input"]
    ((instance, inner),) = sent.items()
    _, vpc = list(inner)
    assert instance.startswith("AWS_EC2_") and vpc.startswith("AWS_VPC_")
    assert inner == {"state": "running", vpc: [instance]}  # the same identifier, the same token, key or value


def test_model_ids_signatures_and_images_reach_the_upstream_unchanged(gateway, upstream, api_key):
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    thinking = {"type": "thinking", "thinking": "plain thoughts", "signature": "EqQBCkYIARgCIkD"}
    body = mixed_request()
    body["messages"][1]["content"].insert(0, thinking)
    body["messages"][2]["content"].append(image)

    gateway.post("/v1/messages", json=body, headers=headers(api_key))

    sent = upstream.last.json
    assert sent["model"] == "claude-sonnet-4-5"
    assert sent["messages"][1]["content"][0] == thinking
    assert sent["messages"][1]["content"][2]["id"] == "toolu_01"
    assert sent["messages"][2]["content"][-1] == image
    assert sent["tools"][0]["name"] == TOOL["name"]


@pytest.mark.parametrize(
    "number", ["98765432109876543210987654321", "-9223372036854775809", "18446744073709551616", "NaN"]
)
def test_numbers_json_parsers_disagree_on_reach_the_upstream_as_the_client_wrote_them(
    gateway, upstream, api_key, number
):
    body = json.dumps(message(PROMPT, metadata={"user_id": "u"})).replace('"max_tokens": 1024', f'"top_k": {number}')

    sent_as = {**headers(api_key), "content-type": "application/json"}
    gateway.post("/v1/messages", content=body.encode(), headers=sent_as)

    assert f'"top_k":{number}'.encode() in upstream.last.body
    assert_no_original(upstream.last.body)


def test_a_streamed_answer_is_restored_byte_for_byte(gateway, upstream, api_key):
    upstream.chunk_size = 1
    response = gateway.post("/v1/messages", json=message(PROMPT, stream=True), headers=headers(api_key))

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert_no_original(upstream.last.body)
    assert streamed_text(response.content) == PROMPT


@pytest.mark.parametrize("remembered", [True, False])
def test_a_streamed_echo_restores_its_tokens_with_at_most_one_lookup(
    gateway, upstream, api_key, monkeypatch, remembered
):
    upstream.delta_size = 3  # tokens arrive over many deltas
    lookups = []

    async def counted(tokens, tenant):
        lookups.append(tokens)
        return await alookup_originals(tokens, tenant)

    monkeypatch.setattr(proxy, "alookup_originals", counted)
    if not remembered:  # as a worker that forgot them (or was told to by a new mapping epoch)
        monkeypatch.setattr(cache.mappings, "originals", lambda tenant, tokens: {})

    response = gateway.post("/v1/messages", json=message(PROMPT, stream=True), headers=headers(api_key))

    assert streamed_text(response.content) == PROMPT
    assert len(lookups) == (0 if remembered else 1)  # the masking just taught the worker every token


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_an_answer_the_upstream_compressed_is_decoded_and_restored(gateway, upstream, api_key, stream):
    # The gateway asks for gzip upstream ("Accept-Encoding: gzip, deflate") and answers the client plainly.
    upstream.gzip, upstream.chunk_size = True, 100
    response = gateway.post("/v1/messages", json=message(PROMPT, stream=stream), headers=headers(api_key))

    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert_no_original(upstream.last.body)
    if stream:
        assert streamed_text(response.content) == PROMPT
    else:
        assert response.json()["content"] == [{"type": "text", "text": PROMPT}]


def streamed_text(raw: bytes) -> str:
    events = [json.loads(event.data) for event in SSEParser().feed(raw, final=True)]
    return "".join(e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta")


def test_a_tool_call_is_restored_in_the_answer(gateway, upstream, api_key):
    upstream.reply = "tool"
    response = gateway.post("/v1/messages", json=message(PROMPT, tools=[TOOL]), headers=headers(api_key))

    [block] = response.json()["content"]
    assert block["type"] == "tool_use" and block["id"] == "toolu_01"
    assert block["input"] == {"command": PROMPT}
    assert_no_original(upstream.last.body)


def test_count_tokens_is_forwarded_masked(gateway, upstream, api_key):
    response = gateway.post("/v1/messages/count_tokens", json=message(PROMPT), headers=headers(api_key))

    assert response.status_code == 200
    assert response.json()["input_tokens"] > 0
    assert upstream.last.path == "/v1/messages/count_tokens"
    assert_no_original(upstream.last.body)


def test_anthropic_headers_and_the_query_string_pass_through_but_hop_by_hop_headers_do_not(gateway, upstream, api_key):
    sent_headers = headers(
        api_key,
        **{"anthropic-beta": "tools-2024-04-04", "anthropic-custom": "x", "te": "trailers", "cookie": "a=b"},
    )
    gateway.post("/v1/messages?beta=true", json=message("hi"), headers=sent_headers)

    received = upstream.last
    assert received.query == "beta=true"
    assert received.headers["anthropic-version"] == "2023-06-01"
    assert received.headers["anthropic-beta"] == "tools-2024-04-04"
    assert received.headers["anthropic-custom"] == "x"
    assert "te" not in received.headers and "cookie" not in received.headers


def test_the_gateway_key_stays_with_the_gateway_and_its_own_upstream_key_is_used(gateway, upstream, api_key):
    gateway.post("/v1/messages", json=message("hi"), headers={"authorization": f"Bearer {api_key}"})

    assert upstream.last.headers["x-api-key"] == UPSTREAM_KEY
    assert "authorization" not in upstream.last.headers
    assert api_key not in json.dumps(upstream.last.headers)


def test_a_tenant_with_its_own_upstream_key_uses_it(gateway, upstream):
    tenant = Tenant.objects.create(slug="team-a", name="Team A", upstream_api_key="sk-ant-team-a")
    key = ApiClient.objects.create_with_key("team a", tenant)[1]

    gateway.post("/v1/messages", json=message("hi"), headers=headers(key))

    assert upstream.last.headers["x-api-key"] == "sk-ant-team-a"


@pytest.mark.parametrize("revoke", ["deactivate", "delete"])
def test_a_revoked_key_is_refused_at_its_next_request_and_nothing_is_forwarded(gateway, upstream, api_key, revoke):
    for _ in range(2):  # the second one remembers the client under the current aws:auth:version
        assert gateway.post("/v1/messages", json=message(PROMPT), headers=headers(api_key)).status_code == 200
    client = ApiClient.objects.get()
    if revoke == "deactivate":
        client.is_active = False
        client.save()
    else:
        client.delete()

    response = gateway.post("/v1/messages", json=message(PROMPT), headers=headers(api_key))

    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert len(upstream.received) == 2


def test_requests_that_find_their_key_expired_together_share_one_lookup(gateway, upstream, api_key, monkeypatch):
    lookups = []
    look_up = proxy._authenticate_fresh

    def counting(key):
        lookups.append(key)
        time.sleep(0.05)  # a query that takes a moment: the others arrive meanwhile
        return look_up(key)

    monkeypatch.setattr(proxy, "_authenticate_fresh", counting)

    async def together():
        from config.asgi import application

        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            await client.post("/v1/messages", json=message("hello"), headers=headers(api_key))
            lookups.clear()
            proxy._known_clients.clear()  # the key's entry expired
            posts = [client.post("/v1/messages", json=message("hello"), headers=headers(api_key)) for _ in range(10)]
            return await asyncio.gather(*posts)

    responses = asyncio.run(together())

    assert [r.status_code for r in responses] == [200] * 10
    assert len(lookups) == 1


@pytest.mark.parametrize(
    ("client_headers", "expected"),
    [
        ({"x-api-key": "sk-ant-users-own"}, ("x-api-key", "sk-ant-users-own")),
        ({"authorization": "Bearer sk-ant-oat-users-own"}, ("authorization", "Bearer sk-ant-oat-users-own")),
    ],
)
def test_passthrough_mode_forwards_the_clients_own_key_as_it_was_sent(
    gateway, upstream, settings, default_tenant, client_headers, expected
):
    settings.GATEWAY_AUTH_MODE = "passthrough"

    response = gateway.post("/v1/messages", json=message(PROMPT), headers=client_headers)

    assert response.status_code == 200
    name, value = expected
    assert upstream.last.headers[name] == value
    assert UPSTREAM_KEY not in json.dumps(upstream.last.headers)
    assert_no_original(upstream.last.body)


def test_upstream_response_headers_come_back_with_the_gateway_request_id(gateway, upstream, api_key):
    response = gateway.post("/v1/messages", json=message("hi"), headers=headers(api_key))

    assert response.headers["request-id"] == "req_fake_01"
    assert len(response.headers[REQUEST_ID_HEADER]) == 32
    assert int(response.headers["content-length"]) == len(response.content)


def test_the_masking_event_carries_the_response_request_id(gateway, upstream, api_key, redis_client):
    pubsub = redis_client.pubsub()
    pubsub.subscribe("aws-masker:events:masking")
    pubsub.get_message(timeout=1)  # the subscription confirmation

    response = gateway.post("/v1/messages", json=message(PROMPT), headers=headers(api_key))

    event = json.loads(pubsub.get_message(timeout=5)["data"])
    assert event["request_id"] == response.headers[REQUEST_ID_HEADER]
    assert event["source"] == "proxy"
    assert event["total"] >= len(ORIGINALS) - 1
    assert_no_original(json.dumps(event).encode())
    pubsub.close()


def test_a_conversation_sent_back_is_remasked_to_the_tokens_the_model_saw(gateway, upstream, api_key):
    upstream.reply = "thinking"
    first_request = message(PROMPT, thinking={"type": "enabled", "budget_tokens": 1024})
    first = gateway.post("/v1/messages", json=first_request, headers=headers(api_key)).json()
    model_saw = upstream.last.json["messages"][0]["content"]
    assert first["content"][0]["thinking"] == PROMPT  # restored for the client

    second_request = dict(first_request)
    second_request["messages"] = [
        *first_request["messages"],
        {"role": "assistant", "content": first["content"]},
        {"role": "user", "content": "And i-0123456789abcdef0?"},
    ]
    gateway.post("/v1/messages", json=second_request, headers=headers(api_key))

    resent = upstream.last.json["messages"][1]["content"]
    assert resent[0]["thinking"] == model_saw and resent[1]["text"] == model_saw
    assert upstream.invalid_signatures == 0
    assert_no_original(upstream.last.body)


def test_the_first_event_reaches_the_client_before_the_upstream_stream_ends(upstream, api_key, tmp_path):
    upstream.hold = threading.Event()
    with gateway_process(tmp_path, ANTHROPIC_UPSTREAM_URL=upstream.url, ANTHROPIC_API_KEY=UPSTREAM_KEY) as url:
        with httpx.stream(
            "POST", f"{url}/v1/messages", json=message(PROMPT, stream=True), headers=headers(api_key), timeout=30
        ) as response:
            parser, seen, chunks = SSEParser(), [], response.iter_raw()
            while "content_block_delta" not in seen:
                seen += [json.loads(e.data)["type"] for e in parser.feed(next(chunks))]
            assert not upstream.hold.is_set()  # the upstream is still holding the rest of its answer
            upstream.hold.set()
            rest = b"".join(chunks)
    assert seen[0] == "message_start"
    assert "message_stop" in rest.decode()


def test_a_client_that_goes_away_mid_stream_cancels_the_upstream_request(upstream, api_key, tmp_path):
    upstream.hold = threading.Event()
    with gateway_process(tmp_path, ANTHROPIC_UPSTREAM_URL=upstream.url, ANTHROPIC_API_KEY=UPSTREAM_KEY) as url:
        with httpx.stream(
            "POST", f"{url}/v1/messages", json=message(PROMPT, stream=True), headers=headers(api_key), timeout=30
        ) as response:
            next(response.iter_raw())
        assert upstream.disconnected.wait(20)


def test_a_client_that_gives_up_while_the_upstream_thinks_cancels_the_upstream_request(upstream, api_key, tmp_path):
    upstream.delay = 30
    with gateway_process(tmp_path, ANTHROPIC_UPSTREAM_URL=upstream.url, ANTHROPIC_API_KEY=UPSTREAM_KEY) as url:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{url}/v1/messages", json=message(PROMPT), headers=headers(api_key), timeout=1)
        assert upstream.disconnected.wait(20)


def test_other_api_paths_answer_404_in_the_api_error_shape(gateway, api_key):
    response = gateway.post("/v1/complete", json={}, headers=headers(api_key))

    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"


def test_the_gateway_answers_through_several_uvicorn_workers(upstream, api_key, tmp_path):
    env = {"ANTHROPIC_UPSTREAM_URL": upstream.url, "ANTHROPIC_API_KEY": UPSTREAM_KEY}
    with gateway_process(tmp_path, workers=2, **env) as url:
        responses = [httpx.post(f"{url}/v1/messages", json=message(PROMPT), headers=headers(api_key)) for _ in range(4)]
    assert {r.status_code for r in responses} == {200}
    assert all(r.json()["content"][0]["text"] == PROMPT for r in responses)


def test_the_benchmarks_pass_through_baseline_forwards_bytes_untouched(gateway, upstream, api_key, settings):
    settings.PROXY_MASKING = False  # never settable from the environment: bench/settings_passthrough.py only
    body = json.dumps(message(PROMPT)).encode()

    response = gateway.post(
        "/v1/messages", content=body, headers={**headers(api_key), "content-type": "application/json"}
    )

    assert upstream.last.body == body
    assert response.json()["content"][0]["text"] == PROMPT


def test_a_running_worker_writes_its_request_counters_within_seconds_without_being_asked(
    upstream, api_key, tmp_path, redis_client
):
    with gateway_process(tmp_path, ANTHROPIC_UPSTREAM_URL=upstream.url, ANTHROPIC_API_KEY=UPSTREAM_KEY) as url:
        for _ in range(3):
            assert httpx.post(f"{url}/v1/messages", json=message(PROMPT), headers=headers(api_key)).status_code == 200
        deadline = time.monotonic() + 20
        while redis_client.hget("aws:stats:counts", "requests") != b"3":
            assert time.monotonic() < deadline, "the counters never reached Redis"
            time.sleep(0.1)  # polls: the worker writes about once a second
    counts = redis_client.hgetall("aws:stats:counts")
    assert counts[b"status:200"] == b"3" and counts[b"latency_bucket:+Inf"] == b"3"
    assert counts[b"mask_operations"] == b"3" and counts[b"unmask_operations"] == b"3"
    assert redis_client.hget("aws:metrics:counts", "upstream_latency:count") == b"3"
    # The same prompt three times (the second and third from what the worker remembers): each
    # identifier, by kind, and each token restored is counted three times.
    by_kind = {field: int(n) for field, n in counts.items() if field.startswith(b"kind:")}
    assert by_kind and all(n % 3 == 0 for n in by_kind.values())
    assert int(counts[b"identifiers"]) == sum(by_kind.values())
    restored = int(counts[b"restored_tokens"])
    assert restored > 0 and restored % 3 == 0 and counts.get(b"unresolved_tokens", b"0") == b"0"


def test_a_streamed_answer_publishes_one_unmasking_event_with_its_counts(gateway, upstream, api_key, redis_client):
    pubsub = redis_client.pubsub()
    pubsub.subscribe("aws-masker:events:unmasking")
    pubsub.get_message(timeout=1)  # the subscription confirmation

    response = gateway.post("/v1/messages", json=message(PROMPT, stream=True), headers=headers(api_key))

    event = json.loads(pubsub.get_message(timeout=5)["data"])
    assert event["request_id"] == response.headers[REQUEST_ID_HEADER]
    assert event["source"] == "proxy" and event["event_type"] == "unmasking"
    assert event["total"] >= len(ORIGINALS) - 1 and event["unresolved"] == 0
    assert event["bytes"] > 0
    assert_no_original(json.dumps(event).encode())
    assert pubsub.get_message(timeout=0.5) is None  # one event per answer
    pubsub.close()


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_the_unmasking_event_counts_by_kind_what_the_masking_event_counted_and_the_echo_restored(
    gateway, upstream, api_key, redis_client, stream
):
    pubsub = redis_client.pubsub()
    pubsub.subscribe("aws-masker:events:masking", "aws-masker:events:unmasking")
    pubsub.get_message(timeout=1), pubsub.get_message(timeout=1)  # the subscription confirmations

    gateway.post("/v1/messages", json=message(PROMPT, stream=stream), headers=headers(api_key))

    published = [json.loads(pubsub.get_message(timeout=5)["data"]) for _ in range(2)]
    pubsub.close()
    masking, unmasking = sorted(published, key=lambda event: event["event_type"] != "masking")
    redacted = {kind for kind, mode in policy.effective_modes("default").items() if mode == policy.REDACT}
    expected = {kind: n for kind, n in masking["counts_by_kind"].items() if kind not in redacted}
    assert unmasking["counts_by_kind"] == expected and unmasking["total"] == sum(expected.values())
    assert unmasking["unresolved"] == 0 and unmasking["request_id"] == masking["request_id"]
