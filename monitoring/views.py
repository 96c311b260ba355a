import hmac
import ipaddress

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render

from monitoring import dashboard as dashboard_numbers
from monitoring import metrics as prometheus
from monitoring.health import check_celery_beat, check_redis


async def healthz(request):
    return JsonResponse({"status": "ok"})


async def readyz(request):
    redis_status = await check_redis()
    ready = redis_status["ok"]
    checks = {"redis": redis_status, "celery_beat": await sync_to_async(check_celery_beat)()}
    body = {"status": "ok" if ready else "unavailable", "checks": checks}
    return JsonResponse(body, status=200 if ready else 503)


@staff_member_required
def dashboard(request):
    return render(request, "monitoring/dashboard.html", dashboard_numbers.overview())


def metrics(request):
    if not _may_scrape(request):
        response = HttpResponse("metrics need a bearer token or a staff session\n", status=401)
        response["WWW-Authenticate"] = "Bearer"
        return response
    return HttpResponse(prometheus.render(), content_type=prometheus.CONTENT_TYPE)


def _may_scrape(request) -> bool:
    """METRICS_TOKEN set: that bearer token (or a staff session). Unset: a staff session, or a
    client on this host that came directly (a local reverse proxy adds forwarding headers)."""
    token = settings.METRICS_TOKEN
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(sent.strip().encode(), token.encode()):
        return True
    if request.user.is_active and request.user.is_staff:
        return True
    return not token and _direct_loopback(request)


def _direct_loopback(request) -> bool:
    if any(h in request.headers for h in ("X-Forwarded-For", "Forwarded", "X-Real-Ip")):
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False
