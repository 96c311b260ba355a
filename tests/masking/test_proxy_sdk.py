"""The official anthropic SDK against the gateway under uvicorn, as a user points it there."""

import json

import anthropic
import pytest

from tests.live import gateway_process
from tests.masking.fake_upstream import TOOL, FakeUpstream, serving, sse_events
from tests.masking.gateway import UPSTREAM_KEY
from tests.masking.samples import ORIGINALS, PROMPT, SHORT_PROMPT

pytestmark = pytest.mark.django_db(transaction=True)
MODEL = "claude-sonnet-4-6"


@pytest.fixture(scope="module")
def sdk_upstream():
    app = FakeUpstream()
    with serving(app) as url:
        app.url = url
        yield app


@pytest.fixture(scope="module")
def gateway_url(sdk_upstream, tmp_path_factory):
    env = {"ANTHROPIC_UPSTREAM_URL": sdk_upstream.url, "ANTHROPIC_API_KEY": UPSTREAM_KEY}
    with gateway_process(tmp_path_factory.mktemp("gateway"), **env) as url:
        yield url


@pytest.fixture
def fake(sdk_upstream):
    sdk_upstream.reset()
    return sdk_upstream


@pytest.fixture
def sdk(gateway_url, api_key) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=api_key, base_url=gateway_url, max_retries=0)


def assert_never_forwarded(fake: FakeUpstream) -> None:
    assert fake.received
    for received in fake.received:
        for original in ORIGINALS:
            assert original.encode() not in received.body


def test_messages_create_returns_the_originals_and_the_model_never_sees_them(sdk, fake):
    reply = sdk.messages.create(
        model=MODEL,
        max_tokens=1024,
        system=f"You are an AWS expert. Known instance: i-0123456789abcdef0. {PROMPT}",
        messages=[{"role": "user", "content": PROMPT}],
    )

    assert reply.content[0].text == PROMPT
    assert_never_forwarded(fake)


def test_claude_code_style_bearer_auth_works(gateway_url, api_key, fake):
    sdk = anthropic.Anthropic(auth_token=api_key, base_url=gateway_url, max_retries=0)

    reply = sdk.messages.create(model=MODEL, max_tokens=64, messages=[{"role": "user", "content": PROMPT}])

    assert reply.content[0].text == PROMPT
    assert fake.last.headers["x-api-key"] == UPSTREAM_KEY


