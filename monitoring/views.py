from django.http import JsonResponse

from monitoring.health import check_redis


async def healthz(request):
    return JsonResponse({"status": "ok"})


async def readyz(request):
    redis_status = await check_redis()
    ready = redis_status["ok"]
    body = {"status": "ok" if ready else "unavailable", "checks": {"redis": redis_status}}
    return JsonResponse(body, status=200 if ready else 503)
