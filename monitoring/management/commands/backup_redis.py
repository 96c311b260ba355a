from django.core.management.base import BaseCommand, CommandError

from monitoring.backups import prune_backups, run_backup


class Command(BaseCommand):
    help = "Snapshot the mapping Redis into BACKUP_DIR, verify the file restores, prune old backups."

    def handle(self, *args, **options):
        record = run_backup()
        if record.status != record.Status.OK:
            raise CommandError(f"backup {record.pk} failed: {record.error}")
        pruned = prune_backups()
        self.stdout.write(
            f"backup {record.pk}: {record.size_bytes} bytes, {record.key_count} keys in the mapping database, "
            f"verified in {record.duration_ms} ms; {pruned} old backup(s) pruned"
        )
        # Last line: the path alone, for scripts (`path=$(manage.py backup_redis | tail -1)`).
        self.stdout.write(record.file)
