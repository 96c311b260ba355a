import asyncio

import pytest

from masking import events, masker, policy, redisline, store, unmasker
from masking.models import Tenant
from masking.store import MaskingUnavailable

pytestmark = pytest.mark.django_db

EC2 = "i-0123456789abcdef0"
VPC = "vpc-0a1b2c3d4e5f67890"
SECRET_KEY_ID = "AKIAIOSFODNN7EXAMPLE"


def everything_in(redis_client) -> bytes:
    """Every key and every string value in the mapping database."""
    keys = redis_client.keys("*")
    strings = [redis_client.get(key) for key in keys if redis_client.type(key) == b"string"]
    return b"\n".join(keys + strings)


TEXT = f"Instance {EC2} runs in {VPC}; {EC2} again, key {SECRET_KEY_ID}."


def test_it_replaces_each_identifier_with_its_token_and_reports_where_it_put_them(redis_client):
    result = masker.mask_texts([TEXT])

    (masked,) = result.texts
    assert masked == "Instance AWS_EC2_001 runs in AWS_VPC_001; AWS_EC2_001 again, key AWS_ACCESS_KEY_001."
    for entity in result.entities[0]:
        assert masked[entity.start : entity.end] == entity.token
    assert [e.kind for e in result.entities[0]] == ["ec2_instance", "vpc", "ec2_instance", "access_key_id"]
    assert result.counts_by_kind == {"ec2_instance": 2, "vpc": 1, "access_key_id": 1}
    assert result.new_mappings == 3


def test_unmasking_a_masked_text_gives_back_the_original_byte_for_byte(redis_client):
    masked = masker.mask_texts([TEXT, "nothing here", ""]).texts

    restored = unmasker.unmask_texts(masked)

    assert restored.texts == [TEXT, "nothing here", ""]
    assert restored.unresolved == []
    assert restored.restored == 4


def test_masking_the_restored_text_again_gives_the_same_masked_text(redis_client):
    masked = masker.mask_texts([TEXT]).texts

    again = masker.mask_texts(unmasker.unmask_texts(masked).texts)

    assert again.texts == masked
    assert again.new_mappings == 0


def test_it_redacts_kinds_whose_policy_is_redact_and_never_stores_them(redis_client, monkeypatch):
    monkeypatch.setattr(policy, "effective_modes", lambda tenant: {"access_key_id": "redact"})

    result = masker.mask_texts([f"key {SECRET_KEY_ID}"])

    assert result.texts == ["key AWS_ACCESS_KEY_REDACTED"]
    assert result.entities[0][0].token == "AWS_ACCESS_KEY_REDACTED"
    assert result.counts_by_kind == {"access_key_id": 1}
    assert SECRET_KEY_ID.encode() not in everything_in(redis_client)


def test_it_leaves_kinds_whose_policy_is_off_untouched(redis_client, monkeypatch):
    monkeypatch.setattr(policy, "effective_modes", lambda tenant: {"vpc": "off"})

    result = masker.mask_texts([f"{EC2} in {VPC}"])

    assert result.texts == [f"AWS_EC2_001 in {VPC}"]
    assert result.counts_by_kind == {"ec2_instance": 1}


def test_unknown_tokens_are_kept_and_reported_once_each(redis_client):
    masker.mask_texts([EC2])

    result = unmasker.unmask_texts(["AWS_EC2_001 and AWS_EC2_777, AWS_EC2_777"])

    assert result.texts == [f"{EC2} and AWS_EC2_777, AWS_EC2_777"]
    assert result.unresolved == ["AWS_EC2_777"]


def test_markdown_escaped_tokens_are_restored_too(redis_client):
    masker.mask_texts([EC2])

    assert unmasker.unmask_texts([r"see AWS\_EC2\_001"]).texts == [f"see {EC2}"]


def test_a_token_is_only_restored_for_the_tenant_that_owns_it(redis_client):
    team = Tenant.objects.create(slug="team-b", name="Team B")
    masked = masker.mask_texts([EC2], team).texts

    assert unmasker.unmask_texts(masked).unresolved == ["AWS_EC2_001"]
    assert unmasker.unmask_texts(masked, team).texts == [EC2]


