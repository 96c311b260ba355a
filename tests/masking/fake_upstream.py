"""A small stand-in for the Claude API: the real Messages JSON and SSE framing, nothing else.

It records exactly what it received, and answers by echoing the prompt (the text of the last
message) as a text block, a tool call or a thinking block. Streams can be cut into chunks at any
byte positions, and paused after the first delta until the test lets them go on. Thinking blocks
are "signed" with a hash of the text the model saw, and checked when they come back, as the real
API does.
"""

import asyncio
import hashlib
import json
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import uvicorn

from tests.ports import free_port  # not tests.redis_server: importing it starts a redis-server

TOOL = {
    "name": "run_aws_cli",
    "description": "Runs an AWS CLI command and returns its output.",
    "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]},
}


@dataclass
class Received:
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


def sign(thinking: str) -> str:
    return hashlib.sha256(thinking.encode()).hexdigest()


def last_message_text(body: dict) -> str:
    """The text of the last message: strings, text blocks and tool results, joined by newlines."""
    content = body["messages"][-1]["content"]
    if isinstance(content, str):
        return content
    parts = []
    for block in content:
        if block["type"] == "text":
            parts.append(block["text"])
        elif block["type"] == "tool_result":
            inner = block.get("content", "")
            parts += [inner] if isinstance(inner, str) else [b["text"] for b in inner if b["type"] == "text"]
    return "\n".join(parts)


