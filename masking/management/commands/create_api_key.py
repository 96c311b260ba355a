from django.core.management.base import BaseCommand

from masking.cli import tenant_named
from masking.models import DEFAULT_TENANT, ApiClient


class Command(BaseCommand):
    help = "Create an API client; prints its key alone on the last line (it cannot be shown again)."

    def add_arguments(self, parser):
        parser.add_argument("name", help="who or what uses the key, e.g. ci-pipeline")
        parser.add_argument("--tenant", default=DEFAULT_TENANT, help="tenant slug (default: %(default)s)")

    def handle(self, *args, **options):
        client, key = ApiClient.objects.create_with_key(options["name"], tenant_named(options["tenant"]))
        self.stdout.write(f"Created API client {client.name!r} (tenant {client.tenant.slug}). Its key, shown once:")
        self.stdout.write(key)
