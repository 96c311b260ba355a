"""Which kinds are masked, redacted or left alone, per tenant.

The seam the masker asks; for now every kind follows its engine default."""

from masking.engine import KINDS
from masking.models import Tenant

MASK = "mask"
REDACT = "redact"
OFF = "off"


def effective_modes(tenant: Tenant | str) -> dict[str, str]:
    """kind name -> "mask" | "redact" | "off" for this tenant."""
    return {name: kind.default_policy for name, kind in KINDS.items()}


def extra_rules(tenant: Tenant | str) -> tuple:
    """Custom rules the engine applies on top of its own patterns, for this tenant."""
    return ()


def prefix_of(kind: str) -> str:
    return KINDS[kind].prefix
