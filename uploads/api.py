"""What the JSON API views share (the intake, the actions, the state of an upload, tus): who is
asking, and errors answered the same way everywhere."""

from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware

from accounts.selectors import user_for_token

# Document.idempotency_key holds this much; a longer key (or tus document id) is refused, never
# cut (two keys that share their first 200 characters would collide).
IDEMPOTENCY_KEY_MAX = 200
TOKEN_CHALLENGE = 'Token realm="sirekap-tracker"'


def error_response(message: str, status: int, pesan: str = "") -> JsonResponse:
    """An error as the API answers it: `error` in English, and for a refused upload `pesan`, the
    same in Indonesian for the officer holding the phone."""
    response = JsonResponse(
        {"error": message, **({"pesan": pesan} if pesan else {})}, status=status
    )
    if status == 401:
        response["WWW-Authenticate"] = TOKEN_CHALLENGE
    return response


def too_many_response(retry_after: int) -> JsonResponse:
    response = error_response(f"too many uploads; try again in {retry_after} s", 429)
    response["Retry-After"] = str(retry_after)
    return response


def token_user(request: HttpRequest):
    """The user of the request's `Authorization: Token <key>`, or None."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme != "Token" or not key.strip():
        return None
    return user_for_token(key.strip())


class _CsrfCheck(CsrfViewMiddleware):
    """Django's CSRF check, keeping why it failed rather than answering."""

    reason: str | None = None

    def _reject(self, request: HttpRequest, reason: str) -> HttpResponseForbidden:
        self.reason = reason
        return HttpResponseForbidden()


def _checked_view(request: HttpRequest) -> HttpResponse:
    """Stands for the view being checked, which is not called."""
    raise AssertionError("a CSRF check calls no view")


def csrf_failure(request: HttpRequest) -> str | None:
    """Why the request fails Django's CSRF check (its token in the X-CSRFToken header or the
    form, its origin), or None when it passes. For views that take a token or a session: they
    are exempt from the middleware's check, since a token needs none, and check a session's
    here."""
    check = _CsrfCheck(_checked_view)
    check.process_request(request)
    check.process_view(request, _checked_view, (), {})
    return check.reason
