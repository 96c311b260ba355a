import sys

from django.core.management.base import BaseCommand, CommandError

from masking import masker
from masking.management.commands.mask import read_stdin, tenant_named
from masking.models import DEFAULT_TENANT
from masking.store import MaskingUnavailable


class Command(BaseCommand):
    help = "Restore masked tokens: reads stdin, writes exactly the restored text to stdout."
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument("--tenant", default=DEFAULT_TENANT, help="tenant slug (default: %(default)s)")

    def handle(self, *args, **options):
        tenant = tenant_named(options["tenant"])
        text = read_stdin(options.get("stdin") or sys.stdin)
        try:
            result = masker.unmask_texts([text], tenant, source="cli")
        except MaskingUnavailable as exc:
            raise CommandError(f"unmasking unavailable: {exc}; nothing was written") from None
        if result.unresolved:
            self.stderr.write(f"{len(result.unresolved)} token(s) not found, left as they are")
        self.stdout.write(result.texts[0], ending="")
