"""The checks at a view's door, on the scope (accounts.scope): a refusal is recorded (user, IP,
path) before it is raised. A read out of scope is 404, an action 403."""

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest

from accounts.models import AccessKind
from accounts.scope import Can, Scope, scope_of
from accounts.services import access_record
from sirekap_tracker.proxies import client_address


def require(request: HttpRequest, what: Can) -> Scope:
    """The user's scope, if their role may do this at all; else 403."""
    scope = scope_of(request.user)
    if not scope.may(what):
        refusal_record(request, AccessKind.NOT_ALLOWED, "")
        raise PermissionDenied
    return scope


def require_sees(request: HttpRequest, code: str, what: Can = Can.DASHBOARD) -> Scope:
    """The user's scope, if they may read this area; else 403 for the role, 404 for the area."""
    scope = require(request, what)
    if not scope.sees(code):
        refusal_record(request, AccessKind.NOT_VISIBLE, code)
        raise Http404("no such area in your region")
    return scope


def require_acts_on(request: HttpRequest, code: str, what: Can = Can.ACT) -> Scope:
    """The user's scope, if they may do this on this area; else 403."""
    scope = require(request, what)
    if not scope.covers(code):
        refusal_record(request, AccessKind.NOT_ALLOWED, code)
        raise PermissionDenied
    return scope


def refusal_record(request: HttpRequest, kind: str, code: str = "", user=None) -> None:
    """Records a refusal; `user` for the API, whose user comes with a token, not a session."""
    user = user or request.user
    access_record(
        kind=kind,
        user=user if user.is_authenticated else None,
        ip=client_address(request),
        path=request.get_full_path(),
        area_code=code,
    )
