from django.apps import AppConfig


class MaskingConfig(AppConfig):
    name = "masking"
    verbose_name = "Masking"

    def ready(self) -> None:
        # Registers the operations admin pages; connects the policy- and client-changed signals.
        from masking import admin_ops, auth, policy  # noqa: F401
