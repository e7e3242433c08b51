"""Writes to accounts: operators, API tokens, the record of access."""

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from accounts.models import AccessEvent, ApiToken, Profile, Role
from accounts.scope import scope_of
from regions import codes
from regions.models import Area

logger = structlog.get_logger(__name__)


def token_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


# The levels of the region each role works on (0 is the nation).
ROLE_LEVELS: dict[str, tuple[int, ...]] = {
    Role.ADMIN: (0,),
    Role.STAFF: (0, codes.PROVINSI, codes.KABUPATEN),
    Role.PPK: (codes.KECAMATAN,),
    Role.KPPS: (codes.TPS,),
}
# What each level is called where a role's region is explained.
LEVEL_NAMES = {
    0: _("the nation (no region)"),
    codes.PROVINSI: _("a provinsi"),
    codes.KABUPATEN: _("a kabupaten/kota"),
    codes.KECAMATAN: _("a kecamatan"),
    codes.DESA: _("a kelurahan/desa"),
    codes.TPS: _("one TPS"),
}


class OperatorRefused(ValueError):
    """A user that cannot be made as asked; the message says which field and why."""


def operator_create(
    *, username: str, role: str, region_code: str = "", email: str = "", password=None
):
    """Creates a user with a role and region, all or nothing. Without a password the user
    cannot log in until they set one (an invitation, accounts.invitations)."""
    region = operator_region_check(role=role, region_code=region_code)
    model = get_user_model()
    if not username or model.objects.filter(username=username).exists():
        raise OperatorRefused(f"username: {username!r} is empty or taken")
    with transaction.atomic():
        user = model.objects.create_user(
            username,
            email=email,
            password=password,
            # The admin site: an admin manages everyone, staff the users below them.
            is_staff=role in (Role.ADMIN, Role.STAFF),
            is_superuser=role == Role.ADMIN,
        )
        Profile.objects.create(user=user, role=role, region=region)
    return user


@dataclass(frozen=True)
class OperatorRow:
    """One operator to make, as a list gives it (accounts.importers)."""

    username: str
    role: str
    region: str
    email: str
    source: str  # "file:line", for error messages


def operators_create(*, operators: Sequence[OperatorRow]) -> list:
    """Creates every operator of a checked list (accounts.importers), all or none: a name taken
    since the check refuses the whole list, naming its row."""
    users = []
    with transaction.atomic():
        for row in operators:
            try:
                user = operator_create(
                    username=row.username, role=row.role, region_code=row.region, email=row.email
                )
            except OperatorRefused as refused:
                raise OperatorRefused(f"{row.source}: {refused}") from refused
            users.append(user)
    return users


def operator_update(*, user, role: str, region_code: str) -> None:
    """Gives a user another role or region; the admin site follows the role, as in
    operator_create (the caller checks that whoever asks may manage both the old and the new)."""
    region = operator_region_check(role=role, region_code=region_code)
    with transaction.atomic():
        user.is_staff = role in (Role.ADMIN, Role.STAFF)
        user.is_superuser = role == Role.ADMIN
        user.save(update_fields=["is_staff", "is_superuser"])
        Profile.objects.update_or_create(user=user, defaults={"role": role, "region": region})
    user.__dict__.pop("_scope", None)


def operator_region_check(*, role: str, region_code: str) -> Area | None:
    """The region for a role, or OperatorRefused saying what the role needs."""
    if role not in Role.values:
        raise OperatorRefused(f"role: {role!r} is not one of {', '.join(Role.values)}")
    allowed = ROLE_LEVELS[role]
    level = codes.level_of(region_code) if codes.is_code(region_code) or not region_code else -1
    if level not in allowed:
        with translation.override("en"):  # OperatorRefused speaks English, as the commands do
            wanted = " or ".join(str(LEVEL_NAMES[each]) for each in allowed)
        raise OperatorRefused(f"region: a {role} works on {wanted}, got {region_code!r}")
    if not region_code:
        return None
    region = Area.objects.filter(code=region_code).first()
    if region is None:
        raise OperatorRefused(f"region: no area with code {region_code}")
    return region


def api_token_create(*, username: str) -> str:
    """Creates a token for an existing user and returns its key, which is shown only once."""
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise ValueError(f"no user named {username!r}; create it first (manage.py createsuperuser)")
    key = secrets.token_urlsafe(32)
    ApiToken.objects.create(user=user, key_hash=token_hash(key), prefix=key[:8])
    return key


def access_record(
    *, kind: str, user=None, username: str = "", ip: str = "", path: str = "", area_code: str = ""
) -> None:
    """Writes one access event (a login, a failed login, a refusal) and its log line."""
    role = scope_of(user).role if user is not None else ""
    username = username or (user.get_username() if user is not None else "")
    AccessEvent.objects.create(
        kind=kind,
        user=user if user is not None and user.is_authenticated else None,
        username=username[:150],
        role=role,
        ip=ip or None,
        path=path[:300],
        area_code=area_code[:13],
    )
    logger.info("access " + kind, username=username, role=role, ip=ip, path=path[:300])
