"""Who a user is here: one role with a region (the scope of what they may see and do, decided
in accounts.scope), API tokens for upload clients, and the record of logins and refusals.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    """What a user does, highest first. A superuser is an admin whatever their profile says."""

    ADMIN = "admin", _("KPU admin")
    STAFF = "staff", _("KPU staff")
    PPK = "ppk", _("PPK operator")
    KPPS = "kpps", _("KPPS")


class Profile(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    role = models.CharField(_("role"), max_length=5, choices=Role.choices, blank=True)
    region = models.ForeignKey(
        "regions.Area",
        verbose_name=_("region"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        help_text=_("The user works on this area and everything below it; none: the nation."),
    )

    class Meta:
        verbose_name = _("profile")
        verbose_name_plural = _("profiles")

    def __str__(self) -> str:
        return f"{self.user} {self.role or '-'} {self.region_id or '-'}"


class ApiToken(models.Model):
    """Only a hash of the key is stored: a leaked database does not leak working tokens."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    key_hash = models.CharField(max_length=64, unique=True)
    # The first characters of the key, so a person can tell their tokens apart.
    prefix = models.CharField(max_length=8)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self) -> str:
        return f"{self.user} {self.prefix}…"


class AccessKind(models.TextChoices):
    LOGIN = "login", _("logged in")
    LOGIN_FAILED = "login_failed", _("login failed")
    LOGOUT = "logout", _("logged out")
    LOCKED_OUT = "locked_out", _("locked out")
    # A read out of scope answers 404, an action out of scope 403.
    NOT_VISIBLE = "not_visible", _("refused: outside the user's area")
    NOT_ALLOWED = "not_allowed", _("refused: action not allowed")


class AccessEvent(models.Model):
    """Append-only, like the upload events: who came in, who was turned away, from where."""

    kind = models.CharField(_("what"), max_length=12, choices=AccessKind.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    # The name typed at a failed login (there may be no such user).
    username = models.CharField(_("username"), max_length=150, blank=True)
    role = models.CharField(_("role"), max_length=5, choices=Role.choices, blank=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    path = models.CharField(_("path"), max_length=300, blank=True)
    # The area the refused request was about, for the audit's area filter.
    area_code = models.CharField(_("area"), max_length=13, db_collation="C", blank=True)
    created_at = models.DateTimeField(_("time"), auto_now_add=True)

    class Meta:
        verbose_name = _("access event")
        verbose_name_plural = _("access events")
        ordering = ["-id"]
        indexes = [models.Index(fields=["created_at"], name="access_time")]

    def __str__(self) -> str:
        return f"{self.kind} {self.username or self.user_id} {self.ip or '-'}"
