import asyncio
import json
import random

import pytest

from masking import streaming
from masking.masker import mask_texts
from masking.store import alookup_originals, lookup_originals
from masking.streaming import SSEParser, StreamRestorer, TokenCache, hold_start
from masking.tokens import find_tokens
from tests.masking.fake_upstream import sse_events
from tests.masking.samples import ORIGINALS, PROMPT, SHORT_PROMPT

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True, params=["c-pass", "regex"])
def plain_runs(request, monkeypatch):
    """Every test twice: runs of plain deltas read by the C pass (masking/_restore.c), and by the regex."""
    if request.param == "regex":
        monkeypatch.setattr(streaming, "_c_plain_run", None)
    elif streaming._c_plain_run is None:
        pytest.skip("masking._restore is not built")


def masked(text: str) -> tuple[str, dict[str, str]]:
    """`text` masked for real, and its token -> original map (read back from Redis once)."""
    result = mask_texts([text])
    tokens = [match.token for match in find_tokens(result.texts[0])]
    return result.texts[0], lookup_originals(tokens)


def dict_lookup(mapping: dict[str, str], calls: list | None = None):
    async def lookup(tokens):
        if calls is not None:
            calls.append(list(tokens))
        return {token: mapping[token] for token in tokens if token in mapping}

    return lookup


def answer_stream(text: str, delta_size: int = 7) -> bytes:
    blocks = [
        {"type": "thinking", "thinking": text, "signature": "sig"},
        {"type": "text", "text": text},
        {"type": "tool_use", "id": "toolu_1", "name": "run", "input": {"command": text, "args": [text]}},
    ]
    head, tail = sse_events({"model": "m"}, blocks, delta_size)
    return head + tail


async def arestore(chunks: list[bytes], lookup, prefetch: list[str] | None = None) -> bytes:
    cache = TokenCache(lookup)
    if prefetch is not None:  # as the proxy does: the request's tokens looked up before the stream
        await cache.originals(prefetch)
    restorer = StreamRestorer(cache)
    out = [await restorer.feed(chunk) for chunk in chunks]
    return b"".join(out) + await restorer.finish()


def restore(chunks: list[bytes], lookup, prefetch: list[str] | None = None) -> bytes:
    return asyncio.run(arestore(chunks, lookup, prefetch))


def blocks_of(stream: bytes) -> dict[int, dict]:
    """What an SDK accumulates from a stream: each block's text, thinking and tool input."""
    blocks: dict[int, dict] = {}
    for event in SSEParser().feed(stream, final=True):
        data = json.loads(event.data)
        if data["type"] == "content_block_start":
            blocks[data["index"]] = {"text": "", "thinking": "", "partial_json": ""}
        elif data["type"] == "content_block_delta":
            delta = data["delta"]
            for field in ("text", "thinking", "partial_json"):
                blocks[data["index"]][field] += delta.get(field, "")
    return blocks


def assert_restored(stream: bytes, original: str) -> None:
    blocks = blocks_of(stream)
    assert blocks[0]["thinking"] == original
    assert blocks[1]["text"] == original
    assert json.loads(blocks[2]["partial_json"]) == {"command": original, "args": [original]}


def test_the_client_gets_the_originals_back_byte_for_byte_for_every_split_position():
    text, mapping = masked(SHORT_PROMPT)
    assert "i-0a1b2c3d4e5f67890" not in text
    raw = answer_stream(text)
    lookup = dict_lookup(mapping)

    async def every_cut() -> list[bytes]:
        return [await arestore([raw[:cut], raw[cut:]], lookup) for cut in range(len(raw) + 1)]

    for stream in asyncio.run(every_cut()):
        assert_restored(stream, SHORT_PROMPT)


def test_one_byte_chunks_of_a_long_answer_are_restored_byte_for_byte():
    text, mapping = masked(PROMPT)
    raw = answer_stream(text, delta_size=5)
    assert_restored(restore([raw[i : i + 1] for i in range(len(raw))], dict_lookup(mapping)), PROMPT)


def test_every_delta_size_splits_tokens_differently_and_all_are_restored():
    text, mapping = masked(SHORT_PROMPT)
    for delta_size in range(1, 40):
        assert_restored(restore([answer_stream(text, delta_size)], dict_lookup(mapping)), SHORT_PROMPT)