def test_messages_stream_returns_the_originals_byte_for_byte_in_one_byte_chunks(sdk, fake):
    fake.chunk_size = 1
    with sdk.messages.stream(model=MODEL, max_tokens=1024, messages=[{"role": "user", "content": PROMPT}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert text == PROMPT
    assert final.content[0].text == PROMPT
    assert_never_forwarded(fake)


def stream_positions(sdk, fake, prompt: str) -> tuple[bytes, list[int]]:
    """The exact stream the fake will send for `prompt`, and the byte positions of its first text deltas."""
    sdk.messages.create(model=MODEL, max_tokens=64, messages=[{"role": "user", "content": prompt}])
    request = fake.last.json
    request["stream"] = True
    head, tail = sse_events(request, fake.answer(request), fake.delta_size)
    raw = head + tail
    first = raw.index(b"content_block_delta")
    return raw, list(range(first, raw.index(b"content_block_stop")))


def test_messages_stream_is_restored_for_every_split_position_of_the_answer_text(sdk, fake):
    raw, positions = stream_positions(sdk, fake, SHORT_PROMPT)
    assert b"AWS_" in raw and "日".encode() in raw
    fake.chunk_pause = 0.002
    for cut in positions[::3]:
        fake.split_at = [cut, cut + 1, cut + 2]
        with sdk.messages.stream(
            model=MODEL, max_tokens=64, messages=[{"role": "user", "content": SHORT_PROMPT}]
        ) as stream:
            assert "".join(stream.text_stream) == SHORT_PROMPT, cut
    assert_never_forwarded(fake)


def test_a_tool_use_round_trip_restores_the_call_and_masks_the_result(sdk, fake):
    fake.reply = "tool"
    question = {"role": "user", "content": "Describe i-0123456789abcdef0 in vpc-12345678"}
    first = sdk.messages.create(model=MODEL, max_tokens=1024, tools=[TOOL], messages=[question])
    [call] = first.content
    assert call.type == "tool_use"
    assert call.input == {"command": "Describe i-0123456789abcdef0 in vpc-12345678"}
    call_as_the_model_sent_it = fake.last.json["messages"][0]["content"]

    fake.reply = "text"
    result = {"type": "tool_result", "tool_use_id": call.id, "content": PROMPT}
    second = sdk.messages.create(
        model=MODEL,
        max_tokens=1024,
        tools=[TOOL],
        messages=[question, {"role": "assistant", "content": first.content}, {"role": "user", "content": [result]}],
    )

    assert second.content[0].text == PROMPT
    assert fake.last.json["messages"][1]["content"][0]["input"] == {"command": call_as_the_model_sent_it}
    assert_never_forwarded(fake)


def test_a_streamed_tool_call_is_restored(sdk, fake):
    fake.reply = "tool"
    fake.delta_size = 3
    with sdk.messages.stream(
        model=MODEL, max_tokens=1024, tools=[TOOL], messages=[{"role": "user", "content": PROMPT}]
    ) as stream:
        final = stream.get_final_message()

    assert final.content[0].input == {"command": PROMPT}
    assert final.stop_reason == "tool_use"


def test_a_multi_turn_conversation_with_signed_thinking_stays_valid(sdk, fake):
    fake.reply = "thinking"
    history = [{"role": "user", "content": PROMPT}]
    for follow_up in ["And i-0123456789abcdef0?", "What about AKIAIOSFODNN7EXAMPLE?"]:
        with sdk.messages.stream(
            model=MODEL, max_tokens=2048, thinking={"type": "enabled", "budget_tokens": 1024}, messages=history
        ) as stream:
            final = stream.get_final_message()
        assert final.content[0].thinking == final.content[1].text == history[-1]["content"]
        history += [{"role": "assistant", "content": final.content}, {"role": "user", "content": follow_up}]

    assert fake.invalid_signatures == 0
    assert_never_forwarded(fake)


def test_count_tokens_goes_through_the_sdk(sdk, fake):
    counted = sdk.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": PROMPT}])

    assert counted.input_tokens > 0
    assert_never_forwarded(fake)


def test_the_beta_client_reaches_the_upstream_with_its_beta_header_and_claude_codes_query(sdk, fake):
    reply = sdk.beta.messages.create(
        model=MODEL,
        max_tokens=64,
        betas=["context-1m-2025-08-07"],
        messages=[{"role": "user", "content": PROMPT}],
        extra_query={"beta": "true"},  # as Claude Code sends it
    )

    assert reply.content[0].text == PROMPT
    assert fake.last.query == "beta=true"
    assert fake.last.headers["anthropic-beta"] == "context-1m-2025-08-07"


def test_the_sdk_sees_gateway_errors_as_api_errors(gateway_url, fake):
    sdk = anthropic.Anthropic(api_key="awsm_wrong", base_url=gateway_url, max_retries=0)

    with pytest.raises(anthropic.AuthenticationError):
        sdk.messages.create(model=MODEL, max_tokens=64, messages=[{"role": "user", "content": PROMPT}])
    assert fake.received == []


def test_the_sdk_sees_upstream_errors_with_their_message_restored(sdk, fake):
    fake.status = 529
    fake.error = {"type": "error", "error": {"type": "overloaded_error", "message": "Busy with {prompt}"}}

    with pytest.raises(anthropic.APIStatusError) as caught:
        sdk.messages.create(model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "i-0123456789abcdef0"}])

    assert caught.value.status_code == 529
    assert json.dumps(caught.value.body) == json.dumps(
        {"type": "error", "error": {"type": "overloaded_error", "message": "Busy with i-0123456789abcdef0"}}
    )
