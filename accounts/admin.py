"""The admin's accounts pages. Users are managed by scope (accounts.scope.users_managed_by): an
admin manages everyone, KPU staff the users below their region, never above or beside them;
Django's own permissions play no part in it. Access events are history: read-only for all."""

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

from accounts.forms import OperatorAddForm, OperatorChangeForm
from accounts.invitations import invitation_link
from accounts.models import AccessEvent, ApiToken, Profile
from accounts.scope import Can, scope_of, users_managed_by
from accounts.services import operator_create, operator_update
from sirekap_tracker.admin import ReadOnlyAdmin

User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class OperatorAdmin(admin.ModelAdmin):
    list_display = ["username", "full_name", "role", "region", "is_active", "last_login"]
    list_filter = ["profile__role", "is_active"]
    search_fields = ["username", "first_name", "last_name", "email", "^profile__region__code"]
    list_select_related = ["profile"]
    ordering = ["username"]
    readonly_fields = ["last_login", "date_joined"]
    actions = ["invite"]

    # --- Who may do what: the scope, for every page and action of this admin.

    def get_queryset(self, request):
        return users_managed_by(request.user).select_related("profile")

    def has_module_permission(self, request) -> bool:
        return scope_of(request.user).may(Can.MANAGE_USERS)

    def has_view_permission(self, request, obj=None) -> bool:
        return self._manages(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._manages(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._manages(request, obj)

    def has_add_permission(self, request) -> bool:
        return scope_of(request.user).may(Can.MANAGE_USERS)

    def _manages(self, request, obj) -> bool:
        if not scope_of(request.user).may(Can.MANAGE_USERS):
            return False
        return obj is None or users_managed_by(request.user).filter(pk=obj.pk).exists()

    # --- The forms: role and region beside the account; no password (an invitation sets it).

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = OperatorChangeForm if obj is not None else OperatorAddForm
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"manager": scope_of(request.user)})

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": ["username", "email", "role", "region"]})]
        account = ["username", "first_name", "last_name", "email", "is_active"]
        return [
            (None, {"fields": account}),
            (_("Role and region"), {"fields": ["role", "region"]}),
            (_("Logins"), {"fields": ["last_login", "date_joined"]}),
        ]

    def save_form(self, request, form, change):
        if change:
            return super().save_form(request, form, change)
        # Made whole by the service (user, profile, admin-site flags), without a password.
        return operator_create(
            username=form.cleaned_data["username"],
            role=form.cleaned_data["role"],
            region_code=form.cleaned_data["region"],
            email=form.cleaned_data.get("email", ""),
        )

    def save_model(self, request, obj, form, change) -> None:
        if change:
            super().save_model(request, obj, form, change)
            operator_update(
                user=obj, role=form.cleaned_data["role"], region_code=form.cleaned_data["region"]
            )
        else:
            self._show_invitation(request, obj)

    def save_related(self, request, form, formsets, change) -> None:
        if change:
            super().save_related(request, form, formsets, change)

    @admin.action(description=_("Make a new invitation link"))
    def invite(self, request, queryset) -> None:
        for user in queryset:
            self._show_invitation(request, user)

    def _show_invitation(self, request, user) -> None:
        text = _(
            "Invitation for %(username)s (send it to them; it works once, and a password they "
            "set ends any earlier link): %(link)s"
        )
        values = {"username": user.get_username(), "link": invitation_link(user=user)}
        messages.info(request, text % values)

    # --- The list

    @admin.display(description=_("name"))
    def full_name(self, user) -> str:
        return user.get_full_name()

    @admin.display(description=_("role"), ordering="profile__role")
    def role(self, user) -> str:
        profile = _profile(user)
        return profile.get_role_display() if profile and profile.role else "-"

    @admin.display(description=_("region"), ordering="profile__region")
    def region(self, user) -> str:
        profile = _profile(user)
        return profile.region_id if profile and profile.region_id else "-"


def _profile(user) -> Profile | None:
    try:
        return user.profile
    except Profile.DoesNotExist:
        return None


@admin.register(AccessEvent)
class AccessEventAdmin(ReadOnlyAdmin):
    """Logins, failed logins, logouts, lockouts and refusals: to read, never to change (the
    database refuses it too)."""

    list_display = ["created_at", "kind", "username", "role", "ip", "path", "area_code"]
    list_filter = ["kind", "role"]
    search_fields = ["username", "^area_code", "path"]
    show_full_result_count = False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["user", "prefix", "created_at", "revoked_at"]
    readonly_fields = ["user", "key_hash", "prefix", "created_at"]
    search_fields = ["user__username", "prefix"]

    def has_add_permission(self, request) -> bool:
        # A key is shown once, when it is made: `manage.py api_token USERNAME` prints it. The
        # admin only lists tokens and revokes them (revoked_at).
        return False