def test_restoring_reads_the_real_store_once_per_token():
    text, _ = masked(SHORT_PROMPT)
    calls = []

    async def counting_lookup(tokens):
        calls.append(tokens)
        return await alookup_originals(tokens)

    assert_restored(restore([answer_stream(text, 3)], counting_lookup), SHORT_PROMPT)
    looked_up = [token for call in calls for token in call]
    assert sorted(looked_up) == sorted(set(looked_up)) == sorted({m.token for m in find_tokens(text)})


def delta(index: int, text: str, kind: str = "text_delta", field: str = "text") -> bytes:
    payload = {"type": "content_block_delta", "index": index, "delta": {"type": kind, field: text}}
    return f"event: content_block_delta\ndata: {json.dumps(payload)}\n\n".encode()


def start(index: int, block: dict) -> bytes:
    payload = {"type": "content_block_start", "index": index, "content_block": block}
    return f"event: content_block_start\ndata: {json.dumps(payload)}\n\n".encode()


def test_text_without_a_possible_token_start_is_forwarded_at_once_unchanged():
    async def run():
        restorer = StreamRestorer(dict_lookup({}))
        await restorer.feed(start(0, {"type": "text", "text": ""}))
        return await restorer.feed(delta(0, "Hello wörld, nothing to hide. "))

    assert asyncio.run(run()) == delta(0, "Hello wörld, nothing to hide. ")


def test_only_a_possible_token_prefix_is_held_back_until_the_block_stops():
    mapping = {"AWS_EC2_001": "i-0123456789abcdef0"}

    async def run():
        restorer = StreamRestorer(dict_lookup(mapping))
        first = await restorer.feed(delta(0, "Instance AWS_EC"))
        second = await restorer.feed(delta(0, "2_001"))
        stop = await restorer.feed(b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n')
        return first, second, stop

    first, second, stop = asyncio.run(run())
    assert blocks_text(first) == "Instance "
    assert second == b""  # AWS_EC2_001 could still become AWS_EC2_0012
    assert blocks_text(stop) == "i-0123456789abcdef0"
    assert stop.endswith(b'"content_block_stop","index":0}\n\n')


def blocks_text(stream: bytes) -> str:
    events = [json.loads(e.data) for e in SSEParser().feed(stream, final=True)]
    return "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")


def test_a_longer_token_that_starts_like_a_known_one_is_not_cut_short():
    mapping = {"AWS_EC2_001": "i-0123456789abcdef0", "AWS_EC2_0012": "i-0fedcba9876543210"}
    stream = delta(0, "AWS_EC2_001") + delta(0, "2 and AWS_EC2_001.") + delta(0, " done")
    assert blocks_text(restore([stream], dict_lookup(mapping))) == "i-0fedcba9876543210 and i-0123456789abcdef0. done"


def test_the_hold_back_never_exceeds_the_longest_token():
    assert hold_start("x" * 500) == 500
    assert hold_start("see AWS_EC2_00") == 4
    assert hold_start("see AWS_EC2_001 ") == 16
    assert hold_start("seeAWS_EC") == 9  # not at a word boundary: cannot be a token
    long_prefix = "AWS_" + "A" * 200
    assert hold_start(long_prefix) == len(long_prefix)


def test_markdown_and_json_escaped_tokens_split_across_input_json_deltas_are_restored():
    mapping = {"AWS_EC2_001": "i-0123456789abcdef0", "AWS_VPC_002": 'vpc-"quoted"'}
    raw_json = json.dumps({"command": "see AWS\\_EC2\\_001 and AWS_VPC_002"})
    stream = start(0, {"type": "tool_use", "id": "t", "name": "n", "input": {}})
    for i in range(0, len(raw_json), 3):
        stream += delta(0, raw_json[i : i + 3], "input_json_delta", "partial_json")
    stream += b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
    restored = blocks_of(restore([stream], dict_lookup(mapping)))[0]["partial_json"]
    assert json.loads(restored) == {"command": 'see i-0123456789abcdef0 and vpc-"quoted"'}


def test_tokens_the_store_does_not_know_are_left_as_they_are():
    stream = delta(0, "ask about AWS_EC2_999 please")
    assert blocks_text(restore([stream], dict_lookup({}))) == "ask about AWS_EC2_999 please"


