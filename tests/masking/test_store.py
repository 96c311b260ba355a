import asyncio

import pytest
from django.conf import settings

from masking import store
from masking.connection import reset_clients
from masking.models import Tenant
from masking.store import MaskingUnavailable
from masking.tokens import format_token

pytestmark = pytest.mark.django_db

EC2 = "i-0123456789abcdef0"
EC2_B = "i-0fedcba9876543210"
VPC = "vpc-0a1b2c3d4e5f67890"


@pytest.fixture(autouse=True)
def fresh_tenant_cache():
    store._ttl_cache.clear()
    yield
    store._ttl_cache.clear()


@pytest.fixture
def team(db) -> Tenant:
    return Tenant.objects.create(slug="team-a", name="Team A", ttl_seconds=120)


def test_it_creates_one_token_per_original_and_stores_both_directions_with_a_ttl(redis_client):
    stored = store.get_or_create_tokens([("EC2", EC2), ("VPC", VPC)])

    assert stored.tokens == ["AWS_EC2_001", "AWS_VPC_001"]
    assert stored.new_mappings == 2
    assert redis_client.get(f"aws:mask:{EC2}") == b"AWS_EC2_001"
    assert redis_client.get("aws:unmask:AWS_EC2_001") == EC2.encode()
    for key in (f"aws:mask:{EC2}", "aws:unmask:AWS_EC2_001", f"aws:mask:{VPC}", "aws:unmask:AWS_VPC_001"):
        assert 0 < redis_client.ttl(key) <= settings.MASKING_TTL_SECONDS


def test_the_same_original_gets_the_same_token_while_its_mapping_lives(redis_client):
    first = store.get_or_create_tokens([("EC2", EC2)])
    again = store.get_or_create_tokens([("EC2", EC2_B), ("EC2", EC2)])

    assert again.tokens == ["AWS_EC2_002", first.tokens[0]]
    assert again.new_mappings == 1


def test_an_original_repeated_in_one_request_gets_one_token(redis_client):
    stored = store.get_or_create_tokens([("EC2", EC2), ("VPC", VPC), ("EC2", EC2), ("ACCOUNT", EC2)])

    assert stored.tokens == ["AWS_EC2_001", "AWS_VPC_001", "AWS_EC2_001", "AWS_EC2_001"]
    assert stored.new_mappings == 2
    assert redis_client.get("aws:seq:EC2") == b"1"
    assert redis_client.get("aws:seq:ACCOUNT") is None


def test_a_request_with_thousands_of_identifiers_is_still_one_call(redis_client):
    items = [("EC2", f"i-{n:017x}") for n in range(2500)]
    redis_client.config_resetstat()

    stored = store.get_or_create_tokens(items)

    assert stored.tokens == [f"AWS_EC2_{n:03d}" for n in range(1, 2501)]
    assert store.get_or_create_tokens(items).tokens == stored.tokens
    assert redis_client.info("commandstats")["cmdstat_evalsha"]["calls"] == 2


def test_a_token_number_is_never_reused_after_its_mapping_expired(redis_client):
    store.get_or_create_tokens([("EC2", EC2)])
    redis_client.delete(f"aws:mask:{EC2}", "aws:unmask:AWS_EC2_001")  # as if the TTL had run out

    assert store.get_or_create_tokens([("EC2", EC2_B)]).tokens == ["AWS_EC2_002"]
    assert redis_client.ttl("aws:seq:EC2") == -1  # sequence counters never expire


def test_tokens_follow_the_token_grammar_past_999(redis_client):
    redis_client.set("aws:seq:IAM_ROLE", 999)

    stored = store.get_or_create_tokens([("IAM_ROLE", "arn:aws:iam::123456789012:role/admin")])

    assert stored.tokens == [format_token("IAM_ROLE", 1000)]


