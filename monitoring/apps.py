from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring"

    def ready(self) -> None:
        # The backups' admin lives beside monitoring/admin.py so the two can change independently.
        from monitoring import backup_admin  # noqa: F401
