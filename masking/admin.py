"""Admin for tenants and API clients. A new client's key is shown once, on the page after "Save"."""

from django import forms
from django.contrib import admin
from django.template.response import TemplateResponse

from masking.admin_ops import KindPolicyInline
from masking.models import ApiClient, Tenant


class TenantForm(forms.ModelForm):
    """The upstream key is write-only: typed in, never shown back (not even masked) in the form."""

    new_upstream_api_key = forms.CharField(
        label="Upstream API key",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text="The tenant's own Anthropic key. Empty: keep the current one (or the gateway's own key if none).",
    )
    clear_upstream_api_key = forms.BooleanField(label="Remove the tenant's upstream key", required=False)

    class Meta:
        model = Tenant
        fields = ["slug", "name", "ttl_seconds", "max_body_bytes", "rate_limit_per_minute"]

    def save(self, commit=True):
        if self.cleaned_data.get("clear_upstream_api_key"):
            self.instance.upstream_api_key = ""
        elif self.cleaned_data.get("new_upstream_api_key"):
            self.instance.upstream_api_key = self.cleaned_data["new_upstream_api_key"]
        return super().save(commit)


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    form = TenantForm
    list_display = ["slug", "name", "ttl_seconds", "max_body_bytes", "rate_limit_per_minute", "has_upstream_key"]
    search_fields = ["slug", "name"]
    inlines = [KindPolicyInline]

    @admin.display(boolean=True, description="Own upstream key")
    def has_upstream_key(self, obj: Tenant) -> bool:
        return bool(obj.upstream_api_key)

    def get_readonly_fields(self, request, obj=None):
        # The slug names the tenant's Redis keys: renaming it would orphan every mapping.
        return ["slug"] if obj else []


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    list_display = ["name", "tenant", "key_hint", "is_active", "created_at", "last_used_at"]
    list_filter = ["is_active", "tenant"]
    list_select_related = ["tenant"]
    search_fields = ["name", "key_hint"]
    readonly_fields = ["key_hint", "created_at", "last_used_at"]
    actions = ["deactivate"]

    def get_fields(self, request, obj=None):
        return ["name", "tenant"] if obj is None else ["name", "tenant", "is_active", *self.readonly_fields]

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        created, key = ApiClient.objects.create_with_key(obj.name, obj.tenant)
        obj.pk, obj.key_hint = created.pk, created.key_hint
        request._new_api_key = key  # shown by response_add, never stored

    def response_add(self, request, obj, post_url_continue=None):
        context = {**self.admin_site.each_context(request), "client": obj, "key": request._new_api_key}
        context["opts"] = self.opts
        return TemplateResponse(request, "admin/masking/apiclient/key_created.html", context)

    @admin.action(description="Deactivate the selected clients (their keys stop working)")
    def deactivate(self, request, queryset):
        count = queryset.update(is_active=False)
        self.message_user(request, f"{count} client(s) deactivated.")
