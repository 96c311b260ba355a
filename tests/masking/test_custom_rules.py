import pytest

from masking import custom_rules, masker, policy, unmasker
from masking.models import CustomRule, KindPolicy, Tenant

ADD = "/admin/masking/customrule/add/"
TEST = "/admin/masking/customrule/test/"
JIRA = r"\bOPS-[0-9]{3,6}\b"


def rule_form(**overrides) -> dict:
    return {
        "name": "Ops tickets",
        "tenant": "",
        "pattern": JIRA,
        "kind": "ops_ticket",
        "prefix": "OPS",
        "enabled": "on",
        "examples": "OPS-1234\nsee OPS-999 for details",
        **overrides,
    }


@pytest.mark.parametrize(
    ("pattern", "complaint"),
    [
        (r"(a)\1", "linear time"),
        (r"(?<=x)OPS-\d+", "linear time"),
        (r"(OPS-\d+)+", "linear time"),
        (r"x*", "empty string"),
        (r"[a-z]+", "Too broad"),
        (r"\d+", "Too broad"),
        (r"OPS-[0-9]{7}", "does not match its own example"),
    ],
)
def test_a_rule_is_refused_when_it_is_slow_broad_or_misses_its_examples(pattern, complaint):
    with pytest.raises(custom_rules.RuleError, match=complaint):
        custom_rules.validate(pattern, "ops_ticket", "OPS", ["OPS-1234"])


def test_a_rule_can_never_take_the_gateways_own_tokens():
    with pytest.raises(custom_rules.RuleError, match="does not match its own example"):
        custom_rules.validate(r"AWS_[A-Z0-9_]+", "token_thief", "THIEF", ["AWS_EC2_001"])


def test_a_rule_needs_at_least_one_example():
    with pytest.raises(custom_rules.RuleError, match="at least one example"):
        custom_rules.validate(JIRA, "ops_ticket", "OPS", [])


def test_a_narrow_rule_that_matches_its_examples_is_accepted():
    custom_rules.validate(JIRA, "ops_ticket", "OPS", ["OPS-1234", "ticket OPS-999 reopened"])


def test_a_custom_kind_may_not_take_a_built_in_name_or_prefix():
    assert set(custom_rules.check_names("ec2_instance", "EC2")) == {"kind", "prefix"}
    assert set(custom_rules.check_names("Bad Name", "lower")) == {"kind", "prefix"}
    assert custom_rules.check_names("ops_ticket", "OPS") == {}


def test_the_preview_shows_what_would_be_masked_with_offsets_in_characters():
    masked, found = custom_rules.preview(JIRA, "ops_ticket", "OPS", "héllo OPS-123, OPS-456 and OPS-123")
    assert masked == "héllo AWS_OPS_001, AWS_OPS_002 and AWS_OPS_001"
    assert [(m.start, m.end, m.kind, value) for m, value in found][0] == (6, 13, "ops_ticket", "OPS-123")


def test_the_preview_includes_the_built_in_kinds():
    masked, _ = custom_rules.preview(JIRA, "ops_ticket", "OPS", "OPS-123 on i-0123456789abcdef0")
    assert masked == "AWS_OPS_001 on AWS_EC2_001"


@pytest.mark.django_db
def test_an_operator_adds_a_valid_rule_in_the_admin(operator_client):
    response = operator_client.post(ADD, rule_form())
    assert response.status_code == 302
    assert CustomRule.objects.get().kind == "ops_ticket"


@pytest.mark.django_db
def test_the_admin_refuses_a_rule_that_would_mask_harmless_text(operator_client):
    response = operator_client.post(ADD, rule_form(pattern=r"[A-Za-z]+", examples="OPS"))
    assert response.status_code == 200
    assert "Too broad" in response.content.decode()
    assert not CustomRule.objects.exists()


@pytest.mark.django_db
def test_two_custom_kinds_cannot_share_a_prefix(operator_client):
    operator_client.post(ADD, rule_form())
    response = operator_client.post(
        ADD, rule_form(name="Other", kind="other_ticket", pattern=r"\bOPX-[0-9]{3}\b", examples="OPX-123")
    )
    assert "Another custom kind already uses this prefix" in response.content.decode()


@pytest.mark.django_db
def test_a_viewer_cannot_add_a_rule(viewer_client):
    assert viewer_client.post(ADD, rule_form()).status_code == 403
    assert not CustomRule.objects.exists()


