import io

import pytest

from masking import mappings

EC2 = "i-0123456789abcdef0"


def test_it_finds_a_mapping_by_exact_token_with_its_ttl(put_mapping):
    put_mapping(EC2, "AWS_EC2_001", ttl=600)
    found = mappings.find_by_token("AWS_EC2_001", "default")
    assert (found.token, found.original, found.tenant) == ("AWS_EC2_001", EC2, "default")
    assert 590 <= found.ttl <= 600


def test_it_finds_a_mapping_by_exact_original(put_mapping):
    put_mapping(EC2, "AWS_EC2_001")
    assert mappings.find_by_original(EC2, "default").token == "AWS_EC2_001"
    assert mappings.find_by_original("i-0000000000000000f", "default") is None


def test_a_mapping_never_shows_its_original_in_repr(put_mapping):
    put_mapping(EC2, "AWS_EC2_001")
    assert EC2 not in repr(mappings.find_by_token("AWS_EC2_001", "default"))


def test_tenants_do_not_see_each_others_mappings(put_mapping):
    put_mapping(EC2, "AWS_EC2_001", tenant="default")
    put_mapping(EC2, "AWS_EC2_002", tenant="blue")
    assert mappings.find_by_token("AWS_EC2_002", "default") is None
    assert mappings.find_by_original(EC2, "blue").token == "AWS_EC2_002"
    assert [m.token for m in mappings.scan_page("default").mappings] == ["AWS_EC2_001"]
    assert [m.token for m in mappings.scan_page("blue").mappings] == ["AWS_EC2_002"]


def test_a_prefix_search_treats_glob_characters_literally(put_mapping):
    put_mapping("bucket*one", "AWS_S3_001")
    put_mapping("bucketXone", "AWS_S3_002")
    put_mapping("bucket[a]", "AWS_S3_003")
    assert [m.token for m in mappings.scan_page("default", original_prefix="bucket*").mappings] == ["AWS_S3_001"]
    assert [m.token for m in mappings.scan_page("default", original_prefix="bucket[").mappings] == ["AWS_S3_003"]


def test_a_kind_filter_does_not_take_a_longer_prefix_for_it(put_mapping):
    put_mapping("arn:aws:iam::123456789012:role/a", "AWS_IAM_ROLE_001")
    put_mapping("something", "AWS_IAM_001")
    assert [m.token for m in mappings.scan_page("default", prefix="IAM").mappings] == ["AWS_IAM_001"]
    assert [m.token for m in mappings.scan_page("default", prefix="IAM_ROLE").mappings] == ["AWS_IAM_ROLE_001"]


def test_a_prefix_search_and_a_kind_filter_combine(put_mapping):
    put_mapping("i-0aaaaaaaaaaaaaaaa", "AWS_EC2_001")
    put_mapping("i-0aaaaaaaaaaaaaaab", "AWS_EC2_002")
    put_mapping("i-0bbbbbbbbbbbbbbbb", "AWS_EC2_003")
    page = mappings.scan_page("default", original_prefix="i-0a", prefix="EC2")
    assert sorted(m.token for m in page.mappings) == ["AWS_EC2_001", "AWS_EC2_002"]


def test_paging_through_a_large_tenant_visits_every_mapping_in_bounded_pages(put_mapping, redis_client):
    with redis_client.pipeline() as pipe:
        for n in range(1, 1201):
            pipe.set(mappings.mask_key(f"i-{n:017x}", "default"), f"AWS_EC2_{n:03d}", ex=3600)
            pipe.set(mappings.unmask_key(f"AWS_EC2_{n:03d}", "default"), f"i-{n:017x}", ex=3600)
        pipe.execute()
    seen, cursor, pages = set(), 0, 0
    while True:
        page = mappings.scan_page("default", cursor=cursor, page_size=100)
        assert len(page.mappings) < 100 + mappings.SCAN_COUNT
        seen.update(m.token for m in page.mappings)
        pages += 1
        cursor = page.next_cursor
        if not cursor:
            break
    assert len(seen) == 1200
    assert pages > 1