def test_an_error_event_message_is_restored():
    event = {"type": "error", "error": {"type": "overloaded_error", "message": "AWS_EC2_001 is busy"}}
    raw = f"event: error\ndata: {json.dumps(event)}\n\n".encode()
    out = restore([raw], dict_lookup({"AWS_EC2_001": "i-0123456789abcdef0"}))
    [parsed] = SSEParser().feed(out, final=True)
    assert json.loads(parsed.data)["error"]["message"] == "i-0123456789abcdef0 is busy"


def test_every_original_in_the_samples_is_masked_by_the_engine():
    text, _ = masked(PROMPT)
    for original in ORIGINALS:
        assert original not in text


def compact(payload: dict) -> bytes:
    """One event framed the way the Claude API frames it: compact JSON, UTF-8 as it is."""
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return f"event: {payload['type']}\ndata: {data}\n\n".encode()


def compact_delta(index: int, text: str, kind: str = "text_delta", field: str = "text") -> bytes:
    return compact({"type": "content_block_delta", "index": index, "delta": {"type": kind, field: text}})


def compact_answer(pieces: list[str]) -> bytes:
    """A whole streamed text answer, one delta per piece, in the Claude API's framing."""
    message = {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "m"}
    events = [compact({"type": "message_start", "message": {**message, "stop_reason": None, "usage": {}}})]
    events.append(compact({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}))
    events.append(b'event: ping\ndata: {"type": "ping"}\n\n')
    events += [compact_delta(0, piece) for piece in pieces]
    events.append(compact({"type": "content_block_stop", "index": 0}))
    events.append(compact({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {}}))
    events.append(compact({"type": "message_stop"}))
    return b"".join(events)


# Text with no token: capitals, "AWS" as a word, escapes (quotes, line feeds, backslashes), UTF-8
# of every length, an empty delta. No delta ends in "A" or "AW" (that tail would be held back).
PLAIN_PIECES = ["Hello, ", "A cat and AWS CLI ", 'say "hi"\n', "wörld 日本 🚀", "", "path C:\\tmp ", "AWx", "done."]