@pytest.mark.django_db
def test_the_rule_form_has_a_test_box(operator_client):
    content = operator_client.get(ADD).content.decode()
    assert 'id="rule-test-text"' in content and TEST in content


@pytest.mark.django_db
def test_the_test_box_shows_what_a_pattern_would_mask_without_saving_it(operator_client):
    form = {"pattern": JIRA, "kind": "ops_ticket", "prefix": "OPS", "text": "fix OPS-123 today"}
    response = operator_client.post(TEST, form)
    assert response.json() == {
        "masked": "fix AWS_OPS_001 today",
        "matches": [{"start": 4, "end": 11, "kind": "ops_ticket", "text": "OPS-123"}],
    }
    assert not CustomRule.objects.exists()


@pytest.mark.django_db
def test_the_test_box_explains_a_pattern_the_engine_cannot_run(operator_client):
    response = operator_client.post(TEST, {"pattern": r"(a)\1", "kind": "ops_ticket", "prefix": "OPS", "text": "aa"})
    assert response.status_code == 400
    assert "linear time" in response.json()["error"]


@pytest.mark.django_db
def test_the_test_box_is_for_rule_editors_only(viewer_client, anon_client):
    assert viewer_client.post(TEST, {"pattern": JIRA, "text": "OPS-123"}).status_code == 403
    assert anon_client.post(TEST, {"pattern": JIRA, "text": "OPS-123"}).status_code == 302


@pytest.mark.django_db
def test_saving_a_rule_in_the_admin_tells_the_gateways(
    operator_client, redis_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        operator_client.post(ADD, rule_form())
    assert redis_client.get(policy.VERSION_KEY) == b"1"


@pytest.mark.django_db
def test_a_kind_policy_accepts_built_in_and_custom_kinds_only(operator_client):
    add = "/admin/masking/kindpolicy/add/"
    assert operator_client.post(add, {"kind": "ops_ticket", "mode": "redact"}).status_code == 200
    operator_client.post(ADD, rule_form())
    assert operator_client.post(add, {"kind": "ops_ticket", "mode": "redact"}).status_code == 302
    assert operator_client.post(add, {"kind": "vpc", "mode": "off"}).status_code == 302
    assert set(KindPolicy.objects.values_list("kind", flat=True)) == {"ops_ticket", "vpc"}


@pytest.mark.django_db
def test_a_custom_kind_is_masked_by_default_once_its_rule_exists(operator_client):
    operator_client.post(ADD, rule_form())
    policy.forget()
    assert policy.effective_modes("default")["ops_ticket"] == "mask"
    assert policy.prefix_of("ops_ticket") == "OPS"


@pytest.fixture
def add_rule(django_capture_on_commit_callbacks):
    def add(**overrides) -> CustomRule:
        fields = {k: v for k, v in rule_form(**overrides).items() if k not in ("tenant", "enabled")}
        with django_capture_on_commit_callbacks(execute=True):
            return CustomRule.objects.create(
                tenant=overrides.get("tenant") or None, enabled=overrides.get("enabled", True), **fields
            )

    return add


@pytest.mark.django_db
def test_an_enabled_rule_masks_and_restores_through_the_masker(add_rule):
    add_rule()
    masked = masker.mask_texts(["Ticket OPS-4321 covers i-0123456789abcdef0"]).texts[0]
    assert masked == "Ticket AWS_OPS_001 covers AWS_EC2_001"
    assert unmasker.unmask_texts([masked]).texts == ["Ticket OPS-4321 covers i-0123456789abcdef0"]


@pytest.mark.django_db
def test_a_disabled_rule_masks_nothing(add_rule):
    add_rule(enabled=False)
    assert masker.mask_texts(["Ticket OPS-4321"]).texts == ["Ticket OPS-4321"]


@pytest.mark.django_db
def test_a_tenant_rule_applies_to_that_tenant_only(add_rule):
    blue = Tenant.objects.create(slug="blue", name="Blue")
    add_rule(tenant=blue)
    assert masker.mask_texts(["OPS-4321"], tenant="blue").texts == ["AWS_OPS_001"]
    assert masker.mask_texts(["OPS-4321"], tenant="default").texts == ["OPS-4321"]


@pytest.mark.django_db
def test_a_custom_kind_can_be_redacted_by_policy(add_rule, django_capture_on_commit_callbacks):
    add_rule()
    with django_capture_on_commit_callbacks(execute=True):
        KindPolicy.objects.create(kind="ops_ticket", mode="redact")
    assert masker.mask_texts(["OPS-4321"]).texts == ["AWS_OPS_REDACTED"]
