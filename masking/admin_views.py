"""The admin's "Mappings" page: mappings live in Redis, so this is a purpose-built page, not a changelist.

Originals are hidden (kind and length only) unless a user with `masking.reveal_original` asks to
reveal selected rows; every reveal, revoke, extend and export is audited. Searches by original
are POSTed so the value never appears in a URL (access logs, browser history, Referer).
"""

import io
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from masking import audit, mappings
from masking.engine import KINDS
from masking.models import AuditLog, CustomRule, Tenant

REVEAL_PERM = "masking.reveal_original"
MAX_EXTEND_SECONDS = 365 * 24 * 3600
MAX_SELECTED = 500


def kinds_by_prefix() -> dict[str, str]:
    """Token prefix -> kind name, built-in kinds and custom rules."""
    kinds = dict(CustomRule.objects.values_list("prefix", "kind"))
    kinds.update({kind.prefix: kind.name for kind in KINDS.values()})
    return kinds


def _tenant_choices() -> list[tuple[str, str]]:
    return [(slug, slug) for slug in Tenant.objects.values_list("slug", flat=True)]


class SearchForm(forms.Form):
    SEARCH_BY = [("token", "token (exact)"), ("original", "original (exact)"), ("prefix", "original starts with")]

    tenant = forms.ChoiceField()
    search_by = forms.ChoiceField(choices=SEARCH_BY, initial="token")
    query = forms.CharField(required=False, max_length=2048, strip=True)
    kind = forms.ChoiceField(required=False)
    cursor = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)

    def __init__(self, *args, can_reveal: bool, kinds: dict[str, str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tenant"].choices = _tenant_choices()
        self.fields["kind"].choices = [("", "any kind")] + sorted((p, n) for p, n in kinds.items())
        if not can_reveal:
            self.fields["search_by"].choices = self.SEARCH_BY[:1]


class ActionForm(forms.Form):
    ACTIONS = [
        ("reveal", "Reveal originals"),
        ("revoke", "Revoke"),
        ("extend", "Extend TTL"),
        ("export", "Export as CSV"),
    ]

    action = forms.ChoiceField(choices=ACTIONS)
    tenant = forms.ChoiceField()
    extend_seconds = forms.IntegerField(required=False, min_value=60, max_value=MAX_EXTEND_SECONDS, initial=86400)
    kind = forms.CharField(required=False, max_length=64)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tenant"].choices = _tenant_choices()

    def clean(self) -> dict:
        data = super().clean()
        if data.get("action") == "extend" and not data.get("extend_seconds"):
            self.add_error("extend_seconds", "How many seconds to add?")
        return data


def mapping_lookup(request: HttpRequest, model_admin) -> HttpResponse:
    if request.method == "POST" and request.POST.get("action") not in (None, "", "search"):
        return _act(request, model_admin)
    can_reveal = request.user.has_perm(REVEAL_PERM)
    kinds = kinds_by_prefix()
    data = request.POST if request.method == "POST" else request.GET
    if data.get("search_by", "token") != "token":
        if not can_reveal:
            raise PermissionDenied("Searching by original needs the reveal permission.")
        if request.method != "POST":
            raise PermissionDenied("Search by original with the form: an original must not be put in a URL.")
    form = SearchForm(_with_defaults(data), can_reveal=can_reveal, kinds=kinds)
    page = mappings.Page([], 0, False)
    if form.is_valid():
        page = _search(form.cleaned_data)
    return _render(request, model_admin, form, page, kinds, revealed=False)


def _with_defaults(data) -> dict:
    values = {"tenant": Tenant.objects.order_by("pk").values_list("slug", flat=True).first(), "search_by": "token"}
    values.update({key: data.get(key) for key in ("tenant", "search_by", "query", "kind", "cursor") if data.get(key)})
    return values


def _search(data: dict) -> mappings.Page:
    tenant, query, search_by = data["tenant"], data["query"], data["search_by"]
    if query and search_by == "token":
        found = mappings.find_by_token(query.replace("\\", ""), tenant)
        return mappings.Page([found] if found else [], 0, False)
    if query and search_by == "original":
        found = mappings.find_by_original(query, tenant)
        return mappings.Page([found] if found else [], 0, False)
    original_prefix = query if search_by == "prefix" else ""
    return mappings.scan_page(tenant, original_prefix=original_prefix, prefix=data["kind"], cursor=data["cursor"] or 0)


def _render(request, model_admin, form, page: mappings.Page, kinds: dict, revealed: bool, status: int = 200):
    rows = [
        {
            "token": m.token,
            "kind": kinds.get(m.prefix, "unknown"),
            "tenant": m.tenant,
            "ttl": m.ttl,
            "ttl_text": _duration(m.ttl),
            "length": len(m.original),
            "original": m.original if revealed else None,
        }
        for m in page.mappings
    ]
    user = request.user
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": "Mappings",
        "form": form,
        "rows": rows,
        "page": page,
        "revealed": revealed,
        "can_reveal": user.has_perm(REVEAL_PERM),
        "can_revoke": user.has_perm("masking.delete_mapping"),
        "can_extend": user.has_perm("masking.change_mapping"),
        "actions": _allowed_actions(user),
        "search_by_post": form.is_bound and form.data.get("search_by") in ("original", "prefix"),
    }
    return render(request, "admin/masking/mapping_lookup.html", context, status=status)


def _duration(seconds: int | None) -> str:
    if seconds is None:
        return "no expiry"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    parts = [f"{days}d"] if days else []
    return " ".join(parts + [f"{hours}h", f"{rest // 60}m"]) if seconds >= 60 else f"{seconds}s"


def _allowed_actions(user) -> list[tuple[str, str]]:
    needs = {"reveal": REVEAL_PERM, "revoke": "masking.delete_mapping", "extend": "masking.change_mapping"}
    return [(name, label) for name, label in ActionForm.ACTIONS if name not in needs or user.has_perm(needs[name])]


def _act(request: HttpRequest, model_admin) -> HttpResponse:
    action = request.POST.get("action")
    if action in ACTIONS and action not in dict(_allowed_actions(request.user)):
        raise PermissionDenied(f"You may not {action} mappings.")
    form = ActionForm(request.POST)
    tokens = list(dict.fromkeys(request.POST.getlist("tokens")))
    valid_tokens = 0 < len(tokens) <= MAX_SELECTED and all(mappings.is_token(t) for t in tokens)
    if not form.is_valid() or not valid_tokens:
        messages.error(request, f"Select between 1 and {MAX_SELECTED} mappings and an action.")
        return _back(request)
    return ACTIONS[action](request, model_admin, {**form.cleaned_data, "tokens": tokens})


def _back(request: HttpRequest, tenant: str = "", kind: str = "") -> HttpResponseRedirect:
    query = urlencode({key: value for key, value in (("tenant", tenant), ("kind", kind)) if value})
    return HttpResponseRedirect(reverse("admin:masking_mapping_changelist") + (f"?{query}" if query else ""))


def _reveal(request, model_admin, data: dict) -> HttpResponse:
    tenant = data["tenant"]
    found = mappings.find_by_tokens(data["tokens"], tenant)
    audit.record(request, AuditLog.Action.REVEAL, tenant, [m.token for m in found])
    kinds = kinds_by_prefix()
    form = SearchForm(_with_defaults({"tenant": tenant}), can_reveal=True, kinds=kinds)
    # Rendered directly, never through messages: those travel in the session or a cookie.
    # The admin's never_cache wrapper marks the page no-store.
    return _render(request, model_admin, form, mappings.Page(found, 0, False), kinds, revealed=True)


def _revoke(request, model_admin, data: dict) -> HttpResponse:
    tenant = data["tenant"]
    revoked = [token for token in data["tokens"] if mappings.revoke(token, tenant)]
    audit.record(request, AuditLog.Action.REVOKE, tenant, revoked)
    messages.success(request, f"Revoked {len(revoked)} mapping(s): {', '.join(revoked) or 'none found'}.")
    return _back(request, tenant, data["kind"])


def _extend(request, model_admin, data: dict) -> HttpResponse:
    tenant, seconds = data["tenant"], data["extend_seconds"]
    extended = [token for token in data["tokens"] if mappings.extend(token, tenant, seconds) is not None]
    audit.record(request, AuditLog.Action.EXTEND, tenant, extended, detail=f"+{seconds}s")
    messages.success(request, f"Extended {len(extended)} mapping(s) by {seconds} seconds.")
    return _back(request, tenant, data["kind"])


def _export(request, model_admin, data: dict) -> HttpResponse:
    tenant = data["tenant"]
    with_originals = request.user.has_perm(REVEAL_PERM)
    found = mappings.find_by_tokens(data["tokens"], tenant)
    out = io.StringIO()
    mappings.write_csv(out, found, kinds_by_prefix(), with_originals)
    detail = "with originals" if with_originals else "originals hidden"
    audit.record(request, AuditLog.Action.EXPORT, tenant, [m.token for m in found], detail=detail)
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="mappings-{tenant}.csv"'
    return response


ACTIONS = {"reveal": _reveal, "revoke": _revoke, "extend": _extend, "export": _export}
