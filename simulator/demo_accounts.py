"""The demo's people, for `make run`: the PPK operator of Kecamatan Babulu and the KPU staff of
Kabupaten Penajam Paser Utara, each with a fresh password printed on start, so that a newcomer
can take the stuck Babulu TPS in hand. Never in production: they are refused where cookies are
secure (a site served over HTTPS)."""

import secrets
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured

from accounts.models import Profile, Role
from accounts.services import operator_create
from regions import demo


@dataclass(frozen=True)
class DemoAccount:
    username: str
    role: str
    region: str
    password: str


ACCOUNTS = (
    ("ppk-babulu", Role.PPK, demo.BABULU),
    ("kpu-ppu", Role.STAFF, demo.KABUPATEN[0]),
)


def demo_accounts_make() -> list[DemoAccount]:
    """Creates the demo's accounts (or gives them a new password) and returns them."""
    if settings.SESSION_COOKIE_SECURE:
        raise ImproperlyConfigured(
            "demo accounts are for make run's plain-HTTP demo only (SECURE_COOKIES=false); "
            "this site's cookies are secure, as in production"
        )
    made = []
    users = get_user_model().objects
    for username, role, region in ACCOUNTS:
        password = secrets.token_urlsafe(9)
        user = users.filter(username=username).first()
        if user is None:
            user = operator_create(username=username, role=role, region_code=region)
        Profile.objects.filter(user=user).update(role=role, region_id=region)
        user.set_password(password)
        user.save(update_fields=["password"])
        made.append(DemoAccount(username, role, region, password))
    return made