def test_other_tenants_get_their_own_keys_and_tokens_but_share_the_sequence(redis_client, team):
    default = store.get_or_create_tokens([("EC2", EC2)])
    other = store.get_or_create_tokens([("EC2", EC2)], team)

    assert default.tokens == ["AWS_EC2_001"]
    assert other.tokens == ["AWS_EC2_002"]
    assert redis_client.get(f"aws:t:team-a:mask:{EC2}") == b"AWS_EC2_002"
    assert redis_client.get("aws:t:team-a:unmask:AWS_EC2_002") == EC2.encode()
    assert store.lookup_originals(["AWS_EC2_001", "AWS_EC2_002"], team) == {"AWS_EC2_002": EC2}
    assert store.lookup_originals(["AWS_EC2_001", "AWS_EC2_002"]) == {"AWS_EC2_001": EC2}


def test_a_tenant_ttl_overrides_the_default_one(redis_client, team):
    store.get_or_create_tokens([("EC2", EC2)], team)
    store.get_or_create_tokens([("VPC", VPC)], "team-a")  # by slug, as the CLI and events name it

    assert 0 < redis_client.ttl(f"aws:t:team-a:mask:{EC2}") <= 120
    assert 0 < redis_client.ttl("aws:t:team-a:unmask:AWS_VPC_001") <= 120


def test_using_a_mapping_refreshes_the_ttl_of_both_directions(redis_client):
    store.get_or_create_tokens([("EC2", EC2)])
    redis_client.expire(f"aws:mask:{EC2}", 5)
    redis_client.expire("aws:unmask:AWS_EC2_001", 5)

    store.get_or_create_tokens([("EC2", EC2)])

    assert redis_client.ttl(f"aws:mask:{EC2}") > 5
    assert redis_client.ttl("aws:unmask:AWS_EC2_001") > 5


def test_a_lost_reverse_direction_is_repaired_when_the_mapping_is_used(redis_client):
    store.get_or_create_tokens([("EC2", EC2)])
    redis_client.delete("aws:unmask:AWS_EC2_001")

    store.get_or_create_tokens([("EC2", EC2)])

    assert store.lookup_originals(["AWS_EC2_001"]) == {"AWS_EC2_001": EC2}


def test_it_loads_the_script_again_after_redis_forgot_it(redis_client):
    store.get_or_create_tokens([("EC2", EC2)])
    redis_client.script_flush()

    assert store.get_or_create_tokens([("EC2", EC2)]).tokens == ["AWS_EC2_001"]
    assert redis_client.script_exists(store.SCRIPT_SHA) == [True]


def test_it_counts_mappings_identifiers_kinds_and_operations_in_the_totals_and_today(redis_client):
    store.get_or_create_tokens([("EC2", EC2), ("VPC", VPC)], counts_by_kind={"ec2_instance": 3, "vpc": 1})
    store.get_or_create_tokens([("EC2", EC2)], counts_by_kind={"ec2_instance": 1})

    for key in (store.COUNTS_KEY, store.daily_key()):
        counts = {k.decode(): int(v) for k, v in redis_client.hgetall(key).items()}
        assert counts == {
            "total_mappings": 2,
            "new_mappings": 2,
            "mask_operations": 2,
            "identifiers": 5,
            "kind:ec2_instance": 4,
            "kind:vpc": 1,
        }
    assert 0 < redis_client.ttl(store.daily_key()) <= store.DAILY_TTL_SECONDS
    assert redis_client.ttl(store.COUNTS_KEY) == -1


def test_lookup_returns_only_the_tokens_it_knows(redis_client):
    store.get_or_create_tokens([("EC2", EC2)])

    assert store.lookup_originals(["AWS_EC2_001", "AWS_EC2_404"]) == {"AWS_EC2_001": EC2}
    assert store.lookup_originals([]) == {}


def test_the_async_path_shares_the_script_and_key_layout_with_the_sync_one(redis_client):
    async def run():
        created = await store.aget_or_create_tokens([("EC2", EC2), ("VPC", VPC)])
        return created, await store.alookup_originals(created.tokens)

    store.get_or_create_tokens([("EC2", EC2)])
    created, originals = asyncio.run(run())

    assert created.tokens == ["AWS_EC2_001", "AWS_VPC_001"]
    assert created.new_mappings == 1
    assert originals == {"AWS_EC2_001": EC2, "AWS_VPC_001": VPC}
    assert store.lookup_originals(["AWS_VPC_001"]) == {"AWS_VPC_001": VPC}