def without_tokens_framings() -> dict[str, bytes]:
    claude = compact_answer(PLAIN_PIECES)
    head, tail = sse_events({"model": "m"}, [{"type": "text", "text": "".join(PLAIN_PIECES)}], 7)
    extras = (
        b": ping\n\n"  # a comment
        + b'event: message_delta\ndata: {"type":\n'
        + b'data: "message_delta", "delta": {}}\n\n'  # multi-line data
        + b"\n\nevent: unknown_kind\ndata: not json AWS\n\n"  # empty lines, data that is no JSON
    )
    return {
        "claude": claude,
        "json.dumps": head + tail,
        "crlf": claude.replace(b"\n", b"\r\n"),
        "cr": claude.replace(b"\n", b"\r"),
        "comments and multi-line data": claude[: len(claude) // 2].rsplit(b"\n\n", 1)[0] + b"\n\n" + extras + claude,
    }


@pytest.mark.parametrize("framing", ["claude", "json.dumps", "crlf", "cr", "comments and multi-line data"])
def test_an_answer_without_tokens_comes_out_byte_for_byte_wherever_it_is_cut(framing):
    raw = without_tokens_framings()[framing]
    calls = []
    lookup = dict_lookup({}, calls)

    async def every_cut() -> list[bytes]:
        outs = [await arestore([raw[:cut], raw[cut:]], lookup) for cut in range(len(raw) + 1)]
        outs.append(await arestore([raw[i : i + 1] for i in range(len(raw))], lookup))
        return outs

    for cut, out in enumerate(asyncio.run(every_cut())):
        assert out == raw, (framing, cut)
    assert calls == []  # no lookup either


def test_events_without_a_token_go_out_as_they_came_between_restored_ones():
    mapping = {"AWS_EC2_001": "i-0123456789abcdef0", "AWS_VPC_002": "vpc-0a1b2c3d"}
    pieces = ["Instance AWS_EC", "2_001 is in ", "the vpc ", "AWS_VPC_002. ", "Nothing else, ", "really (AWS_EC2_001)"]
    pieces += [" bye", " ü ", "AWS_VPC_002"]
    raw = compact_answer(pieces)
    original = (
        "".join(pieces).replace("AWS_EC2_001", mapping["AWS_EC2_001"]).replace("AWS_VPC_002", mapping["AWS_VPC_002"])
    )
    untouched = [compact_delta(0, piece) for piece in ("the vpc ", "Nothing else, ", " bye", " ü ")]
    lookup = dict_lookup(mapping)

    async def every_cut() -> list[bytes]:
        return [await arestore([raw[:cut], raw[cut:]], lookup) for cut in range(len(raw) + 1)]

    for cut, out in enumerate(asyncio.run(every_cut())):
        assert blocks_text(out) == original, cut
        assert b"AWS_" not in out, cut
        for event in untouched:
            assert event in out, (cut, event)
        assert out.startswith(raw[: raw.index(b"event: content_block_delta")]), cut  # start, ping: as they came
        assert out.endswith(raw[raw.index(b"event: content_block_stop") :]), cut


@pytest.mark.parametrize("framing", [compact_delta, delta])
def test_a_token_glued_to_the_text_of_the_previous_delta_is_no_token(framing):
    mapping = {"AWS_EC2_001": "i-0123456789abcdef0"}
    cases = {
        "xyz": "xyzAWS_EC2_001 ok",  # a word character before: not a token
        "xy_": "xy_AWS_EC2_001 ok",
        "xyz ": "xyz i-0123456789abcdef0 ok",
        "xyé": "xyéi-0123456789abcdef0 ok",  # a non-ASCII letter is no word character for the grammar
        "xy\n": "xy\ni-0123456789abcdef0 ok",  # an escape in JSON: a line feed, no letter
        "xy\\n": "xy\\nAWS_EC2_001 ok",  # a backslash, then the letter n
        "xy\\\n": "xy\\\ni-0123456789abcdef0 ok",  # a backslash, then a line feed
        'xy"': 'xy"i-0123456789abcdef0 ok',
        "xy\\": "xy\\i-0123456789abcdef0 ok",
        "xy\t/": "xy\t/i-0123456789abcdef0 ok",
        "ü": "üi-0123456789abcdef0 ok",
        "": "i-0123456789abcdef0 ok",
    }
    for before, expected in cases.items():
        stream = framing(0, "first ") + framing(0, before) + framing(0, "AWS_EC2_001 ok")
        assert blocks_text(restore([stream], dict_lookup(mapping))) == "first " + expected, before


def test_a_crlf_framed_stream_with_tokens_is_restored_wherever_it_is_cut():
    mapping = {"AWS_EC2_001": "i-0123456789abcdef0"}
    raw = compact_answer(["Instance AWS_E", "C2_001 and ", "AWS_EC2_001"]).replace(b"\n", b"\r\n")
    lookup = dict_lookup(mapping)

    async def every_cut() -> list[bytes]:
        return [await arestore([raw[:cut], raw[cut:]], lookup) for cut in range(len(raw) + 1)]

    for cut, out in enumerate(asyncio.run(every_cut())):
        assert blocks_text(out) == "Instance i-0123456789abcdef0 and i-0123456789abcdef0", cut


def test_restored_and_unresolved_counts_are_kept_on_the_fast_path_too():
    mapping = {"AWS_EC2_001": "i-0123456789abcdef0"}
    pieces = ["a ", "AWS_EC2_001 b ", "c ", "AWS_EC", "2_001 ", "AWS_EC2_999 d", " e"]

    async def run():
        restorer = StreamRestorer(dict_lookup(mapping))
        out = await restorer.feed(compact_answer(pieces)) + await restorer.finish()
        return out, restorer.cache

    out, cache = asyncio.run(run())
    assert blocks_text(out) == "a i-0123456789abcdef0 b c i-0123456789abcdef0 AWS_EC2_999 d e"
    assert cache.restored_counts == {"AWS_EC2_001": 2}
    assert cache.unresolved_count == 1


def test_a_json_escaped_text_gets_its_originals_escaped_and_its_unknown_tokens_exactly_as_written():
    cache = TokenCache(dict_lookup({}))
    cache.known.update({"AWS_EC2_001": 'i-"quoted"\\path', "AWS_EC2_999": None})

    restored = cache.restore_known('{"a": "AWS\\\\_EC2\\\\_001", "b": "AWS\\\\_EC2\\\\_999"}', json_escaped=True)

    assert json.loads(restored) == {"a": 'i-"quoted"\\path', "b": "AWS\\_EC2\\_999"}
    assert (cache.restored_counts, cache.unresolved_count) == ({"AWS_EC2_001": 1}, 1)


def test_an_unfinished_last_event_is_relayed_and_a_held_tail_still_follows_it():
    mapping = {"AWS_EC2_001": "i-0123456789abcdef0"}
    raw = compact_delta(0, "see AWS_EC2_001") + b": the upstream stopped here"

    out = restore([raw], dict_lookup(mapping))
    assert out.startswith(compact_delta(0, "see ") + b": the upstream stopped here\n\n")
    assert blocks_text(out) == "see i-0123456789abcdef0"


# Pieces of delta texts: tokens whole and cut anywhere, what only looks like one, escapes (`\"`, `\\`,
# line ends; `\u00e9` when the framing writes ASCII only, or every character), "A" and "AW" that may
# start a token.
TRICKY_MAPPING = {"AWS_EC2_001": "i-0123456789abcdef0", "AWS_VPC_002": 'vpc-"q"\\x\n', "AWS_EC2_0012": "ü✓"}
TRICKY_PIECES = ["AWS_EC2_001", "AWS_VPC_002", "AWS_EC2_0012", "AWS_EC2_999", "AWS\\_EC2\\_001", "AWS_EC"]
TRICKY_PIECES += ["AWS", "AW", "A", "WS_EC2_001", "2_001", "_001", "xA", "AWx", "x", " ", "é", "🚀", '"', "\\", "\n"]
TRICKY_PIECES += ["\t", "/", "_", "1", "Z"]
_KINDS = [("text_delta", "text"), ("thinking_delta", "thinking"), ("input_json_delta", "partial_json")]


def reference_restore(text: str, json_escaped: bool) -> str:
    """The tokens of a whole block's text replaced at once: what the client must read in the end."""
    out, pos = [], 0
    for match in find_tokens(text):
        if (original := TRICKY_MAPPING.get(match.token)) is not None:
            out += [
                text[pos : match.start],
                json.dumps(original, ensure_ascii=False)[1:-1] if json_escaped else original,
            ]
            pos = match.end
    return "".join(out) + text[pos:]


def tricky_stream(rng: random.Random, events: int) -> tuple[bytes, dict[int, str]]:
    """Deltas of one to three interleaved blocks in a random framing, and each block's restored text."""
    compact, ascii_only = rng.random() < 0.6, rng.random() < 0.3
    separators = (",", ":") if compact else None

    def framed(payload: dict) -> bytes:
        if (delta := payload.get("delta")) and rng.random() < 0.1:  # the text's every character as \uXXXX
            text = delta.pop(kinds[payload["index"]][1])
            units = text.encode("utf-16-be")
            data = json.dumps({**payload, "delta": {**delta, kinds[payload["index"]][1]: ""}}, separators=separators)
            escaped = "".join(f"\\u{units[i]:02x}{units[i + 1]:02x}" for i in range(0, len(units), 2))
            return f"event: {payload['type']}\ndata: {data[:-3]}{escaped}{data[-3:]}\n\n".encode()
        data = json.dumps(payload, ensure_ascii=ascii_only, separators=separators)
        return f"event: {payload['type']}\ndata: {data}\n\n".encode()

    kinds = [rng.choice(_KINDS) for _ in range(rng.choice([1, 1, 2, 3]))]
    out = [framed({"type": "content_block_start", "index": i, "content_block": {}}) for i in range(len(kinds))]
    texts = [""] * len(kinds)
    for _ in range(events):
        index = rng.randrange(len(kinds)) if rng.random() < 0.3 else 0
        size = rng.choice([0, 1, 2, 5, 12])
        text = "".join(rng.choice(TRICKY_PIECES) if rng.random() < 0.4 else rng.choice("ab .") for _ in range(size))
        kind, field = kinds[index]
        texts[index] += text
        out.append(framed({"type": "content_block_delta", "index": index, "delta": {"type": kind, field: text}}))
        if rng.random() < 0.05:
            out.append(b'event: ping\ndata: {"type": "ping"}\n\n')
    out += [framed({"type": "content_block_stop", "index": i}) for i in range(len(kinds))]
    expected = {i: reference_restore(text, kinds[i][1] == "partial_json") for i, text in enumerate(texts)}
    raw = b"".join(out)
    return (raw.replace(b"\n", b"\r\n") if rng.random() < 0.15 else raw), expected


def assert_tricky(raw: bytes, expected: dict[int, str], chunks: list[bytes]) -> None:
    out = restore(chunks, dict_lookup(TRICKY_MAPPING))
    got = {index: "".join(block.values()) for index, block in blocks_of(out).items()}
    assert got == expected, (raw, chunks)


def test_runs_of_deltas_restore_like_the_whole_text_at_once_however_framed_and_cut():
    rng = random.Random(7)
    for _ in range(400):
        raw, expected = tricky_stream(rng, rng.randint(1, 30))
        assert_tricky(raw, expected, [raw])
        cuts = sorted(rng.sample(range(len(raw) + 1), rng.randint(1, 5)))
        assert_tricky(raw, expected, [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)])
    for _ in range(20):
        raw, expected = tricky_stream(rng, 6)
        assert_tricky(raw, expected, [raw[i : i + 1] for i in range(len(raw))])
        for cut in range(len(raw) + 1):
            assert_tricky(raw, expected, [raw[:cut], raw[cut:]])


