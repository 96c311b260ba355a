"""Operator rules: validated by compile_rule, then scanned with the built-in catalogue."""

import pytest

from masking import engine
from masking.rules import CustomRule, RuleError, compile_rule
from tests.masking.engine_support import BACKENDS, found


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def project_rule() -> CustomRule:
    return compile_rule(r"PROJ-[0-9]{3,8}", "project_id", "PROJECT")


def test_it_compiles_a_rule_with_its_kind_and_prefix(project_rule):
    assert (project_rule.kind.name, project_rule.kind.prefix, project_rule.kind.default_policy) == (
        "project_id",
        "PROJECT",
        "mask",
    )


def test_it_masks_what_an_operator_rule_matches_alongside_built_in_kinds(backend, project_rule):
    text = "PROJ-12345 runs i-0123456789abcdef0 for PROJ-7"
    assert found(text, backend, [project_rule]) == [
        ("PROJ-12345", "project_id"),
        ("i-0123456789abcdef0", "ec2_instance"),
    ]


def test_it_takes_the_longest_match_of_an_operator_rule(backend):
    rule = compile_rule(r"TCK[0-9]+", "ticket", "TICKET")
    assert found("see TCK123456 now", backend, [rule]) == [("TCK123456", "ticket")]


def test_built_in_kinds_win_over_operator_rules_at_the_same_place(backend):
    rule = compile_rule(r"i-[0-9a-f]{17}", "my_instance", "MY_INSTANCE")
    assert found("i-0123456789abcdef0", backend, [rule]) == [("i-0123456789abcdef0", "ec2_instance")]


def test_operator_rules_never_match_inside_tokens(backend):
    rule = compile_rule(r"PROJECT_[0-9]+", "project_ref", "PROJ_REF")
    assert found("AWS_PROJECT_001 and PROJECT_42", backend, [rule]) == [("PROJECT_42", "project_ref")]


def test_operator_rule_offsets_are_str_offsets_in_non_ascii_text(backend, project_rule):
    assert found("é😀 PROJ-123 ü", backend, [project_rule]) == [("PROJ-123", "project_id")]


def test_without_rules_the_operator_kind_is_not_found(project_rule):
    assert engine.scan("PROJ-12345") == []


def test_it_accepts_a_compiled_hyperscan_database_as_a_rule():
    hyperscan = pytest.importorskip("hyperscan")

    class DatabaseRule:
        kind = "ticket"
        prefix = "TICKET"
        database = engine.compile_database([r"TCK[0-9]+"])

    assert isinstance(DatabaseRule.database, hyperscan.Database)
    assert found("TCK99 in vpc-12345678", "hyperscan", [DatabaseRule()]) == [
        ("TCK99", "ticket"),
        ("vpc-12345678", "vpc"),
    ]


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("", "1 to"),
        ("x" * 1001, "1 to"),
        ("a|", "empty string"),
        ("x*", "empty string"),
        (r"\b", "empty string"),
        ("(a+)+b", "repetition inside another repetition"),
        ("(?:[a-z]*,)*x", "repetition inside another repetition"),
        ("(?=x)abc", "look-around"),
        ("(?<!x)abc", "look-around"),
        (r"(a)\1", "back-reference"),
        ("[a-z", "not a valid regular expression"),
        ("café", "ASCII"),
    ],
)
def test_it_rejects_patterns_that_are_empty_unsafe_or_invalid(pattern, reason):
    with pytest.raises(RuleError, match=reason):
        compile_rule(pattern, "ticket", "TICKET")


@pytest.mark.parametrize(
    ("kind", "prefix"),
    [
        ("ec2_instance", "TICKET"),  # a built-in kind
        ("Ticket", "TICKET"),
        ("ticket", "EC2"),  # a built-in prefix
        ("ticket", "ticket"),
        ("ticket", "TICKET_REDACTED"),
        ("ticket", "A_B_C_D_E"),
        ("ticket", "T_001"),  # a number-like segment would make tokens ambiguous
    ],
)
def test_it_rejects_kind_names_and_prefixes_that_clash_with_the_grammar(kind, prefix):
    with pytest.raises(RuleError):
        compile_rule(r"TCK[0-9]+", kind, prefix)


def test_a_pattern_hyperscan_refuses_is_rejected():
    pytest.importorskip("hyperscan")
    with pytest.raises(RuleError, match="linear-time matcher"):
        compile_rule(r"[a-z]{1,5000}x", "ticket", "TICKET")
