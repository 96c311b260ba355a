import asyncio
import json
import time

import pytest

from masking import cache, mappings, masker, policy, unmasker
from masking.cache import MappingCache, ScanCache
from masking.store import EPOCH_KEY
from tests.masking.gateway import headers, message
from tests.masking.samples import ORIGINALS, PROMPT

pytestmark = pytest.mark.django_db(transaction=True)

EC2 = "i-0a1b2c3d4e5f67890"


def script_runs(redis_client) -> int:
    stats = redis_client.info("commandstats")
    return sum(stats.get(name, {}).get("calls", 0) for name in ("cmdstat_evalsha", "cmdstat_eval"))


def token_sent_for(upstream, original: str, request: int = -1) -> str:
    """The token the upstream saw where the prompt had `original` (the prompt starts with EC2's line)."""
    sent = upstream.received[request].json["messages"][0]["content"]
    assert original not in sent
    return sent.split('"InstanceId": "')[1].split('"')[0]


# --- the caches themselves ---------------------------------------------------------------------------


def test_a_remembered_mapping_gives_its_token_both_ways():
    remembered = MappingCache()
    remembered.remember("default", ["i-1", "vpc-2"], ["AWS_EC2_001", "AWS_VPC_001"], ttl_seconds=3600)

    assert remembered.tokens("default", ["vpc-2", "i-1"]) == ["AWS_VPC_001", "AWS_EC2_001"]
    assert remembered.originals("default", ["AWS_EC2_001", "AWS_EC2_999"]) == {"AWS_EC2_001": "i-1"}


def test_one_unknown_original_means_the_store_must_be_asked_for_all():
    remembered = MappingCache()
    remembered.remember("default", ["i-1"], ["AWS_EC2_001"], ttl_seconds=3600)

    assert remembered.tokens("default", ["i-1", "i-2"]) is None


def test_tenants_never_see_each_others_mappings():
    remembered = MappingCache()
    remembered.remember("acme", ["i-1"], ["AWS_EC2_001"], ttl_seconds=3600)

    assert remembered.tokens("globex", ["i-1"]) is None
    assert remembered.originals("globex", ["AWS_EC2_001"]) == {}


def test_a_mapping_is_used_for_at_most_half_its_ttl(monkeypatch):
    remembered = MappingCache()
    now = time.monotonic()
    monkeypatch.setattr(cache.time, "monotonic", lambda: now)
    remembered.remember("default", ["i-1"], ["AWS_EC2_001"], ttl_seconds=10)

    monkeypatch.setattr(cache.time, "monotonic", lambda: now + 4.9)
    assert remembered.tokens("default", ["i-1"]) == ["AWS_EC2_001"]
    monkeypatch.setattr(cache.time, "monotonic", lambda: now + 5.1)
    assert remembered.tokens("default", ["i-1"]) is None
    assert remembered.originals("default", ["AWS_EC2_001"]) == {}


def test_a_mapping_is_used_for_at_most_a_minute_however_long_its_ttl(monkeypatch):
    remembered = MappingCache()
    now = time.monotonic()
    monkeypatch.setattr(cache.time, "monotonic", lambda: now)
    remembered.remember("default", ["i-1"], ["AWS_EC2_001"], ttl_seconds=24 * 3600)

    monkeypatch.setattr(cache.time, "monotonic", lambda: now + cache.MAPPING_CACHE_SECONDS + 0.1)
    assert remembered.tokens("default", ["i-1"]) is None


def test_a_new_epoch_forgets_everything():
    remembered = MappingCache()
    remembered.use_epoch(b"one")
    remembered.remember("default", ["i-1"], ["AWS_EC2_001"], ttl_seconds=3600)

    remembered.use_epoch(b"one")
    assert remembered.tokens("default", ["i-1"]) == ["AWS_EC2_001"]
    remembered.use_epoch(b"two")
    assert remembered.tokens("default", ["i-1"]) is None


def test_the_mapping_cache_starts_over_rather_than_grow_past_its_bound():
    remembered = MappingCache(max_entries=3)
    remembered.remember("default", ["i-1", "i-2"], ["AWS_EC2_001", "AWS_EC2_002"], ttl_seconds=3600)
    remembered.remember("default", ["i-3", "i-4"], ["AWS_EC2_003", "AWS_EC2_004"], ttl_seconds=3600)

    assert len(remembered) == 2
    assert remembered.tokens("default", ["i-3", "i-4"]) == ["AWS_EC2_003", "AWS_EC2_004"]


def test_the_scan_cache_keeps_long_texts_only_and_stays_within_its_size():
    scans = ScanCache(max_chars=10_000)
    long_text, other = "x" * 1000, "y" * 1000

    scans.put((), "short", ["found"])
    scans.put((), long_text, ["long"])
    assert scans.get((), "short") is None
    assert scans.get((), long_text) == ["long"]
    assert scans.get(("other rules",), long_text) is None

    for n in range(5):
        scans.put((), f"{n}" + other, [n])
    assert scans.size <= 10_000