def test_a_run_of_plain_deltas_in_one_chunk_sets_the_left_boundary_from_its_last_text():
    mapping = {"AWS_EC2_001": "i-0123456789abcdef0"}
    for last, expected in [
        ("xyz", "xyzAWS_EC2_001"),
        ("xy ", "xy i-0123456789abcdef0"),
        ("xy\\", "xy\\i-0123456789abcdef0"),
    ]:
        for empties in range(3):
            pieces = ["a ", "b ", last] + [""] * empties + ["AWS_EC2_001 ok"]
            assert blocks_text(restore([compact_answer(pieces)], dict_lookup(mapping))) == "a b " + expected + " ok"


@pytest.mark.parametrize("token", ["AWS_EC2_001", "AWS\\_EC2\\_001"])
def test_a_token_cut_anywhere_across_three_deltas_after_any_character_is_restored(token):
    for before in ["", "x", " ", "\n", "\\", '"', "é"]:
        for i in range(len(token) + 1):
            for j in range(i, len(token) + 1):
                pieces = ["a ", f"see{before}", token[:i], token[i:j], token[j:] + " ok", "b"]
                expected = reference_restore("".join(pieces), False)
                for raw in (compact_answer(pieces), compact_answer(pieces).replace(b"\n", b"\r\n")):
                    assert blocks_text(restore([raw], dict_lookup(TRICKY_MAPPING))) == expected, pieces


