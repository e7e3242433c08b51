"""Logging in (password, then a TOTP code for whoever has a device), setting a password from an
invitation, setting up the second factor, and the lockout page."""

import math
import time
from urllib.parse import urlencode

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, logout
from django.contrib.auth import login as auth_login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django_otp import login as otp_login

from accounts.forms import CodeForm
from accounts.models import Role
from accounts.scope import scope_of
from accounts.two_factor import (
    is_verified,
    totp_code_check,
    totp_device_confirm,
    totp_device_of,
    totp_device_start,
    totp_qr_svg,
    totp_secret_text,
)
from sirekap_tracker.proxies import client_address

# The login waiting for its code: who, through which backend, since when, and where to then.
PENDING = "accounts_pending_login"
PENDING_SECONDS = 5 * 60


def _next_url(request: HttpRequest) -> str:
    """Where to go afterwards: `next` if it is a page of this site, else the staff home."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    allowed = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if allowed else resolve_url(settings.LOGIN_REDIRECT_URL)


class LoginView(auth_views.LoginView):
    """Django's login with the password; a user with a confirmed TOTP device is not logged in
    yet but asked for a code next (login_code)."""

    template_name = "accounts/login.html"

    def form_valid(self, form):
        user = form.get_user()
        if totp_device_of(user) is None:
            return super().form_valid(form)
        self.request.session[PENDING] = {
            "user": user.pk,
            "backend": user.backend,
            "at": int(time.time()),
            "next": self.get_success_url(),
        }
        return HttpResponseRedirect(reverse("accounts:login-code"))


@never_cache
@sensitive_post_parameters("code")
def login_code(request: HttpRequest) -> HttpResponse:
    """The second step: a code of the user's device. For a login waiting for it, or for a
    session that is logged in but owes one (accounts.middleware.SecondFactorMiddleware)."""
    pending = None if request.user.is_authenticated else request.session.get(PENDING)
    if request.user.is_authenticated:
        if is_verified(request.user):
            return redirect(_next_url(request))
        user = request.user
    elif not pending or time.time() - pending["at"] > PENDING_SECONDS:
        request.session.pop(PENDING, None)
        return redirect("accounts:login")
    else:
        found = get_user_model().objects.filter(pk=pending["user"], is_active=True).first()
        if found is None:
            return redirect("accounts:login")
        user = found
    device = totp_device_of(user)
    if device is None:  # removed meanwhile: an admin sets up a new one, anyone else goes on
        if pending is not None:
            user.backend = pending["backend"]
            auth_login(request, user)
            return redirect(pending["next"])
        return redirect(_next_url(request))
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if totp_code_check(device=device, code=form.cleaned_data["code"]):
            if pending is not None:
                del request.session[PENDING]
                user.backend = pending["backend"]
                auth_login(request, user)
            otp_login(request, device)
            return redirect(pending["next"] if pending else _next_url(request))
        form.add_error("code", _("That code is not right. Type the code your app shows now."))
        # A wrong code is a failed login: it is recorded and counts towards the lockout.
        credentials = {"username": user.get_username()}
        user_login_failed.send(sender=__name__, credentials=credentials, request=request)
        if getattr(request, "axes_locked_out", False):
            request.session.pop(PENDING, None)
            if request.user.is_authenticated:
                logout(request)
    context = {"form": form, "next": _next_url(request) if pending is None else ""}
    return render(request, "accounts/login_code.html", context)


@login_required
@never_cache
@sensitive_post_parameters("code")
def two_factor(request: HttpRequest) -> HttpResponse:
    """Setting up the second factor: the secret as a QR code and as text, confirmed with a first
    code. Required for admins (SecondFactorMiddleware sends them here), open to everyone."""
    user = request.user
    confirmed = totp_device_of(user)
    if confirmed is not None:
        if not is_verified(user):
            query = urlencode({"next": request.get_full_path()})
            return redirect(f"{reverse('accounts:login-code')}?{query}")
        return render(request, "accounts/two_factor.html", {"confirmed": confirmed})
    device = totp_device_start(user=user)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if totp_device_confirm(device=device, code=form.cleaned_data["code"]):
            otp_login(request, device)
            messages.success(request, _("Two-step verification is on."))
            return redirect(_next_url(request))
        form.add_error("code", _("That code is not right. Type the code your app shows now."))
    context = {
        "form": form,
        "device": device,
        "secret": totp_secret_text(device),
        "qr": totp_qr_svg(device, title=_("QR code to scan with your authenticator app")),
        "required": scope_of(user).role == Role.ADMIN,
        "next": _next_url(request),
    }
    return render(request, "accounts/two_factor.html", context)


class SetPasswordView(auth_views.PasswordResetConfirmView):
    """The page an invitation link opens: a new password, checked by the password validators.
    A link works once (Django's password-reset token); a used or expired one says so."""

    template_name = "accounts/set_password.html"
    success_url = reverse_lazy("accounts:login")
    title = gettext_lazy("Set your password")

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, _("Your password is set. Log in with it now."))
        return response


def locked_out(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """django-axes' lockout answer (AXES_LOCKOUT_CALLABLE): a page in the page's language saying
    for how long this name is refused from this address."""
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    last = (
        AccessAttempt.objects.filter(username=username, ip_address=client_address(request))
        .order_by("-attempt_time")
        .values_list("attempt_time", flat=True)
        .first()
    )
    until = (last or timezone.now()) + settings.AXES_COOLOFF_TIME
    minutes = max(1, math.ceil((until - timezone.now()).total_seconds() / 60))
    wait = ngettext(
        "Try again in %(minutes)d minute.", "Try again in %(minutes)d minutes.", minutes
    ) % {"minutes": minutes}
    context = {"wait": wait, "limit": settings.AXES_FAILURE_LIMIT}
    return render(request, "accounts/locked_out.html", context, status=429)
