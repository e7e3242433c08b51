"""Invitations: a one-time link to the set-password page, made with Django's password-reset
token. The token is a hash over the user's password and last login, so it stops working once a
password is set, and after INVITATION_DAYS (PASSWORD_RESET_TIMEOUT) in any case."""

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.urls import reverse
from django.utils import translation
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode


def invitation_link(*, user) -> str:
    """The link a user sets their password with, on SITE_URL, in the site's first language."""
    uidb64 = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    with translation.override(settings.LANGUAGE_CODE):
        path = reverse("accounts:set-password", kwargs={"uidb64": uidb64, "token": token})
    return settings.SITE_URL + path
