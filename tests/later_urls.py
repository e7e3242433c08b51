"""The project's URLs with an API route added later, written the way Django's own views are and
unaware of the API's JSON errors: its refusals (a decorator's 405, a CSRF 403) and its failures
are Django's HTML unless something makes them JSON (sirekap_tracker.middleware.ApiMiddleware)."""

from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.http import require_POST

from sirekap_tracker.urls import urlpatterns as project_urlpatterns


@require_POST
def later(request: HttpRequest) -> HttpResponse:
    return HttpResponse("done", content_type="text/plain")


def failing(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a bug in a view")


urlpatterns = [
    path("api/later/", later),
    path("api/failing/", failing),
    *project_urlpatterns,
]
