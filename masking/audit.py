"""The audit trail of operator actions on mappings. Rows name the token, never the original."""

from django.http import HttpRequest

from masking.models import AuditLog


def client_ip(request: HttpRequest) -> str | None:
    # REMOTE_ADDR only: X-Forwarded-For is set by the client unless a trusted proxy rewrites it,
    # and an audit trail must not record an address the actor chose.
    return request.META.get("REMOTE_ADDR") or None


def record(request: HttpRequest, action: str, tenant: str, tokens: list[str], detail: str = "") -> list[AuditLog]:
    """One row per token for `action` by the request's user, in one INSERT."""
    user = request.user
    rows = [
        AuditLog(
            user=user,
            username=user.get_username(),
            action=action,
            token=token,
            tenant=tenant,
            client_ip=client_ip(request),
            detail=detail,
        )
        for token in tokens
    ]
    return AuditLog.objects.bulk_create(rows)
