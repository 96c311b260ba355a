"""What restoring a streamed answer costs in CPU: `StreamRestorer.feed`/`finish` against a plain relay.

    .venv/bin/python bench/streaming.py                           # masking/streaming.py
    git show 83c5bd7^:masking/streaming.py > /tmp/old_streaming.py  # before the in-place relay
    .venv/bin/python bench/streaming.py /tmp/old_streaming.py     # another version of the module, same bench

The stream is built here, framed the way the Claude API frames it (compact JSON, UTF-8 as is,
`{"type": "ping"}` with its space): a ~16 KB masked answer with 40 tokens like `AWS_EC2_001`, echoed
in text deltas of 40 characters, then the same answer with the originals in place of the tokens
("no token"). Each is fed cut into network chunks of 1-4 KB (10 cuttings), and one event per chunk
(as a model streams). The lookup answers from a dict (no Redis); the answer's tokens are looked up
before it starts (`TokenCache.originals`, counted in), as the proxy prefetches the request's tokens,
so every delta with a token takes the synchronous path; the restorer also gets the request's token
table, as the proxy gives it (the C pass restores whole known tokens from it). "relay" forwards the same chunks
untouched, as the gateway does with masking off. Figures are the best of BENCH_ROUNDS answers per
cutting (other processes share the cores), averaged over the cuttings. Django is set up
(masking.payload imports the app's errors) with a throwaway SQLite path; nothing touches a database
or Redis."""

import asyncio
import importlib.util
import inspect
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "300"))
DELTA_CHARS = 40


def setup_django(var_dir: str) -> None:
    os.environ.update(
        DEBUG="1",
        VAR_DIR=var_dir,
        ENV_FILE=str(Path(var_dir) / "none.env"),
        DATABASE_URL=f"sqlite:///{Path(var_dir) / 'bench.sqlite3'}",
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def load_module(path: str | None):
    if path is None:
        from masking import streaming

        return streaming
    spec = importlib.util.spec_from_file_location("streaming_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def answer() -> tuple[str, dict[str, str]]:
    """~16 KB of masked text with 40 tokens (10 kinds, repeated), and their originals."""
    rng = random.Random(5)
    kinds = ["EC2", "VPC", "SUBNET", "SG", "IAM_ROLE", "ACCESS_KEY", "ARN", "ACCOUNT", "S3", "ENI"]
    mapping = {f"AWS_{kind}_{n:03d}": f"original-{kind.lower()}-{n:017x}" for n, kind in enumerate(kinds, 1)}
    tokens = list(mapping)
    words = (
        "the instance cannot reach the database after we changed the security group rules and traffic "
        "from the load balancer times out while health checks keep failing on port 443; ünïcödé ✓ 日本語"
    ).split()
    parts, size, placed = [], 0, 0
    while size < 16 * 1024:
        if placed < 40 and rng.random() < 0.04:
            word = tokens[placed % len(tokens)]
            placed += 1
        else:
            word = rng.choice(words)
        parts.append(word)
        size += len(word.encode()) + 1
    return " ".join(parts), mapping


def event(payload: dict) -> bytes:
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return f"event: {payload['type']}\ndata: {data}\n\n".encode()


def stream(text: str) -> tuple[bytes, int]:
    message = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": "claude-sonnet-4-5",
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 4100, "output_tokens": 1},
    }
    events = [event({"type": "message_start", "message": message})]
    events.append(event({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}))
    events.append(b'event: ping\ndata: {"type": "ping"}\n\n')
    for i in range(0, len(text), DELTA_CHARS):
        piece = text[i : i + DELTA_CHARS]
        events.append(
            event({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}})
        )
    events.append(event({"type": "content_block_stop", "index": 0}))
    delta = {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}}
    events.append(event({**delta, "usage": {"output_tokens": 4000}}))
    events.append(event({"type": "message_stop"}))
    return b"".join(events), len(events)


def chunks_of(raw: bytes, seed: int) -> list[bytes]:
    rng, out, pos = random.Random(seed), [], 0
    while pos < len(raw):
        size = rng.randint(1024, 4096)
        out.append(raw[pos : pos + size])
        pos += size
    return out


def main() -> None:
    with tempfile.TemporaryDirectory() as var_dir:
        setup_django(var_dir)
        streaming = load_module(sys.argv[1] if len(sys.argv) > 1 else None)
    text, mapping = answer()
    for name, answer_text in (("40 tokens", text), ("no token", _plain(text, mapping))):
        measure(streaming, name, answer_text, mapping)


def _plain(text: str, mapping: dict[str, str]) -> str:
    for token, original in mapping.items():
        text = text.replace(token, original)
    return text


def measure(streaming, name: str, text: str, mapping: dict[str, str]) -> None:
    raw, events = stream(text)
    print(f"{name}: {len(raw)} bytes, {events} events, {text.count('AWS_')} tokens")
    one_each = [event + b"\n\n" for event in raw.split(b"\n\n")[:-1]]
    for label, chunkings in (
        ("chunks of 1-4 KB", [chunks_of(raw, seed) for seed in range(10)]),
        ("an event a chunk", [one_each]),
    ):
        measure_chunks(streaming, label, chunkings, events, mapping)


def measure_chunks(streaming, label: str, chunkings: list[list[bytes]], events: int, mapping: dict[str, str]) -> None:

    async def lookup(tokens):
        return {token: mapping[token] for token in tokens if token in mapping}

    # The request's tokens as the masker hands them to the proxy (MaskResult.restore): the C pass
    # restores a delta from them. An older module's StreamRestorer takes the cache alone.
    table = {token.encode(): json.dumps(text, ensure_ascii=False)[1:-1].encode() for token, text in mapping.items()}
    takes_table = "table" in inspect.signature(streaming.StreamRestorer).parameters

    async def restored(chunks) -> bytes:
        cache = streaming.TokenCache(lookup)
        await cache.originals(list(mapping))  # the proxy's prefetch
        restorer = streaming.StreamRestorer(cache, table) if takes_table else streaming.StreamRestorer(cache)
        out = [await restorer.feed(chunk) for chunk in chunks]
        out.append(await restorer.finish())
        return b"".join(out)

    async def relayed(chunks) -> bytes:
        out = [chunk for chunk in chunks]
        return b"".join(out)

    rounds = max(1, ROUNDS // len(chunkings))

    async def timed(run) -> float:
        """Per chunking, the best of `rounds` answers (other processes share the cores); the mean over chunkings."""
        bests = []
        for chunks in chunkings:
            best = float("inf")
            for _ in range(rounds):
                started = time.perf_counter()
                await run(chunks)
                best = min(best, time.perf_counter() - started)
            bests.append(best)
        return sum(bests) / len(bests)

    async def run():
        check = await restored(chunkings[0])
        assert "AWS_" not in check.decode(), "a token was left in the restored stream"
        return await timed(relayed), await timed(restored)

    relay, restore = asyncio.run(run())
    print(f"  {label}:")
    print(f"    relay:    {relay * 1e3:7.3f} ms per answer  {relay * 1e6 / events:6.2f} us per event")
    print(f"    restorer: {restore * 1e3:7.3f} ms per answer  {restore * 1e6 / events:6.2f} us per event")
    print(f"    ratio restorer/relay: {restore / relay:.0f}x")


if __name__ == "__main__":
    main()
