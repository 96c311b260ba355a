"""Admin pages for operations: mappings (Redis), the audit log, masking policy and custom rules."""

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.urls import path

from masking import admin_views, custom_rules
from masking.engine import KINDS
from masking.models import AuditLog, CustomRule, KindPolicy, Mapping
from monitoring.admin import ReadOnlyAdmin


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
class AuditLogAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "username", "action", "token", "tenant", "client_ip", "detail"]
    list_filter = ["action", "tenant", "created_at", "username"]
    search_fields = ["token", "username", "client_ip"]
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in AuditLog._meta.fields]


class KindPolicyForm(forms.ModelForm):
    kind = forms.ChoiceField()

    class Meta:
        model = KindPolicy
        fields = ["tenant", "kind", "mode"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        custom = CustomRule.objects.order_by("kind").values_list("kind", flat=True).distinct()
        kinds = [(name, f"{name} (default: {kind.default_policy})") for name, kind in sorted(KINDS.items())]
        self.fields["kind"].choices = kinds + [(name, f"{name} (custom rule)") for name in custom]


class KindPolicyInline(admin.TabularInline):
    """A tenant's own policy rows, on its Tenant page ("kinds enabled" is a row with mode off)."""

    model = KindPolicy
    form = KindPolicyForm
    fields = ["kind", "mode"]
    extra = 0
    verbose_name_plural = "masking policy for this tenant (overrides the all-tenants policy)"


@admin.register(KindPolicy)
class KindPolicyAdmin(admin.ModelAdmin):
    form = KindPolicyForm
    list_display = ["kind", "mode", "tenant_label", "updated_at"]
    list_filter = ["mode", "tenant"]
    list_select_related = ["tenant"]
    search_fields = ["kind"]

    @admin.display(description="tenant", ordering="tenant__slug")
    def tenant_label(self, obj: KindPolicy) -> str:
        return obj.tenant.slug if obj.tenant else "all tenants"


@admin.register(CustomRule)
class CustomRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "prefix", "tenant_label", "enabled", "updated_at"]
    list_filter = ["enabled", "tenant"]
    list_select_related = ["tenant"]
    search_fields = ["name", "kind", "prefix"]
    fields = ["name", "tenant", "pattern", "kind", "prefix", "enabled", "examples"]
    change_form_template = "admin/masking/customrule/change_form.html"

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "pattern":
            kwargs["widget"] = forms.TextInput(attrs={"size": 90, "class": "vLargeTextField", "spellcheck": "false"})
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    @admin.display(description="tenant", ordering="tenant__slug")
    def tenant_label(self, obj: CustomRule) -> str:
        return obj.tenant.slug if obj.tenant else "all tenants"

    def get_urls(self):
        test_view = self.admin_site.admin_view(self.test_rule_view)
        return [path("test/", test_view, name="masking_customrule_test"), *super().get_urls()]

    def test_rule_view(self, request):
        """What a rule would mask in pasted text; the text is neither stored nor logged."""
        if not (self.has_add_permission(request) or self.has_change_permission(request)):
            raise PermissionDenied
        if request.method != "POST":
            return JsonResponse({"error": "POST a pattern and a text."}, status=405)
        post = request.POST
        try:
            masked, found = custom_rules.preview(
                post.get("pattern", ""), post.get("kind", ""), post.get("prefix", ""), post.get("text", "")
            )
        except custom_rules.RuleError as exc:
            return JsonResponse({"error": str(exc)}, status=400)
        matches = [{"start": m.start, "end": m.end, "kind": m.kind, "text": value} for m, value in found]
        return JsonResponse({"masked": masked, "matches": matches})
