"""What every request of a logged-in session goes through, after Django's and django-otp's
authentication (settings.MIDDLEWARE):

- SessionIdleMiddleware logs out a session idle for SESSION_IDLE_MINUTES or older than
  SESSION_COOKIE_AGE (12 hours) since its login. An HTMX GET (a live part polling) is not
  activity: a dashboard left open in a tab does not keep its session alive.
- SecondFactorMiddleware sends a user who owes a TOTP code (accounts.two_factor) to give it, or
  an admin without a device to set one up, before anything else.

A request without a session cookie, and any request for a public page or open-data file (the
views of public.views), is let through untouched: those read no session and set no cookie, so a
cache may keep them for everyone; CookielessPublicMiddleware keeps Django's session and CSRF
middleware from setting a cookie on them (`is_public` decides, for all three).
"""

import time
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.urls import reverse
from django.utils.translation import ngettext

from accounts.models import Role
from accounts.scope import scope_of
from accounts.two_factor import is_verified, second_factor_owed, totp_device_of

# Session keys: when the session logged in and was last active (Unix seconds), and whether it
# owes a second factor (decided at the login; a superuser owes it whatever was decided).
LOGIN_AT = "accounts_login_at"
SEEN_AT = "accounts_seen_at"
SECOND_FACTOR = "accounts_second_factor"
# Activity is written at most once a minute: the idle limit is counted in minutes, and most
# page views then write no session at all.
SEEN_STEP_SECONDS = 60
# The module of the views every visitor gets alike.
PUBLIC_VIEWS = "public.views"
# Where a session that owes a second factor may still go.
OPEN_VIEWS = {
    "accounts:login",
    "accounts:login-code",
    "accounts:two-factor",
    "accounts:logout",
    "accounts:set-password",
    "admin:logout",
    "healthz",
    "livez",
}


def session_begin(request: HttpRequest, user) -> None:
    """Starts the clocks of a session that just logged in (accounts.signals)."""
    now = int(time.time())
    request.session[LOGIN_AT] = now
    request.session[SEEN_AT] = now
    request.session[SECOND_FACTOR] = second_factor_owed(user)


def _has_session(request: HttpRequest) -> bool:
    return settings.SESSION_COOKIE_NAME in request.COOKIES


def _is_public(view_func) -> bool:
    return getattr(view_func, "__module__", "") == PUBLIC_VIEWS


def is_public(request: HttpRequest) -> bool:
    """Whether the answer to the request is one every visitor gets alike, which any cache may
    keep: that of a public view (public.views), its errors included, or of no view at all (an
    address nothing answers, a refusal before any view ran). Nothing in those reads the session
    or hands out a CSRF token, so no cookie may be set, deleted or varied on there."""
    match = getattr(request, "resolver_match", None)
    return match is None or _is_public(match.func)


def _is_htmx(request: HttpRequest) -> bool:
    return "HX-Request" in request.headers


def _page_path(request: HttpRequest) -> str:
    """The page the person is on: for an HTMX request the page that sent it, not the part."""
    current = request.headers.get("HX-Current-URL", "") if _is_htmx(request) else ""
    if current:
        parts = urlsplit(current)
        return parts.path + (f"?{parts.query}" if parts.query else "")
    return request.get_full_path()


def redirect_to(request: HttpRequest, view_name: str) -> HttpResponse:
    """To a page of ours keeping where the person was (`next`). An HTMX request is answered
    with HX-Redirect, which htmx follows with a full page load (htmx answers no 3xx headers,
    and would swap an error status's body into the polling part)."""
    url = f"{reverse(view_name)}?{urlencode({'next': _page_path(request)})}"
    if not _is_htmx(request):
        return HttpResponseRedirect(url)
    response = HttpResponse(status=200)
    response["HX-Redirect"] = url
    response["Cache-Control"] = "no-store"
    return response


class _SessionViewMiddleware:
    """Looks at a request once its view is known, unless the view is public or there is no
    session: `check` answers instead of the view, or None to let it answer."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs):
        if is_public(request) or not _has_session(request):
            return None
        if not request.user.is_authenticated:
            return None
        return self.check(request)

    def check(self, request: HttpRequest) -> HttpResponse | None:
        raise NotImplementedError


class SessionIdleMiddleware(_SessionViewMiddleware):
    def check(self, request: HttpRequest) -> HttpResponse | None:
        session, now = request.session, int(time.time())
        login_at, seen_at = session.get(LOGIN_AT), session.get(SEEN_AT)
        if login_at is None or seen_at is None:  # a session from before these clocks
            session[LOGIN_AT] = login_at = session.get(LOGIN_AT, now)
            session[SEEN_AT] = seen_at = now
        idle_limit = settings.SESSION_IDLE_MINUTES * 60
        if now - seen_at > idle_limit or now - login_at > settings.SESSION_COOKIE_AGE:
            logout(request)
            minutes = settings.SESSION_IDLE_MINUTES
            if now - seen_at > idle_limit:
                text = ngettext(
                    "You were logged out after %(minutes)d minute without activity.",
                    "You were logged out after %(minutes)d minutes without activity.",
                    minutes,
                ) % {"minutes": minutes}
            else:
                hours = settings.SESSION_COOKIE_AGE // 3600
                text = ngettext(
                    "You were logged out: a session lasts at most %(hours)d hour.",
                    "You were logged out: a session lasts at most %(hours)d hours.",
                    hours,
                ) % {"hours": hours}
            messages.info(request, text)
            # A page goes on as for anyone not logged in (a staff page sends them to log in);
            # a live part sends the whole page to the login page and stops polling.
            return redirect_to(request, "accounts:login") if _is_htmx(request) else None
        # A page's own reads in the background are no activity of the person: an HTMX poll, or
        # the phone page's check on a document waiting to be published (X-Poll, unggah.js).
        is_poll = request.method == "GET" and (_is_htmx(request) or "X-Poll" in request.headers)
        if not is_poll and now - seen_at >= SEEN_STEP_SECONDS:
            session[SEEN_AT] = now
        return None


class SecondFactorMiddleware(_SessionViewMiddleware):
    def check(self, request: HttpRequest) -> HttpResponse | None:
        user = request.user
        if is_verified(user):
            return None
        if not (user.is_superuser or request.session.get(SECOND_FACTOR)):
            return None
        match = request.resolver_match
        if match is not None and match.view_name in OPEN_VIEWS:
            return None
        if totp_device_of(user) is not None:
            return redirect_to(request, "accounts:login-code")
        if scope_of(user).role == Role.ADMIN:
            return redirect_to(request, "accounts:two-factor")
        # Their device was removed (an admin did, for a lost phone): nothing is owed any more.
        request.session.pop(SECOND_FACTOR, None)
        return None


class CookielessPublicMiddleware:
    """Keeps Django's SessionMiddleware and CsrfViewMiddleware, outside this one, from setting a
    cookie or `Vary: Cookie` on a public answer (`is_public`), so that a CDN keeps it.

    Whatever the request carries: Django deletes the cookie of a session it finds empty (an
    invalid or expired `sessionid`) and varies on a session that was looked at; and it answers
    a malformed `csrftoken` with a fresh one on whatever page comes next. A public page has no
    session to save and no form: without its session (which SessionMiddleware then leaves
    alone) and without a token to hand out, its answer goes out as the view made it. The staff
    pages are untouched.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if is_public(request):
            request.META["CSRF_COOKIE_NEEDS_UPDATE"] = False
            if hasattr(request, "session"):
                del request.session
        return response
