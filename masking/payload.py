"""Which strings of an Anthropic Messages request or response are text.

The walkers return *slots*: (container, key) pairs whose value is a string that may hold an AWS
identifier. The proxy reads every slot, masks (or restores) all of them in one call, and writes
them back, so a whole request costs one store round trip. Ids, signatures, model names, tool
names and images are never slots; the keys of a tool input are (`KeyOf`). A block type the gateway
does not know is walked whole (every string value except the structural keys'), so a new API
feature can leak nothing."""

from typing import Any

from masking.errors import InvalidPayload

Slot = tuple["dict | list | KeyOf", str | int]  # KeyOf: the slot is the key itself

# Keys that name or sign things; changing them would break the API contract, never text.
_STRUCTURAL_KEYS = frozenset(
    {
        "type",
        "id",
        "tool_use_id",
        "signature",
        "name",
        "media_type",
        "cache_control",
        "encrypted_content",
        "encrypted_index",
        "file_id",
    }
)
_OPAQUE_BLOCKS = frozenset({"image", "redacted_thinking"})


def request_slots(body: Any) -> list[Slot]:
    """The text slots of a `/v1/messages` or `/v1/messages/count_tokens` request body."""
    if not isinstance(body, dict):
        raise InvalidPayload("the request body must be a JSON object")
    slots: list[Slot] = []
    if "system" in body:
        _content(body, "system", slots, "system")
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise InvalidPayload("messages: an array is required")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or "content" not in message:
            raise InvalidPayload(f"messages.{i}: an object with content is required")
        _content(message, "content", slots, f"messages.{i}.content")
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise InvalidPayload("tools: an array is required")
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict):
                raise InvalidPayload(f"tools.{i}: an object is required")
            _optional_text(tool, "description", slots, f"tools.{i}.description")
            _descriptions(tool.get("input_schema"), slots)
    return slots


def response_slots(body: Any) -> list[Slot]:
    """The text slots of a Messages response, or of an error body (its message)."""
    if not isinstance(body, dict):
        return []
    if body.get("type") == "error":
        error = body.get("error")
        slots: list[Slot] = []
        if isinstance(error, dict):
            _optional_text(error, "message", slots, "error.message")
        return slots
    content = body.get("content")
    if not isinstance(content, list):
        return []
    slots = []
    _blocks(content, slots, "content")
    return slots


def block_slots(block: Any) -> list[Slot]:
    """The text slots of one content block (a streamed `content_block_start`)."""
    slots: list[Slot] = []
    if isinstance(block, dict):
        _block(block, slots, "content_block")
    return slots


class KeyOf:
    """The container of a slot that is an object's *key* (a tool input is user data: `{"i-0abc...":
    "running"}`). Reading gives the key; writing renames it, keeping the object's order."""

    __slots__ = ("node",)

    def __init__(self, node: dict) -> None:
        self.node = node

    def __getitem__(self, key: str) -> str:
        return key

    def __setitem__(self, key: str, new: str) -> None:
        if new != key:  # two keys that become one token (or one redaction marker): the last one wins
            items = list(self.node.items())
            self.node.clear()
            self.node.update((new if name == key else name, value) for name, value in items)


def read_slots(slots: list[Slot]) -> list[str]:
    return [container[key] for container, key in slots]


def write_slots(slots: list[Slot], texts: list[str]) -> None:
    renames = []
    for (container, key), text in zip(slots, texts, strict=True):
        if type(container) is KeyOf:
            renames.append((container, key, text))  # after the values: their slots name the old keys
        else:
            container[key] = text
    for container, key, text in reversed(renames):  # innermost first, though each object is its own
        container[key] = text


def _content(parent: dict, key: str, slots: list[Slot], where: str) -> None:
    value = parent[key]
    if isinstance(value, str):
        slots.append((parent, key))
    elif isinstance(value, list):
        _blocks(value, slots, where)
    else:
        raise InvalidPayload(f"{where}: a string or an array of content blocks is required")


def _blocks(blocks: list, slots: list[Slot], where: str) -> None:
    for i, block in enumerate(blocks):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise InvalidPayload(f"{where}.{i}: a content block object with a type is required")
        _block(block, slots, f"{where}.{i}")


def _block(block: dict, slots: list[Slot], where: str) -> None:
    kind = block.get("type")
    if kind in _OPAQUE_BLOCKS:
        return
    if kind == "text":
        _required_text(block, "text", slots, where)
        _citations(block.get("citations"), slots)
    elif kind == "thinking":
        _required_text(block, "thinking", slots, where)
    elif kind in ("tool_use", "server_tool_use"):
        _json_strings(block, "input", slots)
    elif kind == "tool_result":
        if "content" in block:
            _content(block, "content", slots, f"{where}.content")
    elif kind == "document":
        _document(block, slots, where)
    else:
        for key in block:
            if key not in _STRUCTURAL_KEYS:
                _json_strings(block, key, slots, structural=True)


def _document(block: dict, slots: list[Slot], where: str) -> None:
    _optional_text(block, "title", slots, f"{where}.title")
    _optional_text(block, "context", slots, f"{where}.context")
    source = block.get("source")
    if not isinstance(source, dict):
        raise InvalidPayload(f"{where}.source: an object is required")
    if source.get("type") == "text":
        _required_text(source, "data", slots, f"{where}.source")
    elif source.get("type") == "content":
        _content(source, "content", slots, f"{where}.source.content")
    # base64 PDFs, URLs and file ids are references, passed as they are (like images).


def _citations(citations: Any, slots: list[Slot]) -> None:
    if isinstance(citations, list):
        for citation in citations:
            if isinstance(citation, dict):
                for key in ("cited_text", "document_title", "title"):
                    _optional_text(citation, key, slots, "citation")


def _json_strings(parent: dict | list, key: str | int, slots: list[Slot], structural: bool = False) -> None:
    """Every string at any depth below parent[key].

    With `structural` (blocks of unknown types), string values only, skipping the values of
    structural keys and base64 sources. Without it (tool inputs, user data through and through),
    object keys too: a tool input may be keyed by instance ids."""
    node = parent.get(key) if isinstance(parent, dict) else parent[key]
    if isinstance(node, str):
        slots.append((parent, key))
    elif isinstance(node, dict):
        if structural and node.get("type") == "base64":
            return
        keys = None if structural else KeyOf(node)
        for child in node:
            if keys is not None and isinstance(child, str):
                slots.append((keys, child))
            if not (structural and child in _STRUCTURAL_KEYS):
                _json_strings(node, child, slots, structural)
    elif isinstance(node, list):
        for i in range(len(node)):
            _json_strings(node, i, slots, structural)


def _descriptions(schema: Any, slots: list[Slot]) -> None:
    """`description` strings anywhere in a tool's JSON schema (property names are identifiers, kept)."""
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "description" and isinstance(value, str):
                slots.append((schema, key))
            else:
                _descriptions(value, slots)
    elif isinstance(schema, list):
        for item in schema:
            _descriptions(item, slots)


def _required_text(parent: dict, key: str, slots: list[Slot], where: str) -> None:
    if not isinstance(parent.get(key), str):
        raise InvalidPayload(f"{where}.{key}: a string is required")
    slots.append((parent, key))


def _optional_text(parent: dict, key: str, slots: list[Slot], where: str) -> None:
    value = parent.get(key)
    if value is None:
        return
    if not isinstance(value, str):
        raise InvalidPayload(f"{where}: a string is required")
    slots.append((parent, key))
