"""Who may see and do what: decided here and nowhere else.

A user's scope is their role and their region. Area codes are paths, so the region's code is a
prefix of every code in its subtree ("" is the nation). Every view, API endpoint, export, HTMX
part and admin page asks a Scope (`sees`, `acts_on`, `may`) or the querysets built on
ScopedQuerySet (`visible_to`, `actionable_by`); nothing else reads roles or regions.

    role    region               may
    admin   the nation           everything, every user
    staff   provinsi, kabupaten  dashboard, work queue and its actions, uploads, audit, the
            (or the nation)      users below their region
    ppk     one kecamatan        dashboard, work queue and its actions, uploads
    kpps    one TPS              uploads for that TPS, and reading its state

Outside the region a read answers 404 (it does not say what is there) and an action 403
(accounts.guards records both).
"""

import enum
from dataclasses import dataclass
from typing import ClassVar

from django.contrib.auth import get_user_model
from django.db import models

from accounts.models import Profile, Role


class Can(enum.StrEnum):
    """What a role may do at all; where, its region says."""

    DASHBOARD = "dashboard"  # the dashboard, the work queue, TPS pages and their history
    ACT = "act"  # take, mark stuck, clear, requeue, note
    UPLOAD = "upload"
    AUDIT = "audit"  # the audit list and its export
    SYSTEM = "system"  # the system page: queues, workers, the public site
    MANAGE_USERS = "manage_users"


CAPABILITIES: dict[str, frozenset[Can]] = {
    Role.ADMIN: frozenset(Can),
    Role.STAFF: frozenset(Can),
    Role.PPK: frozenset({Can.DASHBOARD, Can.ACT, Can.UPLOAD}),
    Role.KPPS: frozenset({Can.UPLOAD}),
}


@dataclass(frozen=True)
class Scope:
    role: str  # a Role, or "" for none
    region: str | None  # an area code; "" the nation; None nothing at all

    def covers(self, code: str) -> bool:
        """Whether an area (or the TPS of a row) lies in the region."""
        return self.region is not None and code.startswith(self.region)

    def may(self, what: Can) -> bool:
        return what in CAPABILITIES.get(self.role, ())

    def sees(self, code: str) -> bool:
        return self.covers(code)

    def acts_on(self, code: str) -> bool:
        return self.may(Can.ACT) and self.covers(code)

    def uploads_to(self, code: str) -> bool:
        return self.may(Can.UPLOAD) and self.covers(code)

    def manages(self, other: "Scope") -> bool:
        """Whether this user may manage a user of the other scope: an admin anyone; staff the
        users strictly below their region (never above or beside them)."""
        if self.role == Role.ADMIN:
            return True
        if not self.may(Can.MANAGE_USERS) or other.region is None or other.role == Role.ADMIN:
            return False
        return self.covers(other.region) and other.region != self.region

    @property
    def is_kpps(self) -> bool:
        return self.role == Role.KPPS


NOBODY = Scope(role="", region=None)


def users_managed_by(user) -> models.QuerySet:
    """The users this user may manage (Scope.manages, as a query over their profiles), whether
    active or not: an admin everyone; staff the users of a region strictly below their own who
    are not admins; anyone else nobody."""
    scope = scope_of(user)
    users = get_user_model().objects.all()
    if scope.role == Role.ADMIN:
        return users
    if not scope.may(Can.MANAGE_USERS) or scope.region is None:
        return users.none()
    below = users.filter(
        is_superuser=False,
        profile__region__code__startswith=scope.region,
        profile__role__in=[role for role in Role.values if role != Role.ADMIN],
    )
    return below.exclude(profile__region=scope.region) if scope.region else below


def scope_of(user) -> Scope:
    """The scope of a user (anonymous or inactive: nothing), read once per user object."""
    if user is None or not user.is_authenticated or not user.is_active:
        return NOBODY
    cached = getattr(user, "_scope", None)
    if cached is None:
        cached = _scope_read(user)
        user._scope = cached
    return cached


def _scope_read(user) -> Scope:
    if user.is_superuser:
        return Scope(role=Role.ADMIN, region="")
    if get_user_model().profile.is_cached(user):
        # Read with the user (select_related("user__profile"): the intake's token lookup).
        profile = getattr(user, "profile", None)
        found = (profile.role, profile.region_id) if profile is not None else None
    else:
        found = Profile.objects.filter(user=user).values_list("role", "region_id").first()
    if found is None or not found[0]:
        return NOBODY
    role, region = found
    if role == Role.ADMIN or (role == Role.STAFF and region is None):
        return Scope(role=role, region="")
    return Scope(role=role, region=region)


class ScopedQuerySet(models.QuerySet):
    """Rows that belong to an area: `scope_field` is the lookup of the row's area code."""

    scope_field: ClassVar[str]

    def visible_to(self, user):
        return self.within(scope_of(user).region)

    def actionable_by(self, user):
        scope = scope_of(user)
        return self.within(scope.region if scope.may(Can.ACT) else None)

    def within(self, region: str | None):
        """The rows in a region's subtree: None none, "" all."""
        if region is None:
            return self.none()
        if not region:
            return self
        return self.filter(**{f"{self.scope_field}__startswith": region})
