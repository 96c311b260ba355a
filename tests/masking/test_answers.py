"""A JSON answer restored in its bytes (masking.answers)."""

import asyncio
import json

import pytest

from masking import answers, events, jsonbody, masker, store

pytestmark = pytest.mark.django_db

EC2 = "i-0123456789abcdef0"
VPC = "vpc-0a1b2c3d4e5f67890"


def restore(body: bytes, request_id: str | None = None) -> bytes | None:
    async def run():
        restored = await answers.arestore(body, "default", request_id)
        await events.drain()
        return restored

    return asyncio.run(run())


def test_an_answer_comes_back_as_the_upstream_wrote_it_with_its_tokens_restored(redis_client):
    masker.mask_texts([f"{EC2} in {VPC}"])
    body = b'{\n  "id": "msg_01",\n  "content": [{"type": "text", "text": "AWS_EC2_001 runs in\\nAWS_VPC_001."}]\n}'

    restored = restore(body)

    assert restored == body.replace(b"AWS_EC2_001", EC2.encode()).replace(b"AWS_VPC_001", VPC.encode())


def test_tokens_in_tool_inputs_are_restored_in_values_and_keys(redis_client):
    masker.mask_texts([f"{EC2} in {VPC}"])
    block = {"type": "tool_use", "id": "toolu_01", "name": "run", "input": {"AWS_VPC_001": ["AWS_EC2_001"]}}

    restored = json.loads(restore(json.dumps({"content": [block]}).encode()))

    assert restored["content"][0]["input"] == {VPC: [EC2]}
    assert restored["content"][0]["id"] == "toolu_01"


def test_an_original_is_written_back_json_escaped(redis_client):
    tokens = store.get_or_create_tokens([("EC2", 'i-"quoted"\\path')]).tokens

    restored = restore(json.dumps({"text": f"see {tokens[0]}."}).encode())

    assert json.loads(restored) == {"text": 'see i-"quoted"\\path.'}


def test_unknown_tokens_stay_and_the_event_counts_them_with_the_answers_size(redis_client):
    masker.mask_texts([EC2])
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(events.CHANNELS[events.UNMASKING])
    pubsub.get_message(timeout=1)
    body = json.dumps({"text": "AWS_EC2_001, AWS_EC2_001 and AWS_EC2_404"}).encode()

    restored = restore(body, request_id="req-9")

    assert json.loads(restored) == {"text": f"{EC2}, {EC2} and AWS_EC2_404"}
    event = json.loads(pubsub.get_message(timeout=5)["data"])
    assert (event["request_id"], event["counts_by_kind"], event["unresolved"]) == ("req-9", {"ec2_instance": 2}, 1)
    assert event["bytes"] == len(body)
    pubsub.close()


def test_an_answer_without_tokens_is_returned_as_it_is_and_an_undecidable_one_is_left_to_the_parser(redis_client):
    body = b'{"text": "nothing to restore"}'

    assert restore(body) is body
    assert restore(b'{"text": "\\u0041WS_EC2_001"}') is None


def test_restoring_fails_closed_when_redis_is_down(redis_server):
    redis_server.stop()
    try:
        with pytest.raises(store.MaskingUnavailable):
            restore(b'{"text": "AWS_EC2_001"}')
    finally:
        redis_server.start()


def test_a_token_written_two_ways_is_restored_both_ways_and_counted_once_by_kind(redis_client):
    masker.mask_texts([f"{EC2} in {VPC}"])
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(events.CHANNELS[events.UNMASKING])
    pubsub.get_message(timeout=1)
    text = "AWS_EC2_001, AWS\\_EC2\\_001, AWS_VPC_001, AWS_EC2_001 and AWS_VPC_404"
    body = json.dumps({"text": text}).encode()

    restored = restore(body)

    assert json.loads(restored) == {"text": f"{EC2}, {EC2}, {VPC}, {EC2} and AWS_VPC_404"}
    event = json.loads(pubsub.get_message(timeout=5)["data"])
    assert (event["counts_by_kind"], event["unresolved"]) == ({"ec2_instance": 3, "vpc": 1}, 1)
    pubsub.close()


