import json
from http import HTTPStatus

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.middleware.locale import LocaleMiddleware
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop


class UrlLocaleMiddleware(LocaleMiddleware):
    """The language comes from the URL alone: its prefix (/en/...), else LANGUAGE_CODE.

    Django's LocaleMiddleware reads the language cookie and Accept-Language on paths without a
    prefix (the API, the admin) and marks every such answer `Vary: Accept-Language`. Here the
    URL decides everything, so that header would only make every cache keep one copy of a
    public page per browser language, all the same.
    """

    def process_request(self, request):
        language = translation.get_language_from_path(request.path_info)
        translation.activate(language or settings.LANGUAGE_CODE)
        request.LANGUAGE_CODE = translation.get_language()

    def process_response(self, request, response):
        response.headers.setdefault("Content-Language", translation.get_language())
        return response


def api_path(path: str) -> str | None:
    """The API's path a request is for (/api, /api/...), also when a language prefix stands in
    front of it (/en/api/...: the API has none, but a client copying a page's address may add
    one); None for any other path."""
    language = translation.get_language_from_path(path)
    bare = path.removeprefix(f"/{language}") if language else path
    return bare if bare == "/api" or bare.startswith("/api/") else None


class ApiMiddleware:
    """Every answer under /api/ may be read from any origin, and every error there is the API's
    JSON, `{"error": "..."}`, whatever produced it (docs/api.md).

    The API's views answer their own errors in JSON. What else can answer there is Django's:
    the 404 page of an address nothing answers (one behind a language prefix), the 500 page of a
    bug, the 400 of a bad Host, a CSRF refusal, a decorator's 405; all HTML, which a client of
    the API cannot read, and without CORS, which a browser will not even let it read. Those
    become JSON here with their status and headers kept, for every route, those added later
    included. Before the others, so that it sees what each of them answers.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        path = api_path(request.path_info)
        if path is None:
            return response
        response.headers.setdefault("Access-Control-Allow-Origin", "*")
        is_json = response.get("Content-Type", "").startswith("application/json")
        # (A file or stream, never an error page, is no HttpResponse.)
        if response.status_code >= 400 and not is_json and isinstance(response, HttpResponse):
            _as_json(response, _api_error(request, response, path))
        return response


def _api_error(request: HttpRequest, response: HttpResponseBase, path: str) -> str:
    status = response.status_code
    asked = request.path_info[:100]
    if status == 404 and path != request.path_info:
        return f"no such path: {asked!r}; the API has no language prefix: {path[:100]}"
    if status == 404:
        return f"no such path under /api/: {asked!r}; the paths are in docs/api.md"
    if status == 405:
        allowed = response.get("Allow", "")
        return f"method {request.method} is not allowed" + (f"; use {allowed}" if allowed else "")
    if status == 503:
        return "the service is unavailable for a moment; nothing was lost, try again shortly"
    if status >= 500:
        return "internal server error; try again later"
    return HTTPStatus(status).phrase.lower() if status in HTTPStatus else f"error {status}"


def _as_json(response: HttpResponse, message: str) -> None:
    """The error message as the response's body, in place: its status and every other header
    (Allow, Retry-After, the security headers) stay as they were."""
    body = json.dumps({"error": message}).encode()
    response.content = body
    response["Content-Type"] = "application/json"
    if response.has_header("Content-Length"):
        response["Content-Length"] = str(len(body))


def _refusal(request: HttpRequest, status: int, message: str, **values) -> HttpResponse:
    """JSON under /api/ in English, as the API's other errors are; a small page in the page's
    language anywhere else. `message` is marked for translation, `values` fill it in."""
    if api_path(request.path_info) is not None:
        with translation.override("en"):
            return JsonResponse({"error": _(message) % values}, status=status)
    context = {"status": status, "message": _(message) % values}
    return render(request, "refused.html", context, status=status)


# Where documents arrive: the intake API (tus included) and the upload form in both languages.
DOCUMENT_PATHS = ("/api/uploads/", "/unggah/", "/en/unggah/")
# Resumable uploads (uploads/tus.py): a body is bytes of one page at most.
TUS_PATH = "/api/uploads/tus/"


def document_body_max_bytes() -> int:
    """A whole document: every page at its largest, plus the form fields and multipart framing."""
    pages = settings.UPLOAD_MAX_PAGES * settings.UPLOAD_MAX_PAGE_BYTES
    return pages + settings.REQUEST_BODY_MAX_BYTES


def body_max_bytes(path: str) -> int:
    """The largest body a request to `path` may carry."""
    if path.startswith(TUS_PATH):
        return settings.UPLOAD_MAX_PAGE_BYTES
    if path.startswith(DOCUMENT_PATHS):
        return document_body_max_bytes()
    return settings.REQUEST_BODY_MAX_BYTES


class RequestBodyLimitMiddleware:
    """Refuses a request body larger than REQUEST_BODY_MAX_BYTES before anything reads it, except
    where documents arrive (DOCUMENT_PATHS), which take a whole document, and a tus upload's
    bytes (TUS_PATH), at most a page.

    It must come before CsrfViewMiddleware: checking a POST's token parses the body, and a
    multipart body with a made-up csrftoken cookie would otherwise be written to disk, however
    large, before the check fails. A body without Content-Length (chunked) is never read by
    Django under WSGI (it reads CONTENT_LENGTH bytes, none here); it is refused with 411 rather
    than taken as empty. nginx applies the same limits in front (deploy/nginx/).
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self._refusal(request)
        if response is None:
            return self.get_response(request)
        if request.path_info.startswith(TUS_PATH):
            # The protocol wants its version on every answer, refusals included.
            response["Tus-Resumable"] = "1.0.0"
        return response

    def _refusal(self, request: HttpRequest) -> HttpResponse | None:
        limit = body_max_bytes(request.path_info)
        declared = request.META.get("CONTENT_LENGTH") or ""
        if not declared and "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
            return _refusal(
                request, 411, gettext_noop("Send the body with a Content-Length header.")
            )
        size = int(declared) if declared.isdigit() else 0
        if size > limit:
            message = gettext_noop(
                "The request body of %(size)s bytes is larger than the %(limit)s allowed."
            )
            return _refusal(request, 413, message, size=size, limit=limit)
        return None


class NulCharacterMiddleware:
    """A NUL character in the path or the query string is answered 400 before any view runs.

    Codes from the URL go into queries, and PostgreSQL refuses a NUL in text with an error
    (a 500 and a traceback); no address of ours has one, so it is refused once for all.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        query = request.META.get("QUERY_STRING", "")
        if "\x00" in request.path_info or "%00" in query or "\x00" in query:
            return _refusal(request, 400, gettext_noop("The address contains a NUL character."))
        return self.get_response(request)