def test_a_bare_carriage_return_in_a_delta_line_ends_that_line_so_the_event_is_no_text():
    mapping = {"AWS_EC2_001": "i-0123456789abcdef0"}
    broken = compact_delta(0, "abxy").replace(b"abxy", b"ab\rxy")  # data: {..."ab, then a line xy"}}
    head = compact_delta(0, "a ") + compact_delta(0, "b ")  # the deltas' framing is known before the CR
    for chunks in (
        [head + broken + compact_delta(0, "AWS_EC2_001 ok")],
        [head, broken + compact_delta(0, "AWS_EC2_001 ok")],
    ):
        out = restore(chunks, dict_lookup(mapping))
        assert out == head + broken + compact_delta(0, "i-0123456789abcdef0 ok"), chunks


def test_with_some_tokens_prefetched_the_others_are_looked_up_once_and_counted_the_same():
    mapping = {"AWS_EC2_001": "i-0123456789abcdef0", "AWS_VPC_002": "vpc-0a1b2c3d"}
    pieces = ["a AWS_EC2_001 ", "AWS_VPC_0", "02 b AWS_EC2_999 ", "AWS_EC2_001 AWS_S3_004", " c AWS_VPC_002"]
    expected = "a i-0123456789abcdef0 vpc-0a1b2c3d b AWS_EC2_999 i-0123456789abcdef0 AWS_S3_004 c vpc-0a1b2c3d"

    async def run(prefetch):
        calls = []
        cache = TokenCache(dict_lookup(mapping, calls))
        await cache.originals(prefetch)
        restorer = StreamRestorer(cache)
        out = await restorer.feed(compact_answer(pieces)) + await restorer.finish()
        return out, cache, calls[1:] if prefetch else calls

    outs = []
    for prefetch in ([], ["AWS_EC2_001"], ["AWS_EC2_001", "AWS_VPC_002", "AWS_EC2_999"], [*mapping, "AWS_S3_004"]):
        out, cache, calls = asyncio.run(run(prefetch))
        assert blocks_text(out) == expected, prefetch
        assert cache.restored_counts == {"AWS_EC2_001": 2, "AWS_VPC_002": 2}, prefetch
        assert cache.unresolved_count == 2, prefetch  # AWS_EC2_999 and AWS_S3_004, left as written
        looked_up = [token for call in calls for token in call]
        assert sorted(looked_up) == sorted({"AWS_EC2_001", "AWS_VPC_002", "AWS_EC2_999", "AWS_S3_004"} - set(prefetch))
        outs.append(out)
    assert all(out == outs[0] for out in outs)  # the same bytes whichever path restored a delta


