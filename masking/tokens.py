"""Token grammar: `AWS_<PREFIX>_<NNN>`. Skeleton: the engine owner completes it (see docs/contracts.md)."""

import re
from dataclasses import dataclass

REDACTED_SUFFIX = "REDACTED"


def format_token(prefix: str, number: int) -> str:
    return f"AWS_{prefix}_{number:03d}"


def redaction_marker(prefix: str) -> str:
    return f"AWS_{prefix}_{REDACTED_SUFFIX}"


@dataclass(frozen=True, slots=True)
class TokenMatch:
    start: int
    end: int
    token: str


# Prefixes are upper-case words joined by underscores; numbers have at least 3 digits.
_TOKEN_RE = re.compile(r"(?<![A-Za-z0-9_])AWS(?:\\{0,2}_[A-Z0-9]+)+?\\{0,2}_(\d{3,})(?![A-Za-z0-9_])")
TOKEN_MAX_LEN = 64


def find_tokens(text: str) -> list[TokenMatch]:
    return [TokenMatch(m.start(), m.end(), m.group(0).replace("\\", "")) for m in _TOKEN_RE.finditer(text)]
