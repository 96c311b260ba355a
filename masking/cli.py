"""What `manage.py mask` and `manage.py unmask` share: stdin in, exactly the result out."""

import sys

from django.core.management.base import BaseCommand, CommandError

from masking.models import DEFAULT_TENANT, Tenant
from masking.store import MaskingUnavailable


def read_stdin(stream) -> str:
    """All of stdin, byte for byte (no newline translation), as UTF-8."""
    data = stream.buffer.read() if hasattr(stream, "buffer") else stream.read()
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise CommandError("stdin is not valid UTF-8") from None


def tenant_named(slug: str) -> Tenant:
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        raise CommandError(f"no tenant with slug {slug!r}")
    return tenant


class StdinTextCommand(BaseCommand):
    """Reads stdin, hands it to `transform(text, tenant)`, writes exactly what it returns."""

    operation = "masking"
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument("--tenant", default=DEFAULT_TENANT, help="tenant slug (default: %(default)s)")

    def handle(self, *args, **options):
        tenant = tenant_named(options["tenant"])
        text = read_stdin(options.get("stdin") or sys.stdin)
        try:
            output = self.transform(text, tenant)
        except MaskingUnavailable as exc:
            raise CommandError(f"{self.operation} unavailable: {exc}; nothing was written") from None
        self.stdout.write(output, ending="")

    def transform(self, text: str, tenant: Tenant) -> str:
        raise NotImplementedError
