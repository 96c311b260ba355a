"""Admin pages for operations: mappings (Redis), the audit log, masking policy and custom rules."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.urls import path

from masking import admin_views
from masking.models import AuditLog, Mapping


@admin.register(Mapping)
class MappingAdmin(admin.ModelAdmin):
    """Only the lookup page: there are no rows in SQL to add, change or delete."""

    def get_urls(self):
        view = self.admin_site.admin_view(self.lookup_view)
        return [path("", view, name="masking_mapping_changelist")]

    def has_add_permission(self, request) -> bool:
        return False

    def lookup_view(self, request):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        return admin_views.mapping_lookup(request, self)


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = ["created_at", "username", "action", "token", "tenant", "client_ip", "detail"]
    list_filter = ["action", "tenant", "created_at", "username"]
    search_fields = ["token", "username", "client_ip"]
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in AuditLog._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