def test_the_async_path_also_loads_the_script_when_redis_forgot_it(redis_client):
    redis_client.script_flush()

    created = asyncio.run(store.aget_or_create_tokens([("EC2", EC2)]))

    assert created.tokens == ["AWS_EC2_001"]


def test_it_refuses_when_redis_is_down(redis_server):
    redis_server.stop()

    with pytest.raises(MaskingUnavailable, match="unreachable") as caught:
        store.get_or_create_tokens([("EC2", EC2)])
    with pytest.raises(MaskingUnavailable):
        store.lookup_originals(["AWS_EC2_001"])
    with pytest.raises(MaskingUnavailable):
        asyncio.run(store.aget_or_create_tokens([("EC2", EC2)]))
    assert EC2 not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_it_refuses_when_redis_does_not_answer_in_time(redis_client, settings):
    settings.REDIS_COMMAND_TIMEOUT = 0.2
    reset_clients()
    redis_client.execute_command("CLIENT", "PAUSE", 3000, "WRITE")  # up, but holding every write
    try:
        with pytest.raises(MaskingUnavailable, match="timed out"):
            store.get_or_create_tokens([("EC2", EC2)])
    finally:
        redis_client.execute_command("CLIENT", "UNPAUSE")
        reset_clients()


def test_it_refuses_when_redis_is_read_only(redis_client):
    redis_client.replicaof("127.0.0.1", "1")  # a replica of nothing: up, but refusing writes
    try:
        with pytest.raises(MaskingUnavailable, match="read-only"):
            store.get_or_create_tokens([("EC2", EC2)])
        with pytest.raises(MaskingUnavailable, match="read-only"):
            asyncio.run(store.aget_or_create_tokens([("EC2", EC2)]))
    finally:
        redis_client.replicaof("NO", "ONE")


def test_it_refuses_when_redis_is_out_of_memory(redis_client):
    redis_client.config_set("maxmemory", 1)
    try:
        with pytest.raises(MaskingUnavailable, match="out of memory"):
            store.get_or_create_tokens([("EC2", EC2)])
    finally:
        redis_client.config_set("maxmemory", 0)
    assert redis_client.get(f"aws:mask:{EC2}") is None


def test_request_counters_fill_the_cumulative_latency_histogram(redis_client):
    store.record_request(200, 42.5)
    asyncio.run(store.arecord_request(502, 7000.0, upstream_error=True))

    counts = {k.decode(): v.decode() for k, v in redis_client.hgetall(store.COUNTS_KEY).items()}
    assert counts["requests"] == "2"
    assert counts["upstream_errors"] == "1"
    assert float(counts["latency_ms_sum"]) == 7042.5
    assert counts["latency_ms_count"] == "2"
    assert "latency_bucket:25" not in counts
    assert counts["latency_bucket:50"] == "1"
    assert counts["latency_bucket:5000"] == "1"
    assert counts["latency_bucket:10000"] == "2"
    assert counts["latency_bucket:+Inf"] == "2"


def test_request_counters_never_raise_when_redis_is_down(redis_server):
    redis_server.stop()

    store.record_request(200, 1.0)
    asyncio.run(store.arecord_request(200, 1.0))


@pytest.mark.parametrize(
    ("latency_ms", "first_bucket"), [(0, 5), (5, 5), (5.01, 10), (9999, 10000), (10000, 10000), (10001, "+Inf")]
)
def test_a_latency_counts_in_every_bucket_from_the_first_it_fits(latency_ms, first_bucket):
    buckets = [key.split(":")[1] for key in store.request_counters(200, latency_ms, False) if "bucket" in key]

    everything = [str(le) for le in store.LATENCY_BUCKETS_MS] + ["+Inf"]
    assert buckets == everything[everything.index(str(first_bucket)) :]
