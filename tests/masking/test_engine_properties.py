"""Properties over generated text (hypothesis): masking is reversible, stable and idempotent, and
both backends agree. Masking here is the pure part of it: scan, then one token per original."""

import string

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from masking import engine
from masking.engine import KINDS
from masking.tokens import find_tokens, format_token, redaction_marker
from tests.masking.engine_support import BACKENDS

HEX = "0123456789abcdef"
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def hexes(n: int):
    return st.text(HEX, min_size=n, max_size=n)


octet = st.integers(0, 255).map(str)
account = st.integers(10**11, 10**12 - 1).map(str)
name = st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=16)
resource_id = st.builds(
    lambda prefix, digits: f"{prefix}-{digits}",
    st.sampled_from(["i", "ami", "vol", "snap", "sg", "vpc", "subnet", "eni", "rtb", "igw", "nat", "tgw-attach"]),
    st.one_of(hexes(17), hexes(8)),
)
identifiers = st.one_of(
    resource_id,
    st.builds(lambda a, n: f"arn:aws:iam::{a}:role/{n}", account, name),
    st.builds(lambda a, n: f"arn:aws:lambda:us-east-1:{a}:function:{n}", account, name),
    st.builds(lambda n: f"arn:aws:s3:::{n.lower()}-bucket/key", name),
    st.builds(lambda a: f'"AccountId": "{a}"', account),
    st.builds(lambda a, b, c: f"10.{a}.{b}.{c}", octet, octet, octet),
    st.builds(lambda a, b: f"54.{a}.{b}.7", octet, octet),
    st.builds(lambda a, b: f"2001:db8:{a}::{b}", hexes(4), hexes(3)),
    st.builds(lambda n: f"s3://{n.lower().strip('_-')}bucket/path", name),
    st.builds(lambda k: f"AKIA{k}", st.text(string.ascii_uppercase + string.digits, min_size=16, max_size=16)),
    st.builds(lambda a, b: f"ip-10-0-{a}-{b}.ec2.internal", octet, octet),
    st.builds(lambda a, h: f"2 {a} eni-{h} 10.0.0.1", account, hexes(17)),
    st.builds(lambda n: f"db-{n}", st.text(string.ascii_uppercase + string.digits, min_size=26, max_size=26)),
    st.builds(lambda n: f"{n.lower().strip('_-')}x.s3.us-west-2.amazonaws.com", name),
    st.builds(lambda n: f"web-{n.lower().strip('_-')}1.us-east-1.elb.amazonaws.com", name),
    st.sampled_from(["i-node", "t3.large", "us-east-1", "sg-rules", "6.1.84-99", "09:12:44", "127.0.0.1", "0.0.0.0"]),  # noqa: S104
    # fragments that change the context of what follows or precedes them
    st.sampled_from(["AWS_EC2_001", "AWS\\_VPC\\_002", "account ", '"Bucket": "', "s3://", "arn:aws:", "::", "key/"]),
    st.sampled_from(["version ", "Account ID: ", "aws_secret_access_key = ", "hostedzone/", ".s3.amazonaws.com"]),
)
filler = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
separator = st.sampled_from(["", " ", "\n", ", ", '"', ": ", "/", "-", ".", "é", "😀", "\\"])
texts = st.lists(st.tuples(st.one_of(identifiers, filler), separator), max_size=12).map(
    lambda parts: "".join(piece + sep for piece, sep in parts)
)
secrets = st.builds(
    lambda key: f"aws_secret_access_key = {key}\n",
    st.text(string.ascii_letters + string.digits + "+/", min_size=40, max_size=40),
)


class Vault:
    """What the store does, in memory: one token per original, never reused; redacted kinds never stored."""

    def __init__(self, backend: str):
        self.backend = backend
        self.tokens: dict[str, str] = {}
        self.originals: dict[str, str] = {}
        self.numbers: dict[str, int] = {}

    def token_for(self, original: str, kind: str) -> str:
        if original not in self.tokens:
            prefix = KINDS[kind].prefix
            self.numbers[prefix] = self.numbers.get(prefix, 0) + 1
            token = format_token(prefix, self.numbers[prefix])
            self.tokens[original], self.originals[token] = token, original
        return self.tokens[original]

    def mask(self, text: str) -> str:
        pieces, position = [], 0
        for match in engine.scan(text, backend=self.backend):
            kind = KINDS[match.kind]
            original = text[match.start : match.end]
            replacement = (
                redaction_marker(kind.prefix)
                if kind.default_policy == "redact"
                else self.token_for(original, match.kind)
            )
            pieces += [text[position : match.start], replacement]
            position = match.end
        return "".join(pieces) + text[position:]

    def unmask(self, text: str) -> str:
        pieces, position = [], 0
        for found in find_tokens(text):
            pieces += [text[position : found.start], self.originals.get(found.token, text[found.start : found.end])]
            position = found.end
        return "".join(pieces) + text[position:]


per_backend = pytest.mark.parametrize("backend", BACKENDS)


@per_backend
@SETTINGS
@given(text=texts)
def test_unmasking_the_masked_text_gives_it_back_exactly(backend, text):
    assume(not find_tokens(text))  # a token typed by the user is indistinguishable from one we issued
    vault = Vault(backend)
    assert vault.unmask(vault.mask(text)) == text


@per_backend
@SETTINGS
@given(text=texts)
def test_masking_the_unmasked_output_again_gives_the_same_masked_text(backend, text):
    assume(not find_tokens(text))
    vault = Vault(backend)
    masked = vault.mask(text)
    assert vault.mask(vault.unmask(masked)) == masked


@per_backend
@SETTINGS
@given(text=texts, secret=secrets)
def test_masking_is_idempotent_on_masked_text(backend, text, secret):
    vault = Vault(backend)
    masked = vault.mask(secret + text)
    assert "aws_secret_access_key = AWS_SECRET_KEY_REDACTED" in masked
    assert vault.mask(masked) == masked
    assert engine.scan(masked, backend=backend) == []


@per_backend
@SETTINGS
@given(text=texts)
def test_spans_are_ordered_and_disjoint(backend, text):
    matches = engine.scan(text, backend=backend)
    assert all(0 <= m.start < m.end <= len(text) for m in matches)
    assert all(a.end <= b.start for a, b in zip(matches, matches[1:], strict=False))


@pytest.mark.skipif(len(BACKENDS) < 2, reason="hyperscan is not installed here")
@SETTINGS
@given(text=texts)
def test_both_backends_agree(text):
    assert engine.scan(text, backend="hyperscan") == engine.scan(text, backend="python")