def test_a_scan_that_finds_little_stops_at_the_scanned_keys_limit(redis_client):
    with redis_client.pipeline() as pipe:
        for n in range(3000):
            pipe.set(f"aws:mask:noise-{n}", "x")
        pipe.execute()
    page = mappings.scan_page("default", original_prefix="nothing-like-this", max_scanned=1000)
    assert page.mappings == []
    assert page.scanned_limit_hit
    assert page.next_cursor != 0


def test_revoking_removes_both_directions(put_mapping, redis_client):
    put_mapping(EC2, "AWS_EC2_001")
    put_mapping("i-0fffffffffffffff0", "AWS_EC2_002")
    assert mappings.revoke("AWS_EC2_001", "default")
    assert redis_client.get(f"aws:mask:{EC2}") is None
    assert redis_client.get("aws:unmask:AWS_EC2_001") is None
    assert mappings.find_by_token("AWS_EC2_002", "default") is not None


def test_revoking_a_missing_mapping_changes_nothing(put_mapping):
    assert not mappings.revoke("AWS_EC2_404", "default")


def test_revoking_keeps_an_original_that_already_points_to_a_newer_token(redis_client):
    redis_client.set(f"aws:mask:{EC2}", "AWS_EC2_002")
    redis_client.set("aws:unmask:AWS_EC2_001", EC2)
    redis_client.set("aws:unmask:AWS_EC2_002", EC2)
    assert mappings.revoke("AWS_EC2_001", "default")
    assert redis_client.get(f"aws:mask:{EC2}") == b"AWS_EC2_002"


def test_revoking_in_one_tenant_leaves_the_other_alone(put_mapping):
    put_mapping(EC2, "AWS_EC2_001", tenant="blue")
    put_mapping(EC2, "AWS_EC2_001", tenant="green")
    mappings.revoke("AWS_EC2_001", "blue")
    assert mappings.find_by_token("AWS_EC2_001", "blue") is None
    assert mappings.find_by_original(EC2, "green").token == "AWS_EC2_001"


def test_extending_adds_time_to_both_directions(put_mapping, redis_client):
    put_mapping(EC2, "AWS_EC2_001", ttl=100)
    new_ttl = mappings.extend("AWS_EC2_001", "default", 1000)
    assert 1090 <= new_ttl <= 1100
    assert 1090 <= redis_client.ttl(f"aws:mask:{EC2}") <= 1100
    assert 1090 <= redis_client.ttl("aws:unmask:AWS_EC2_001") <= 1100


def test_extending_a_missing_mapping_returns_none():
    assert mappings.extend("AWS_EC2_404", "default", 1000) is None


@pytest.mark.parametrize("with_originals", [True, False])
def test_csv_export_includes_originals_only_when_asked(put_mapping, with_originals):
    put_mapping(EC2, "AWS_EC2_001")
    out = io.StringIO()
    found = [mappings.find_by_token("AWS_EC2_001", "default")]
    mappings.write_csv(out, found, {"EC2": "ec2_instance"}, with_originals)
    lines = out.getvalue().splitlines()
    assert lines[0] == "token,kind,tenant,ttl_seconds,original"
    assert lines[1].startswith("AWS_EC2_001,ec2_instance,default,")
    assert (EC2 in lines[1]) is with_originals


def test_csv_export_defuses_values_a_spreadsheet_would_run_as_formulas(put_mapping):
    put_mapping("=HYPERLINK(1)", "AWS_X_001")
    out = io.StringIO()
    mappings.write_csv(out, [mappings.find_by_token("AWS_X_001", "default")], {}, with_originals=True)
    assert "'=HYPERLINK(1)" in out.getvalue()


def test_a_page_lists_tokens_by_kind_then_number(put_mapping):
    for token in ("AWS_VPC_002", "AWS_EC2_1000", "AWS_EC2_002", "AWS_EC2_010"):
        put_mapping(f"original-of-{token}", token)
    tokens = [m.token for m in mappings.scan_page("default").mappings]
    assert tokens == ["AWS_EC2_002", "AWS_EC2_010", "AWS_EC2_1000", "AWS_VPC_002"]
