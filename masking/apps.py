from django.apps import AppConfig


class MaskingConfig(AppConfig):
    name = "masking"
    verbose_name = "Masking"

    def ready(self) -> None:
        from masking import admin_ops  # noqa: F401 - registers the operations admin pages
