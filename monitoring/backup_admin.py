"""Backups in the admin: the list with verification status, "back up now", and downloads for staff
holding the dedicated `monitoring.download_backup` permission (a backup holds every original)."""

import logging
from pathlib import Path

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.defaultfilters import filesizeformat
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from masking import audit
from masking.models import AuditLog
from monitoring.models import BackupRecord
from monitoring.tasks import backup_redis

logger = logging.getLogger(__name__)
DOWNLOAD_PERMISSION = "monitoring.download_backup"
BACKUP_NOW_PERMISSION = "monitoring.add_backuprecord"


@admin.register(BackupRecord)
class BackupRecordAdmin(admin.ModelAdmin):
    list_display = ["created_at", "status", "verified", "size", "key_count", "redis_version", "took", "download"]
    list_filter = ["status", "verified"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in BackupRecord._meta.fields]
    actions = ["back_up_now"]

    def has_add_permission(self, request) -> bool:
        return False  # backups are taken by "back up now", the beat task or `manage.py backup_redis`

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # retention prunes files and rows together

    @admin.display(description="size", ordering="size_bytes")
    def size(self, record: BackupRecord) -> str:
        return filesizeformat(record.size_bytes) if record.size_bytes else "–"

    @admin.display(description="duration", ordering="duration_ms")
    def took(self, record: BackupRecord) -> str:
        return f"{record.duration_ms / 1000:.1f} s" if record.duration_ms is not None else "–"

    @admin.display(description="file")
    def file_name(self, record: BackupRecord) -> str:
        return Path(record.file).name if record.file else "–"

    @admin.display(description="file")
    def download(self, record: BackupRecord) -> str:
        if not record.file:
            return "–"
        url = reverse("admin:monitoring_backuprecord_download", args=[record.pk])
        return format_html('<a href="{}">{}</a>', url, Path(record.file).name)

    def get_list_display(self, request):
        if request.user.has_perm(DOWNLOAD_PERMISSION):
            return self.list_display
        return [name if name != "download" else "file_name" for name in self.list_display]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_back_up": request.user.has_perm(BACKUP_NOW_PERMISSION)}
        return super().changelist_view(request, extra_context)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/download/", view(self.download_view), name="monitoring_backuprecord_download"),
            path("back-up-now/", view(require_POST(self.back_up_now_view)), name="monitoring_backuprecord_now"),
            *super().get_urls(),
        ]

    def download_view(self, request: HttpRequest, pk: int) -> FileResponse:
        if not request.user.has_perm(DOWNLOAD_PERMISSION):
            raise PermissionDenied
        record = get_object_or_404(BackupRecord, pk=pk)
        file = Path(record.file).resolve()
        if not record.file or file.parent != Path(settings.BACKUP_DIR).resolve() or not file.is_file():
            raise Http404("backup file not found")
        audit.record(request, AuditLog.Action.EXPORT, "*", [f"backup-{record.pk}"], detail="downloaded a backup")
        logger.info("backup %s downloaded by %s", record.pk, request.user.get_username())
        return FileResponse(open(file, "rb"), as_attachment=True, filename=file.name)

    def back_up_now_view(self, request: HttpRequest) -> HttpResponseRedirect:
        if not request.user.has_perm(BACKUP_NOW_PERMISSION):
            raise PermissionDenied
        self._queue_backup(request)
        return HttpResponseRedirect(reverse("admin:monitoring_backuprecord_changelist"))

    @admin.action(description="Back up now", permissions=["back_up"])
    def back_up_now(self, request, queryset) -> None:
        self._queue_backup(request)

    def has_back_up_permission(self, request) -> bool:
        return request.user.has_perm(BACKUP_NOW_PERMISSION)

    def _queue_backup(self, request: HttpRequest) -> None:
        backup_redis.delay()
        messages.info(request, "Backup queued: it appears here when the worker has taken and verified it.")