def test_it_masks_every_string_value_of_a_json_document_but_not_its_keys(redis_client):
    document = {EC2: [VPC, 3, None, {"note": f"on {EC2}"}], "ok": True}

    masked, result, paths = masker.mask_json(document)

    assert masked == {EC2: ["AWS_VPC_001", 3, None, {"note": "on AWS_EC2_001"}], "ok": True}
    assert paths == [(EC2, 0), (EC2, 3, "note")]
    assert [[e.token for e in found] for found in result.entities] == [["AWS_VPC_001"], ["AWS_EC2_001"]]
    restored, unmasked = unmasker.unmask_json(masked)
    assert restored == {EC2: [VPC, 3, None, {"note": f"on {EC2}"}], "ok": True}
    assert unmasked.unresolved == []


def test_a_json_document_nested_far_deeper_than_the_recursion_limit_is_masked(redis_client):
    document = EC2
    for _ in range(5000):
        document = [document]

    masked, _, paths = masker.mask_json(document)

    assert len(paths[0]) == 5000
    for _ in range(5000):
        masked = masked[0]
    assert masked == "AWS_EC2_001"


def test_the_async_service_masks_and_restores_like_the_sync_one(redis_client):
    async def run():
        masked = await masker.amask_texts([TEXT], source="proxy")
        restored = await unmasker.aunmask_texts(masked.texts, source="proxy")
        await events.drain()
        return masked, restored

    masked, restored = asyncio.run(run())

    assert masked.texts == masker.mask_texts([TEXT]).texts
    assert restored.texts == [TEXT]


def test_it_refuses_to_mask_or_unmask_when_redis_is_down(redis_server):
    redis_server.stop()

    with pytest.raises(MaskingUnavailable):
        masker.mask_texts([TEXT])
    with pytest.raises(MaskingUnavailable):
        unmasker.unmask_texts(["AWS_EC2_001"])
    with pytest.raises(MaskingUnavailable):
        asyncio.run(masker.amask_texts([TEXT]))


def test_unmasking_counts_restored_and_unresolved_tokens(redis_client):
    masker.mask_texts([EC2])

    unmasker.unmask_texts(["AWS_EC2_001 AWS_EC2_001 AWS_VPC_404"])

    counts = {k.decode(): int(v) for k, v in redis_client.hgetall(store.COUNTS_KEY).items()}
    assert counts["unmask_operations"] == 1
    assert counts["restored_tokens"] == 2
    assert counts["unresolved_tokens"] == 1


def test_an_account_seen_in_an_arn_is_masked_where_it_stands_bare_too(redis_client):
    role = "arn:aws:iam::123456789012:role/deploy-bot"
    texts = [f"The role {role} failed.", "Owned by 123456789012; order 555555555555 is unrelated."]
    result = masker.mask_texts(texts)
    joined = " ".join(result.texts)
    assert "123456789012" not in joined and "555555555555" in joined
    account_token = redis_client.get("aws:mask:123456789012").decode()
    assert result.texts[1] == f"Owned by {account_token}; order 555555555555 is unrelated."
    assert unmasker.unmask_texts(result.texts).texts == texts
    assert masker.mask_texts(texts).texts == result.texts


def test_a_bare_twelve_digit_number_without_any_account_evidence_is_left_alone(redis_client):
    text = "Ticket 123456789012 was closed."
    assert masker.mask_texts([text]).texts == [text]


def test_an_epoch_read_is_written_to_redis_before_start_epoch_read_returns(redis_client):
    async def run():
        await (await masker.start_epoch_read())  # the line connects on its first read
        monitor = asyncio.get_running_loop().create_future()
        sent = redis_line_connection().send  # every command written, in order

        def recording(commands):
            if not monitor.done():
                monitor.set_result([command[0] for command in commands])
            return sent(commands)

        redis_line_connection().send = recording
        epoch = await masker.start_epoch_read()
        written_before_returning = monitor.done() and monitor.result()
        return written_before_returning, await epoch == await (await masker.start_epoch_read())

    assert asyncio.run(run()) == (["GET", "GET"], True)


