from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from sirekap_tracker.health import system_health


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """The state of database, Redis, workers and beat: 200 when all are fine, 503 otherwise."""
    health = system_health()
    body = {"status": "ok" if health["ok"] else "fail", **health["checks"]}
    return JsonResponse(body, status=200 if health["ok"] else 503)


@require_GET
@never_cache
def livez(request: HttpRequest) -> HttpResponse:
    """The web process answers; for container health checks, which must not fail with a worker."""
    return HttpResponse("ok", content_type="text/plain")
