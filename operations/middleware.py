"""Two middlewares in front of all the others: /metrics for the scraper, and a request's id, its
log line and its place in the latency histograms."""

import hmac
import logging
import time

import structlog
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers
from prometheus_client import CONTENT_TYPE_LATEST

from operations import metrics
from sirekap_tracker.logs import request_id_or_new

logger = structlog.get_logger(__name__)

METRICS_PATH = "/metrics"


class MetricsMiddleware:
    """Answers /metrics before anything else runs, Django's host check included.

    Prometheus scrapes each web container at its address inside the deployment (docker
    compose's DNS gives one per container), so the Host it sends is that address, which is in no
    ALLOWED_HOSTS; the bearer token is what guards this answer, and it uses no host (no link, no
    redirect). nginx never passes /metrics on (deploy/nginx/default.conf.template). With
    METRICS_TOKEN unset there is no /metrics: 404, as for any unknown path.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info != METRICS_PATH:
            return self.get_response(request)
        response = _metrics(request)
        add_never_cache_headers(response)
        return response


def _metrics(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if not token:
        return HttpResponse("Not Found\n", status=404, content_type="text/plain")
    if request.method not in ("GET", "HEAD"):
        response = HttpResponse("GET only\n", status=405, content_type="text/plain")
        response["Allow"] = "GET, HEAD"
        return response
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        response = HttpResponse(
            "Authorization: Bearer <METRICS_TOKEN> needed\n", status=401, content_type="text/plain"
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    # In constant time: how much of a guess matched must not show in how long the refusal took.
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        return HttpResponse("wrong token\n", status=403, content_type="text/plain")
    return HttpResponse(metrics.exposition(), content_type=CONTENT_TYPE_LATEST)


class RequestMiddleware:
    """Binds a request id to every line logged while the request is answered (the proxy's
    X-Request-ID when it is a sane id, else a new one), sends it back in X-Request-ID, and
    writes one line for the request and its time into the latency histograms (by view name,
    never by path: one series per view, not per area code).

    The line says where a slow request's time went: `cpu_ms` on a core of its own, `db_ms` in
    its `queries` (PostgreSQL's work and the round trips), and the rest of `duration_ms` waiting
    for a core, for Redis or for a lock. On a full machine the rest is what grows."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_or_new(request.headers.get("X-Request-ID"))
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started, cpu_started = time.perf_counter(), time.thread_time()
        queries = QueryTimer()
        try:
            with connection.execute_wrapper(queries):
                response = self.get_response(request)
            seconds = time.perf_counter() - started
            view = _view_name(request)
            metrics.request_observe(view=view, code=response.status_code, seconds=seconds)
            response["X-Request-ID"] = request_id
            logger.log(
                logging.WARNING if response.status_code >= 500 else logging.INFO,
                "request",
                method=request.method,
                path=request.path,
                status=response.status_code,
                view=view,
                duration_ms=round(seconds * 1000, 1),
                cpu_ms=round((time.thread_time() - cpu_started) * 1000, 1),
                db_ms=round(queries.seconds * 1000, 1),
                queries=queries.count,
                **_user(request),
            )
            return response
        finally:
            structlog.contextvars.clear_contextvars()


class QueryTimer:
    """The statements a request sent through Django's connection, and the time it waited for
    them (an execute wrapper: connection.execute_wrapper)."""

    def __init__(self) -> None:
        self.count, self.seconds = 0, 0.0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.count += 1
            self.seconds += time.perf_counter() - started


def _view_name(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    return match.view_name if match is not None else "unresolved"


def _user(request: HttpRequest) -> dict:
    """The user's id when the view looked at the session anyway: reading it for the log alone
    would cost public pages a query and their cacheability (Vary: Cookie)."""
    session = getattr(request, "session", None)
    if session is None or not session.accessed:
        return {}
    user = getattr(request, "user", None)
    return {"user_id": user.pk} if user is not None and user.is_authenticated else {}
