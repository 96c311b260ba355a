import sys

from django.core.management.base import BaseCommand, CommandError

from masking import masker
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


class Command(BaseCommand):
    help = "Mask AWS identifiers: reads stdin, writes exactly the masked text to stdout."
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument("--tenant", default=DEFAULT_TENANT, help="tenant slug (default: %(default)s)")

    def handle(self, *args, **options):
        tenant = tenant_named(options["tenant"])
        text = read_stdin(options.get("stdin") or sys.stdin)
        try:
            result = masker.mask_texts([text], tenant, source="cli")
        except MaskingUnavailable as exc:
            raise CommandError(f"masking unavailable: {exc}; nothing was written") from None
        self.stdout.write(result.texts[0], ending="")
