import inspect
import sys

from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from sirekap_tracker.health import system_health
from sirekap_tracker.proxies import is_internal


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """The state of database, Redis, workers and beat: 200 when all are fine, 503 otherwise.

    The details (error messages, worker names, timings) go to internal callers and staff only;
    anyone else learns ok or fail.
    """
    health = system_health()
    body = {"status": "ok" if health["ok"] else "fail"}
    if is_internal(request) or _is_staff(request):
        body |= health["checks"]
    return JsonResponse(body, status=200 if health["ok"] else 503)


def _is_staff(request: HttpRequest) -> bool:
    # The session lives in PostgreSQL: while it is down, nobody is known to be staff.
    try:
        return request.user.is_staff
    except DatabaseError:
        return False


@require_GET
@never_cache
def livez(request: HttpRequest) -> HttpResponse:
    """The web process answers; for container health checks, which must not fail with a worker."""
    return HttpResponse("ok", content_type="text/plain")


# Django's error pages (the root URLconf's handler400 ... handler500), without the CSRF token its
# own handlers ask for (requires_csrf_token, in case an error template has a form): ours have
# none, and that token's cookie, set whenever a request carried a malformed one, would keep a
# cache from keeping a public 404 (accounts.middleware.is_public).


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    return inspect.unwrap(defaults.bad_request)(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    return inspect.unwrap(defaults.permission_denied)(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    return inspect.unwrap(defaults.page_not_found)(request, exception)


# How long a client is asked to wait while the database cannot be read (Retry-After).
RETRY_AFTER_SECONDS = 10


def retry_later(response: HttpResponse) -> HttpResponse:
    """A 503 of the database being away, marked so: when to ask again, and never cached."""
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's 500 page; but when the database could not be reached (restarting, failing over,
    out of connections) a 503 that says to try again shortly, with Retry-After: nothing was
    lost, a phone sends again and a page's poll keeps what it showed."""
    if isinstance(sys.exc_info()[1], (OperationalError, InterfaceError)):
        # Without the request, as Django renders its 500: its context would read the session.
        return retry_later(HttpResponse(render_to_string("503.html"), status=503))
    return inspect.unwrap(defaults.server_error)(request)