def test_the_scan_cache_finds_an_equal_text_and_never_one_that_differs_only_in_the_middle():
    scans = ScanCache()
    text = "start " + "a" * 500 + " end"
    twin = "start " + "a" * 250 + "b" + "a" * 249 + " end"  # same length and same ends
    scans.put((), text, ["text"])

    assert scans.get((), "".join(["start ", "a" * 500, " end"])) == ["text"]  # another string, equal
    assert scans.get((), twin) is None
    scans.put((), twin, ["twin"])
    assert scans.get((), twin) == ["twin"]
    assert scans.get((), text) is None  # the slot is the twin's now: scanned again, never mixed up


def test_a_long_text_is_scanned_once_and_masked_the_same_every_time(redis_client, monkeypatch):
    scanned = []
    real_scan = masker.scan
    monkeypatch.setattr(masker, "scan", lambda text, rules=(): scanned.append(text) or real_scan(text, rules))
    cache.scans.clear()

    first = masker.mask_texts([PROMPT, "short i-0123456789abcdef0"]).texts
    # Read from another request: equal strings, not the same ones (those would reuse the whole plan).
    second = masker.mask_texts(["".join(PROMPT), "".join("short i-0123456789abcdef0")]).texts

    assert second == first
    assert scanned.count(PROMPT) == 1
    assert scanned.count("short i-0123456789abcdef0") == 2


# --- the proxy with a real Redis -----------------------------------------------------------------------


def test_a_conversation_sent_again_takes_no_mask_script_and_reaches_the_upstream_masked_the_same(
    gateway, upstream, api_key, redis_client
):
    body = message(PROMPT)
    first = gateway.post("/v1/messages", json=body, headers=headers(api_key))
    runs = script_runs(redis_client)

    second = gateway.post("/v1/messages", json=body, headers=headers(api_key))

    assert script_runs(redis_client) == runs
    assert upstream.received[1].body == upstream.received[0].body
    assert not any(original in upstream.received[1].body.decode() for original in ORIGINALS)
    assert first.json()["content"][0]["text"] == second.json()["content"][0]["text"] == PROMPT


def test_a_remembered_request_still_counts_and_publishes_its_masking_event(gateway, upstream, api_key, redis_client):
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("aws-masker:events:masking")
    gateway.post("/v1/messages", json=message(PROMPT), headers=headers(api_key))

    second = gateway.post("/v1/messages", json=message(PROMPT), headers=headers(api_key))

    events = []
    deadline = time.monotonic() + 5
    while len(events) < 2 and time.monotonic() < deadline:
        if received := pubsub.get_message(timeout=0.1):
            events.append(json.loads(received["data"]))
    pubsub.close()
    assert [event["request_id"] for event in events][1] == second.headers["x-gateway-request-id"]
    assert events[1]["counts_by_kind"] == events[0]["counts_by_kind"]
    assert events[1]["new_mappings"] == 0
    assert not any(original in json.dumps(events) for original in ORIGINALS)
    assert int(redis_client.hget("aws:stats:counts", "mask_operations")) == 2


def test_a_revoked_mapping_is_not_used_again_by_the_worker_that_remembered_it(gateway, upstream, api_key):
    gateway.post("/v1/messages", json=message(PROMPT), headers=headers(api_key))
    token = token_sent_for(upstream, EC2)

    assert mappings.revoke(token, "default")
    answer = gateway.post("/v1/messages", json=message(PROMPT), headers=headers(api_key))

    assert token_sent_for(upstream, EC2) != token
    assert answer.json()["content"][0]["text"] == PROMPT


def test_a_redis_that_lost_its_data_gets_every_mapping_written_again(gateway, upstream, api_key, redis_client):
    gateway.post("/v1/messages", json=message(PROMPT), headers=headers(api_key))
    redis_client.flushdb()

    answer = gateway.post("/v1/messages", json=message(PROMPT), headers=headers(api_key))

    token = token_sent_for(upstream, EC2)
    assert redis_client.get(f"aws:unmask:{token}") == EC2.encode()
    assert redis_client.get(f"aws:mask:{EC2}") == token.encode()
    assert redis_client.get(EPOCH_KEY)
    assert answer.json()["content"][0]["text"] == PROMPT


def test_with_everything_remembered_a_redis_outage_still_means_503_and_nothing_forwarded(
    gateway, upstream, api_key, redis_server
):
    gateway.post("/v1/messages", json=message(PROMPT), headers=headers(api_key))
    redis_server.stop()

    response = gateway.post("/v1/messages", json=message(PROMPT), headers=headers(api_key))

    assert response.status_code == 503
    assert len(upstream.received) == 1


