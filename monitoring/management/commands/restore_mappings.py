from django.core.management.base import BaseCommand, CommandError

from monitoring.backups import BackupError, resolve_backup
from monitoring.rdb import RdbError
from monitoring.restore import restore_mappings


class Command(BaseCommand):
    help = (
        "Merge the mappings of a backup into the running Redis: keys the live Redis already has are kept, "
        "the others come back with their remaining TTL; sequence counters never go down."
    )

    def add_arguments(self, parser):
        parser.add_argument("backup", help="a backup file path, or a backup id from the admin")

    def handle(self, *args, backup: str, **options):
        try:
            path = resolve_backup(backup)
            if not path.is_file():
                raise CommandError(f"{path}: no such file")
            report = restore_mappings(path)
        except (BackupError, RdbError) as exc:
            raise CommandError(f"not restored: {exc}") from exc
        for line in report.lines():
            self.stdout.write(line)
