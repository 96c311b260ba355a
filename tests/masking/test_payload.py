import pytest

from masking.errors import InvalidPayload
from masking.payload import block_slots, read_slots, request_slots, response_slots, write_slots

IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}


def full_request() -> dict:
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "system": [{"type": "text", "text": "system text", "cache_control": {"type": "ephemeral"}}],
        "tools": [
            {
                "name": "run_cli",
                "description": "tool description",
                "input_schema": {
                    "type": "object",
                    "properties": {"command": {"type": "string", "description": "property description"}},
                },
            }
        ],
        "messages": [
            {"role": "user", "content": "plain user string"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "thinking text", "signature": "sig-abc"},
                    {"type": "redacted_thinking", "data": "opaque"},
                    {"type": "text", "text": "assistant text"},
                    {
                        "type": "tool_use",
                        "id": "toolu_01",
                        "name": "run_cli",
                        "input": {"command": "input string", "args": ["list item", 5, {"name": "nested name"}]},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01", "content": "tool result string"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_02",
                        "content": [{"type": "text", "text": "tool result block"}, IMAGE],
                    },
                    {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "doc text"}},
                    {"type": "document", "title": "doc title", "source": {"type": "base64", "data": "JVBERi0="}},
                    IMAGE,
                ],
            },
        ],
    }


def test_it_finds_every_text_of_a_request_and_nothing_else():
    texts = read_slots(request_slots(full_request()))
    assert sorted(texts) == sorted(
        [
            "system text",
            "tool description",
            "property description",
            "plain user string",
            "thinking text",
            "assistant text",
            "command",  # a tool input's keys are user data too
            "input string",
            "args",
            "list item",
            "name",
            "nested name",
            "tool result string",
            "tool result block",
            "doc text",
            "doc title",
        ]
    )


def test_it_writes_replacements_back_in_place_leaving_ids_signatures_and_images_alone():
    body = full_request()
    slots = request_slots(body)
    write_slots(slots, [text.upper() for text in read_slots(slots)])
    assert body["messages"][0]["content"] == "PLAIN USER STRING"
    assistant = body["messages"][1]["content"]
    assert assistant[0] == {"type": "thinking", "thinking": "THINKING TEXT", "signature": "sig-abc"}
    assert assistant[3]["input"] == {"COMMAND": "INPUT STRING", "ARGS": ["LIST ITEM", 5, {"NAME": "NESTED NAME"}]}
    assert assistant[3]["name"] == "run_cli" and assistant[3]["id"] == "toolu_01"
    assert body["messages"][2]["content"][-1] == IMAGE
    assert body["model"] == "claude-sonnet-4-5"
    assert body["tools"][0]["name"] == "run_cli"


def test_a_system_prompt_given_as_a_string_is_text():
    assert read_slots(request_slots({"system": "be brief", "messages": []})) == ["be brief"]


def test_an_unknown_block_type_is_walked_whole_except_its_structural_keys():
    block = {"type": "future_block", "id": "blk_1", "payload": {"note": "some text", "type": "x"}, "items": ["more"]}
    texts = read_slots(request_slots({"messages": [{"role": "user", "content": [block]}]}))
    assert sorted(texts) == ["more", "some text"]


def test_a_response_exposes_text_tool_input_and_thinking():
    response = {
        "type": "message",
        "id": "msg_1",
        "content": [
            {"type": "thinking", "thinking": "t", "signature": "s"},
            {"type": "text", "text": "x", "citations": [{"type": "char_location", "cited_text": "c"}]},
            {"type": "tool_use", "id": "toolu_1", "name": "n", "input": {"a": {"b": "deep"}}},
        ],
    }
    assert read_slots(response_slots(response)) == ["t", "x", "c", "a", "b", "deep"]


def test_an_error_response_exposes_its_message():
    error = {"type": "error", "error": {"type": "invalid_request_error", "message": "bad thing"}}
    assert read_slots(response_slots(error)) == ["bad thing"]


def test_a_streamed_block_start_exposes_its_strings():
    assert read_slots(block_slots({"type": "tool_use", "id": "t", "name": "n", "input": {"q": "v"}})) == ["q", "v"]
    assert read_slots(block_slots({"type": "text", "text": ""})) == [""]


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"model": "m"},
        {"messages": "hello"},
        {"messages": [{"role": "user"}]},
        {"messages": [{"role": "user", "content": 5}]},
        {"messages": [{"role": "user", "content": [{"text": "no type"}]}]},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]},
        {"messages": [], "system": {"a": 1}},
        {"messages": [], "tools": {"a": 1}},
        {"messages": [], "tools": [{"name": "t", "description": 3}]},
    ],
)
def test_it_rejects_bodies_whose_text_it_cannot_locate(body):
    with pytest.raises(InvalidPayload):
        request_slots(body)


def test_a_rejection_names_the_field_but_never_quotes_a_value():
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": ["i-0123456789abcdef0"]}]}]}
    with pytest.raises(InvalidPayload) as caught:
        request_slots(body)
    assert "messages.0.content.0" in str(caught.value)
    assert "i-0123456789abcdef0" not in str(caught.value)


def test_a_tool_inputs_keys_are_renamed_in_place_keeping_their_order_and_values():
    block = {"type": "tool_use", "id": "toolu_01", "name": "run", "input": {"a": 1, "i-0abc": {"i-0abc": "x"}, "z": 2}}
    slots = block_slots(block)
    renamed = {"i-0abc": "AWS_EC2_001", "x": "X"}

    write_slots(slots, [renamed.get(text, text) for text in read_slots(slots)])

    assert block["input"] == {"a": 1, "AWS_EC2_001": {"AWS_EC2_001": "X"}, "z": 2}
    assert list(block["input"]) == ["a", "AWS_EC2_001", "z"]
    assert (block["id"], block["name"]) == ("toolu_01", "run")


def test_an_unknown_blocks_keys_are_its_fields_and_stay():
    block = {"type": "future_block", "payload": {"i-0abc": "x"}}
    assert read_slots(block_slots(block)) == ["x"]