def test_runs_of_deltas_restore_the_same_bytes_and_counts_with_any_tokens_prefetched():
    rng = random.Random(11)
    tokens = [*TRICKY_MAPPING, "AWS_EC2_999"]

    async def run(raw, chunks, prefetch):
        cache = TokenCache(dict_lookup(TRICKY_MAPPING))
        if prefetch is not None:
            await cache.originals(prefetch)
        restorer = StreamRestorer(cache)
        out = b"".join([await restorer.feed(chunk) for chunk in chunks]) + await restorer.finish()
        return out, dict(cache.restored_counts), cache.unresolved_count

    for _ in range(300):
        raw, expected = tricky_stream(rng, rng.randint(1, 30))
        cut = rng.randrange(len(raw) + 1)
        chunks = [raw[:cut], raw[cut:]]
        reference = asyncio.run(run(raw, chunks, None))
        got = {index: "".join(block.values()) for index, block in blocks_of(reference[0]).items()}
        assert got == expected, raw
        for prefetch in (rng.sample(tokens, rng.randint(1, len(tokens))), tokens):
            assert asyncio.run(run(raw, chunks, prefetch)) == reference, (raw, prefetch)


@pytest.mark.parametrize(
    "odd",
    [
        b'{"type":"content_block_delta","index":[1],"delta":{"type":"text_delta","text":"AWS_EC2_001"}}',
        b'{"type":"content_block_delta","index":{"a":1},"delta":{"type":"text_delta","text":"x"}}',
        b'{"type": "content_block_delta", "index": [0], "delta": {"type": "text_delta", "text": "AWS_EC"}}',
        b'{"type":"content_block_delta","index":0,"delta":{"type":["text_delta"],"text":"AWS_EC2_001"}}',
        b'{"type":"content_block_stop","index":[0]}',
        b'{"type":["content_block_start"],"index":0}',
    ],
)
def test_an_event_with_a_list_or_an_object_where_a_key_is_expected_is_relayed_as_it_came(odd):
    mapping = {"AWS_EC2_001": "i-0123456789abcdef0"}
    event = b"event: content_block_delta\ndata: " + odd + b"\n\n"
    for framing in (lambda raw: raw, lambda raw: raw.replace(b"\n", b"\r\n")):
        before, after = framing(compact_delta(0, "see AWS_EC")), framing(compact_delta(0, "2_001 ok"))
        for prefetch in (None, list(mapping)):
            out = restore([before + framing(event) + after], dict_lookup(mapping), prefetch)
            assert out.startswith(compact_delta(0, "see ") + framing(event)), out  # restored: LF-framed
            assert blocks_text(out.replace(framing(event), b"")) == "see i-0123456789abcdef0 ok", out


@pytest.mark.parametrize("framing", [compact_delta, delta])
def test_deltas_with_a_token_read_in_place_are_written_compact_with_their_originals_escaped(framing):
    mapping = {"AWS_EC2_001": 'i-"0"\\1\n', "AWS_EC2_002": "x\ud800"}  # a lone surrogate: no UTF-8
    stream = framing(0, "a ") + framing(0, "see AWS_EC") + framing(0, "2_001 ok ") + framing(0, "AWS_EC2_002 z")
    surrogate = b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x\\ud800 z"}}'
    expected = framing(0, "a ") + compact_delta(0, "see ") + compact_delta(0, 'i-"0"\\1\n ok ')
    expected += b"event: content_block_delta\ndata: " + surrogate + b"\n\n"
    for prefetch in (None, list(mapping)):
        assert restore([stream], dict_lookup(mapping), prefetch) == expected


