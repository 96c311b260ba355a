"""Skeleton engine with a few kinds; the engine owner replaces it (see docs/contracts.md)."""

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    prefix: str
    default_policy: str = "mask"


@dataclass(frozen=True, slots=True)
class Match:
    start: int
    end: int
    kind: str


KINDS = {
    k.name: k
    for k in [
        Kind("ec2_instance", "EC2"),
        Kind("vpc", "VPC"),
        Kind("account_id", "ACCOUNT"),
        Kind("iam_role_arn", "IAM_ROLE"),
        Kind("access_key_id", "ACCESS_KEY"),
        Kind("secret_access_key", "SECRET_KEY", "redact"),
    ]
}

_PATTERNS = [
    ("iam_role_arn", r"arn:aws:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}"),
    ("ec2_instance", r"\bi-(?:[0-9a-f]{17}|[0-9a-f]{8})\b"),
    ("vpc", r"\bvpc-(?:[0-9a-f]{17}|[0-9a-f]{8})\b"),
    ("access_key_id", r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
    ("account_id", r"(?<=\"Account\": \")\d{12}\b"),
]
_RE = re.compile("|".join(f"(?P<{name}>{pattern})" for name, pattern in _PATTERNS))


def scan(text: str, extra_rules=()) -> list[Match]:
    return [Match(m.start(), m.end(), m.lastgroup) for m in _RE.finditer(text)]
