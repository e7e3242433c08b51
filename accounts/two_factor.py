"""The second factor: a TOTP device (django-otp) per user, required for admins, available to
everyone. A session is verified (request.user.is_verified()) once it gave a code of the user's
confirmed device; accounts.middleware.SecondFactorMiddleware asks for one where it is owed.
"""

from base64 import b32encode

import segno
from django.db import transaction
from django.utils.safestring import SafeString, mark_safe
from django_otp import verify_token
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Role
from accounts.scope import scope_of


def totp_device_of(user) -> TOTPDevice | None:
    """The user's confirmed device, the one a login asks a code of."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("-id").first()


def is_verified(user) -> bool:
    """Whether this request's user gave a code of their device in this session (set by
    django-otp's OTPMiddleware on request.user)."""
    return user.is_verified()


def second_factor_owed(user) -> bool:
    """Whether a session of this user must give a code: an admin always (without a device, they
    set one up first), anyone else once they have a confirmed device."""
    return scope_of(user).role == Role.ADMIN or totp_device_of(user) is not None


def totp_device_start(*, user) -> TOTPDevice:
    """The device being set up: the unconfirmed one the user already has (the secret they may
    have typed in stays the same on a reload), else a new one with a new random key."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-id").first()
    return device or TOTPDevice.objects.create(user=user, name="authenticator", confirmed=False)


def totp_device_confirm(*, device: TOTPDevice, code: str) -> bool:
    """Confirms a device being set up with a first code from it; the user's other devices go
    (one phone at a time: a lost one stops working when a new one is set up)."""
    with transaction.atomic():
        if not totp_code_check(device=device, code=code):
            return False
        TOTPDevice.objects.filter(pk=device.pk).update(confirmed=True)
        TOTPDevice.objects.filter(user_id=device.user_id).exclude(pk=device.pk).delete()
    device.confirmed = True
    return True


def totp_code_check(*, device: TOTPDevice, code: str) -> bool:
    """Whether the code is the device's now (a step either side allowed), never one used before;
    a failure slows the next tries down (django-otp's throttling)."""
    code = "".join(code.split())
    return verify_token(device.user, device.persistent_id, code) is not None


def totp_secret_text(device: TOTPDevice) -> str:
    """The secret in base32, in groups of four, for typing it into an app by hand."""
    secret = b32encode(device.bin_key).decode()
    return " ".join(secret[start : start + 4] for start in range(0, len(secret), 4))


def totp_qr_svg(device: TOTPDevice, title: str) -> SafeString:
    """The otpauth:// URL as a QR code, as inline SVG markup: no image request, no inline style,
    nothing the Content-Security-Policy refuses."""
    code = segno.make(device.config_url, error="m")
    return mark_safe(code.svg_inline(scale=5, svgclass="qr", light="#fff", title=title))