def test_what_a_worker_remembers_of_tokens_and_originals_starts_over_past_its_bound(redis_client, monkeypatch):
    monkeypatch.setattr(answers, "MAX_REMEMBERED", 1)
    monkeypatch.setattr(jsonbody, "MAX_ESCAPED", 1)
    masker.mask_texts([f"{EC2} in {VPC}"])
    answers._names.clear()
    answers._escaped.clear()
    body = json.dumps({"text": "AWS_EC2_001 in AWS_VPC_001, AWS_EC2_001"}).encode()

    assert json.loads(restore(body)) == json.loads(restore(body)) == {"text": f"{EC2} in {VPC}, {EC2}"}
    assert len(answers._names) == len(answers._escaped) == 1


# --- restored from the request's own tokens (MaskResult.restore) ---------------------------------------


def restore_for(body: bytes, request: dict[bytes, bytes]) -> bytes | None:
    async def run():
        restored = await answers.arestore(body, "default", "req-1", request)
        await events.drain()
        return restored

    return asyncio.run(run())


def unmasking_events(redis_client, body: bytes, request: dict[bytes, bytes] | None) -> tuple[bytes, dict]:
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(events.CHANNELS[events.UNMASKING])
    pubsub.get_message(timeout=1)
    restored = restore_for(body, request) if request is not None else restore(body, "req-1")
    event = json.loads(pubsub.get_message(timeout=5)["data"])
    pubsub.close()
    return restored, {name: event[name] for name in ("counts_by_kind", "total", "unresolved", "bytes", "request_id")}


@pytest.mark.parametrize("c_pass", [True, False], ids=["c-pass", "python-pass"])
def test_an_answer_naming_only_the_requests_tokens_is_restored_from_them_without_a_lookup(
    redis_client, monkeypatch, c_pass
):
    if not c_pass:
        monkeypatch.setattr(answers, "_native_restore", None)
    elif answers._native_restore is None:
        pytest.skip("masking._restore is not built")
    masked = masker.mask_texts([f"{EC2} in {VPC}"])
    quoted = store.get_or_create_tokens([("EC2", 'i-"quoted"\\path')]).tokens[0]
    request = {**masked.restore, quoted.encode(): jsonbody.escaped['i-"quoted"\\path']}
    text = f"{masked.texts[0]}, {quoted} and AWS_EC2_001"
    body = json.dumps({"content": [{"type": "text", "text": text}]}).encode()
    expected, expected_event = unmasking_events(redis_client, body, None)

    async def no_lookup(*args):
        raise AssertionError("a token was looked up")

    monkeypatch.setattr(answers, "alookup_originals", no_lookup)
    restored, event = unmasking_events(redis_client, body, request)

    assert restored == expected
    assert json.loads(restored)["content"][0]["text"] == f'{EC2} in {VPC}, i-"quoted"\\path and {EC2}'
    assert (
        event
        == expected_event
        == {
            "counts_by_kind": {"ec2_instance": 3, "vpc": 1},
            "total": 4,
            "unresolved": 0,
            "bytes": len(body),
            "request_id": "req-1",
        }
    )


def test_an_answer_that_names_a_token_the_request_did_not_is_restored_by_lookup(redis_client):
    request = masker.mask_texts([EC2]).restore
    masker.mask_texts([VPC])  # known to the tenant, but not named by this request
    body = json.dumps({"text": "AWS_EC2_001 in AWS_VPC_001, not AWS_VPC_404"}).encode()

    restored, event = unmasking_events(redis_client, body, request)

    assert json.loads(restored) == {"text": f"{EC2} in {VPC}, not AWS_VPC_404"}
    assert (event["counts_by_kind"], event["unresolved"]) == ({"ec2_instance": 1, "vpc": 1}, 1)
