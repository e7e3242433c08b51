"""Logins, failed logins, logouts and lockouts become access events (accounts.AccessEvent), with
the client's address behind the proxy and the path; connected in AccountsConfig.ready()."""

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

from accounts.middleware import session_begin
from accounts.models import AccessKind
from accounts.services import access_record
from sirekap_tracker.proxies import client_address


def _where(request: HttpRequest | None) -> dict[str, str]:
    if request is None:  # authenticate() called outside a request (a shell, a script)
        return {"ip": "", "path": ""}
    return {"ip": client_address(request), "path": request.get_full_path()}


@receiver(user_logged_in, dispatch_uid="accounts-logged-in")
def logged_in(sender, request, user, **kwargs) -> None:
    session_begin(request, user)
    access_record(kind=AccessKind.LOGIN, user=user, **_where(request))


@receiver(user_login_failed, dispatch_uid="accounts-login-failed")
def login_failed(sender, credentials, request=None, **kwargs) -> None:
    username = str(credentials.get("username", ""))
    access_record(kind=AccessKind.LOGIN_FAILED, username=username, **_where(request))


@receiver(user_logged_out, dispatch_uid="accounts-logged-out")
def logged_out(sender, request, user, **kwargs) -> None:
    access_record(kind=AccessKind.LOGOUT, user=user, **_where(request))


@receiver(user_locked_out, dispatch_uid="accounts-locked-out")
def locked_out(sender, request, username, ip_address, **kwargs) -> None:
    where = _where(request)
    access_record(
        kind=AccessKind.LOCKED_OUT, username=username or "", ip=ip_address or where["ip"],
        path=where["path"],
    )  # fmt: skip
