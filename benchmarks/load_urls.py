"""The project's URLs plus /_bench/page and /_bench/json, for benchmarks.public_load: the bytes of
the public area page and of its JSON, read once from the files that BENCH_PAGE_FILE and
BENCH_JSON_FILE name, answered with no query and no template. Beside the real views they show
what Django itself (middleware, routing) and gunicorn cost for the same answer."""

import os
from pathlib import Path

from django.http import HttpRequest, HttpResponse
from django.urls import path

from sirekap_tracker.urls import urlpatterns as project_urlpatterns

PAGE = Path(os.environ["BENCH_PAGE_FILE"]).read_bytes()
JSON = Path(os.environ["BENCH_JSON_FILE"]).read_bytes()


def page(request: HttpRequest) -> HttpResponse:
    return HttpResponse(PAGE, content_type="text/html; charset=utf-8")


def json(request: HttpRequest) -> HttpResponse:
    return HttpResponse(JSON, content_type="application/json")


# Spliced, not include()d: Django finds i18n_patterns (the /en/ prefix) in the root URLconf only.
urlpatterns = [path("_bench/page", page), path("_bench/json", json), *project_urlpatterns]