@pytest.mark.parametrize("framing", [compact_delta, delta])
def test_deltas_with_a_token_and_escapes_in_their_text_are_restored_the_same_wherever_the_stream_is_cut(framing):
    mapping = {"AWS_EC2_001": 'i-"0"\n', "AWS_VPC_002": "vpc-ü"}
    pieces = ['say "hi"\n ', 'at "AWS_EC', '2_001"\\n ü ', 'AWS_VPC_002\t"x"', " end"]
    stream = b"".join(framing(0, piece) for piece in pieces)
    expected = framing(0, pieces[0]) + compact_delta(0, 'at "') + compact_delta(0, 'i-"0"\n"\\n ü ')
    expected += compact_delta(0, 'vpc-ü\t"x"') + framing(0, " end")
    lookup = dict_lookup(mapping)

    async def every_cut(prefetch) -> list[bytes]:
        return [await arestore([stream[:cut], stream[cut:]], lookup, prefetch) for cut in range(len(stream) + 1)]

    for prefetch in (None, list(mapping)):
        for cut, out in enumerate(asyncio.run(every_cut(prefetch))):
            assert out == expected, (prefetch, cut)


# --- deltas restored in C from the request's tokens (masking/_restore.c restore_delta) -----------------

C_TABLE_MAPPING = {
    "AWS_EC2_001": "i-0123456789abcdef0",
    "AWS_VPC_002": "vpc-0a1b2c3d4e5f67890",
    "AWS_S3_BUCKET_003": 'odd"bucket\\name',
    "AWS_EC2_0012": "i-0fedcba9876543210",
}
C_PIECES = [
    "AWS_EC2_001",
    "AWS_VPC_002",
    "AWS_S3_BUCKET_003",
    "AWS_EC2_0012",
    "AWS_EC2_999",
    "AWS_EC",
    "2_001",
    "AWS",
    "A",
    "W",
    "S_",
    "AWS\\_EC2\\_001",
    " ",
    "x",
    "word",
    "9",
    "_",
    "\n",
    '"',
    "\\",
    "/",
    "é",
    "日本",
    "\t",
    "\u0001",
    "AWAY",
    "AWSOME",
]


def restored_both_ways(pieces: list[str], chunk_sizes: list[int]) -> tuple[tuple, tuple]:
    stream = compact_answer(pieces)
    table = {
        token.encode(): json.dumps(original, ensure_ascii=False)[1:-1].encode()
        for token, original in C_TABLE_MAPPING.items()
    }

    async def run(with_table: bool):
        restorer = StreamRestorer(dict_lookup(C_TABLE_MAPPING), table if with_table else None)
        out, at = [], 0
        for size in chunk_sizes:
            out.append(await restorer.feed(stream[at : at + size]))
            at += size
        out.append(await restorer.feed(stream[at:]))
        out.append(await restorer.finish())
        return blocks_text(b"".join(out)), dict(restorer.cache.restored_counts), restorer.cache.unresolved_count

    return asyncio.run(run(True)), asyncio.run(run(False))


def test_deltas_restored_in_c_read_as_the_python_path_restores_them():
    if streaming._c_restore_delta is None:
        pytest.skip("masking._restore is not built")
    rng = random.Random(23)
    for _ in range(1500):
        pieces = ["".join(rng.choice(C_PIECES) for _ in range(rng.randint(1, 6))) for _ in range(rng.randint(1, 8))]
        cuts = [rng.randint(1, 400) for _ in range(rng.randint(0, 4))]
        with_c, in_python = restored_both_ways(pieces, cuts)
        assert with_c == in_python, pieces


def test_a_delta_with_a_whole_known_token_is_restored_in_c(monkeypatch):
    if streaming._c_restore_delta is None:
        pytest.skip("masking._restore is not built")
    calls = []
    real = streaming._c_restore_delta
    monkeypatch.setattr(streaming, "_c_restore_delta", lambda *args: calls.append(real(*args)) or calls[-1])
    pieces = ["Here:", " see AWS_EC2_001 and AWS_VPC_002 now", " then AWS_S3_BUCKET_003."]

    with_c, in_python = restored_both_ways(pieces, [])

    assert with_c == in_python
    assert with_c[0] == 'Here: see i-0123456789abcdef0 and vpc-0a1b2c3d4e5f67890 now then odd"bucket\\name.'
    # The block's first delta sets its framing (Python); the C pass restores the two after it.
    assert [call[1] for call in calls] == [[b"AWS_EC2_001", b"AWS_VPC_002"], [b"AWS_S3_BUCKET_003"]]