def test_a_remembered_text_follows_a_policy_change(redis_client, monkeypatch):
    first = masker.mask_texts([PROMPT]).texts[0]
    redact_instances = {**policy.effective_modes("default"), "ec2_instance": "redact"}
    monkeypatch.setattr(policy, "effective_modes", lambda tenant: redact_instances)

    second = masker.mask_texts([PROMPT]).texts[0]

    assert "AWS_EC2_001" in first and "AWS_EC2_REDACTED" not in first
    assert "AWS_EC2_REDACTED" in second and "AWS_EC2_001" not in second


def test_a_remembered_text_gets_the_tokens_its_identifiers_have_now(redis_client):
    first = masker.mask_texts([PROMPT]).texts[0]
    token = first.split('"InstanceId": "')[1].split('"')[0]
    assert mappings.revoke(token, "default")

    second = masker.mask_texts([PROMPT]).texts[0]

    assert token not in second
    assert unmasker.unmask_texts([second]).texts == [PROMPT]


# --- a request masked from its texts' remembered outputs ----------------------------------------------


def test_the_mapping_cache_moves_its_version_when_an_original_may_have_another_token():
    remembered = MappingCache()
    remembered.remember("default", ["i-1"], ["AWS_EC2_001"], ttl_seconds=3600)
    version = remembered.version

    remembered.remember("default", ["i-1", "i-2"], ["AWS_EC2_001", "AWS_EC2_002"], ttl_seconds=3600)
    assert remembered.version == version  # refreshed or added: what was masked stays right
    remembered.remember("default", ["i-1"], ["AWS_EC2_003"], ttl_seconds=3600)
    assert remembered.version == version + 1
    remembered.use_epoch(b"another")
    assert remembered.version == version + 2


def test_tokens_until_says_until_when_the_oldest_of_them_may_be_used(monkeypatch):
    remembered = MappingCache()
    now = time.monotonic()
    monkeypatch.setattr(cache.time, "monotonic", lambda: now)
    remembered.remember("default", ["i-1"], ["AWS_EC2_001"], ttl_seconds=10)
    remembered.remember("default", ["i-2"], ["AWS_EC2_002"], ttl_seconds=3600)

    assert remembered.tokens_until("default", ["i-2", "i-1"]) == (["AWS_EC2_002", "AWS_EC2_001"], now + 5)
    assert remembered.tokens_until("default", ["i-3"]) is None


def amask(texts: list[str], tenant: str = "default") -> masker.MaskResult:
    return asyncio.run(masker.amask_texts(texts, tenant, source="proxy"))


def no_lookups(monkeypatch) -> None:
    """Fail the test if masking looks any identifier up, in the worker's memory or in Redis."""

    def looked_up(*args):
        raise AssertionError("an identifier was looked up")

    monkeypatch.setattr(cache.mappings, "tokens_until", looked_up)
    monkeypatch.setattr(masker.store, "aget_or_create_tokens", looked_up)


def test_a_request_whose_texts_are_remembered_is_masked_without_looking_any_identifier_up(redis_client, monkeypatch):
    first = amask([PROMPT, "short, nothing to mask"])
    no_lookups(monkeypatch)

    again = amask([PROMPT, "short, nothing to mask"])

    assert again.texts == first.texts and again.entities == first.entities
    assert again.counts_by_kind == first.counts_by_kind and again.new_mappings == 0
    assert again.restore == first.restore


def test_a_remembered_request_is_masked_without_lookups_again_once_a_reloaded_policy_gave_the_same_matches(
    redis_client, monkeypatch
):
    first = amask([PROMPT])
    policy.forget()  # a new snapshot: the text's matches are planned again, in new lists
    amask([PROMPT])
    no_lookups(monkeypatch)

    assert amask([PROMPT]).texts == first.texts


def test_a_remembered_text_is_masked_again_once_a_mapping_it_used_is_due_for_a_refresh(redis_client, monkeypatch):
    first = amask([PROMPT])
    now = time.monotonic()
    monkeypatch.setattr(cache.time, "monotonic", lambda: now + cache.MAPPING_CACHE_SECONDS + 1)
    monkeypatch.setattr(masker.time, "monotonic", lambda: now + cache.MAPPING_CACHE_SECONDS + 1)
    before = script_runs(redis_client)

    assert amask([PROMPT]).texts == first.texts
    assert script_runs(redis_client) == before + 1  # the store refreshed the mappings' TTL


def test_a_remembered_text_is_not_reused_for_another_tenant(redis_client, monkeypatch):
    from masking.models import Tenant

    Tenant.objects.create(slug="globex", name="Globex")
    amask([PROMPT])
    before = script_runs(redis_client)

    other = amask([PROMPT], "globex")

    assert script_runs(redis_client) == before + 1  # globex's own mappings, from the store
    assert unmasker.unmask_texts(other.texts, "globex").texts == [PROMPT]


def test_the_restore_map_holds_each_token_of_the_request_as_written_and_its_original_json_escaped(redis_client):
    result = amask([f"{EC2} next to {EC2}", "nothing here"])

    assert result.restore == {result.entities[0][0].token.encode(): EC2.encode()}