def redis_line_connection():
    return redisline.get_line()._conn


def test_a_request_whose_epoch_read_finds_redis_down_fails_closed(redis_client, redis_server):
    async def run():
        await masker.amask_texts([TEXT], source="proxy")  # connected, and every identifier remembered
        redis_server.stop()
        epoch = await masker.start_epoch_read()
        return await asyncio.gather(masker.amask_texts([TEXT], source="proxy", epoch=epoch), return_exceptions=True)

    try:
        outcomes = asyncio.run(run())
    finally:
        redis_server.start()
    assert [type(outcome) for outcome in outcomes] == [MaskingUnavailable]


def test_a_request_cancelled_while_it_waits_for_its_epoch_read_leaves_the_line_to_the_next(redis_client):
    async def run():
        await masker.amask_texts([TEXT], source="proxy")  # policy and mappings loaded: the next wait is the epoch
        gone = asyncio.ensure_future(masker.amask_texts([TEXT], source="proxy"))
        await asyncio.sleep(0)
        gone.cancel()
        return await masker.amask_texts([TEXT], source="proxy")

    assert asyncio.run(run()).texts == masker.mask_texts([TEXT]).texts


@pytest.mark.parametrize(
    "text",
    [
        "Accounts: 111111111111, 222222222222 and 333333333333.",
        '{"AccountIds": [\n    "111111111111",\n    "222222222222",\n    "333333333333"\n]}',
        "owner id 111111111111 222222222222; 333333333333",
    ],
)
def test_every_item_of_a_list_that_starts_with_an_account_is_masked(redis_client, text):
    (masked,) = masker.mask_texts([text]).texts

    assert not any(account in masked for account in ("111111111111", "222222222222", "333333333333"))
    assert masked.count("AWS_ACCOUNT_") == 3


def test_a_number_further_away_from_an_account_is_left_alone(redis_client):
    (masked,) = masker.mask_texts(["account 111111111111 was billed for order 222222222222"]).texts

    assert "222222222222" in masked and "111111111111" not in masked


def test_a_remembered_text_masks_a_bare_account_once_another_text_of_the_request_shows_it(redis_client):
    long_text = "Order 555555555555 shipped. " + "The fleet is healthy. " * 20  # long enough to be remembered

    async def run():
        alone = await masker.amask_texts([long_text], source="proxy")
        with_evidence = await masker.amask_texts([long_text, "arn:aws:iam::555555555555:role/Admin"], source="proxy")
        alone_again = await masker.amask_texts([long_text], source="proxy")
        return alone.texts[0], with_evidence.texts[0], alone_again.texts[0]

    alone, with_evidence, alone_again = asyncio.run(run())
    assert "555555555555" in alone and "555555555555" in alone_again
    assert "555555555555" not in with_evidence and "AWS_ACCOUNT_" in with_evidence


def test_an_account_that_follows_an_arn_naming_one_in_a_principal_list_is_masked(redis_client):
    text = '{"Principal": {"AWS": ["arn:aws:iam::210987654321:root", "111122223333"]}}'

    (masked,) = masker.mask_texts([text]).texts

    assert "210987654321" not in masked and "111122223333" not in masked
    assert masked.count("AWS_ACCOUNT_") == 1 and masked.count("AWS_ARN_") == 1


def test_the_same_texts_sent_again_are_planned_once_and_anything_else_anew(monkeypatch):
    long_text = f"{EC2} in {VPC}. " + "The fleet's hosts, once more. " * 20
    texts = [long_text, "short"]
    modes = {}
    monkeypatch.setattr(policy, "effective_modes", lambda tenant: modes)

    first = masker._plan_masking(texts, "default")

    assert masker._plan_masking(list(texts), "default") is first  # the same strings, in a new list
    equal = masker._plan_masking(["".join(long_text), "short"], "default")  # another string, equal
    assert equal is not first and equal.found == first.found and equal.counts == first.counts
    assert masker._plan_masking([long_text], "default") is not equal
    modes = {"vpc": "off"}  # a new policy snapshot
    assert masker._plan_masking(texts, "default").counts == {"ec2_instance": 1}