@dataclass
class FakeUpstream:
    """The ASGI app. Tests change its attributes to script the next answers."""

    reply: str = "text"  # "text", "tool" (a tool_use echoing the prompt), "thinking" (thinking + text)
    status: int = 200
    error: dict | None = None  # with status >= 400: the error body
    chunk_size: int | None = None  # stream in chunks of this many bytes
    split_at: list[int] | None = None  # or cut the stream at these byte positions
    delta_size: int = 7  # characters per text delta: tokens get split across deltas
    hold: threading.Event | None = None  # pause after the first content delta until set
    delay: float = 0.0  # seconds before answering (timeout tests)
    received: list[Received] = field(default_factory=list)
    disconnected: threading.Event = field(default_factory=threading.Event)
    invalid_signatures: int = 0
    chunk_pause: float = 0.0  # seconds between chunks, so each chunk is a separate read on the other side
    record: bool = True  # off in benchmarks, which send thousands of requests
    write_json: Callable[[dict], str] | None = None  # how JSON answers are written (default: UTF-8, not escaped)
    gzip: bool = False  # answers gzip-compressed (Content-Encoding: gzip), as for "Accept-Encoding: gzip"

    def reset(self) -> None:
        """Back to the defaults, keeping the same object (a server may be serving it)."""
        self.__init__()

    @property
    def last(self) -> Received:
        return self.received[-1]

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {name.decode().lower(): value.decode() for name, value in scope["headers"]}
        if self.record:
            self.received.append(Received(scope["path"], scope["query_string"].decode(), headers, body))
        if self.gzip:
            send = _gzipped(send)
        if self.delay:
            watcher = asyncio.create_task(self._watch_disconnect(receive))
            await asyncio.sleep(self.delay)
            watcher.cancel()
        request = json.loads(body)
        if self.status >= 400:
            await _send_json(send, self.status, self._error(request), self.write_json)
            return
        if scope["path"].endswith("/count_tokens"):
            await _send_json(send, 200, {"input_tokens": len(body) // 4}, self.write_json)
            return
        self._check_signatures(request)
        blocks = self.answer(request)
        if request.get("stream"):
            await self._stream(request, blocks, receive, send)
        else:
            await _send_json(send, 200, message_json(request, blocks), self.write_json)

    def answer(self, request: dict) -> list[dict]:
        text = last_message_text(request)
        if self.reply == "tool":
            return [{"type": "tool_use", "id": "toolu_01", "name": TOOL["name"], "input": {"command": text}}]
        if self.reply == "thinking":
            return [{"type": "thinking", "thinking": text, "signature": sign(text)}, {"type": "text", "text": text}]
        return [{"type": "text", "text": text}]

    def _error(self, request: dict) -> dict:
        """The scripted error; "{prompt}" in its message echoes the prompt, as validation errors quote input."""
        error = json.loads(json.dumps(self.error or {"type": "error", "error": {"type": "api_error", "message": ""}}))
        error["error"]["message"] = error["error"]["message"].replace("{prompt}", last_message_text(request))
        return error

    def _check_signatures(self, request: dict) -> None:
        for message in request["messages"]:
            for block in message["content"] if isinstance(message["content"], list) else []:
                if block["type"] == "thinking" and block["signature"] != sign(block["thinking"]):
                    self.invalid_signatures += 1

    async def _stream(self, request: dict, blocks: list[dict], receive, send) -> None:
        head, tail = sse_events(request, blocks, self.delta_size)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        watcher = asyncio.create_task(self._watch_disconnect(receive))
        try:
            for chunk in self._chunks(head + tail, len(head)):
                if chunk is None:
                    await asyncio.to_thread(self.hold.wait, 30)
                    continue
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                if self.chunk_pause:
                    await asyncio.sleep(self.chunk_pause)
            await send({"type": "http.response.body", "body": b""})
        finally:
            watcher.cancel()

    def _chunks(self, raw: bytes, pause_at: int) -> Iterator[bytes | None]:
        cuts = set(self.split_at or ())
        if self.chunk_size:
            cuts |= set(range(self.chunk_size, len(raw), self.chunk_size))
        if self.hold:
            cuts.add(pause_at)
        start = 0
        for cut in sorted(c for c in cuts if 0 < c < len(raw)) + [len(raw)]:
            yield raw[start:cut]
            if self.hold and cut == pause_at:
                yield None
            start = cut

    async def _watch_disconnect(self, receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.disconnected.set()


def message_json(request: dict, blocks: list[dict]) -> dict:
    return {
        "id": "msg_01fake",
        "type": "message",
        "role": "assistant",
        "model": request.get("model", "claude-fake"),
        "content": blocks,
        "stop_reason": "tool_use" if blocks and blocks[-1]["type"] == "tool_use" else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 10},
    }


def sse_events(request: dict, blocks: list[dict], delta_size: int) -> tuple[bytes, bytes]:
    """The answer as the Claude API streams it, split after the first content delta."""
    start = message_json(request, [])
    start["stop_reason"] = None
    events = [{"type": "message_start", "message": start}]
    first_delta = None
    for index, block in enumerate(blocks):
        events.append({"type": "content_block_start", "index": index, "content_block": _empty(block)})
        if index == 0:
            events.append({"type": "ping"})
        for delta in _deltas(block, delta_size):
            events.append({"type": "content_block_delta", "index": index, "delta": delta})
            first_delta = first_delta or len(events)
        events.append({"type": "content_block_stop", "index": index})
    stop_reason = message_json(request, blocks)["stop_reason"]
    events.append({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None}})
    events[-1]["usage"] = {"output_tokens": 10}
    events.append({"type": "message_stop"})
    encoded = [f"event: {e['type']}\ndata: {json.dumps(e, ensure_ascii=False)}\n\n".encode() for e in events]
    return b"".join(encoded[:first_delta]), b"".join(encoded[first_delta:])


def _empty(block: dict) -> dict:
    if block["type"] == "tool_use":
        return {**block, "input": {}}
    if block["type"] == "thinking":
        return {"type": "thinking", "thinking": "", "signature": ""}
    return {"type": "text", "text": ""}


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _deltas(block: dict, size: int) -> list[dict]:
    if block["type"] == "tool_use":
        raw = json.dumps(block["input"], ensure_ascii=False)
        return [{"type": "input_json_delta", "partial_json": piece} for piece in _pieces(raw, size)]
    if block["type"] == "thinking":
        pieces = [{"type": "thinking_delta", "thinking": piece} for piece in _pieces(block["thinking"], size)]
        return pieces + [{"type": "signature_delta", "signature": block["signature"]}]
    return [{"type": "text_delta", "text": piece} for piece in _pieces(block["text"], size)]


def _gzipped(send):
    """`send`, compressing the answer's body with gzip as it goes (each chunk decodable on arrival)."""
    packer = zlib.compressobj(wbits=31)

    async def send_gzipped(message) -> None:
        if message["type"] == "http.response.start":
            headers = [(name, value) for name, value in message["headers"] if name.lower() != b"content-length"]
            await send({**message, "headers": headers + [(b"content-encoding", b"gzip")]})
            return
        more = message.get("more_body", False)
        body = packer.compress(message.get("body", b"")) + packer.flush(zlib.Z_SYNC_FLUSH if more else zlib.Z_FINISH)
        await send({**message, "body": body})

    return send_gzipped


async def _send_json(send, status: int, body: dict, write: Callable[[dict], str] | None = None) -> None:
    raw = (write(body) if write else json.dumps(body, ensure_ascii=False)).encode()
    headers = [(b"content-type", b"application/json"), (b"request-id", b"req_fake_01")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})


def bench_app() -> FakeUpstream:
    """`uvicorn --factory tests.masking.fake_upstream:bench_app`: answers at once, records nothing."""
    return FakeUpstream(record=False, delta_size=40)


@contextmanager
def serving(app: FakeUpstream) -> Iterator[str]:
    """Run `app` under uvicorn in a thread on a free port; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the fake upstream did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        if app.hold:
            app.hold.set()
        server.should_exit = True
        thread.join(10)
