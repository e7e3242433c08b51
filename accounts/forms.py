"""Forms: the login's code, and the admin's user forms, whose roles and regions are those the
person managing may give (Scope.manages)."""

from django import forms
from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

from accounts.models import Profile, Role
from accounts.scope import NOBODY, Scope
from accounts.services import LEVEL_NAMES, ROLE_LEVELS, OperatorRefused, operator_region_check
from regions import codes


class CodeForm(forms.Form):
    code = forms.CharField(
        label=_("Code from your authenticator app"),
        max_length=10,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )


def roles_given_by(manager: Scope) -> list[str]:
    """The roles a manager may give someone: those with a level of region below their own."""
    return [
        role
        for role, levels in ROLE_LEVELS.items()
        if any(manager.manages(Scope(role=role, region=_below(manager, level))) for level in levels)
    ]


def _below(manager: Scope, level: int) -> str | None:
    """Some code of this level inside the manager's region ("" the nation), if there is one."""
    region = manager.region or ""
    if level == 0:
        return ""
    length = codes.LENGTH[level]
    return region.ljust(length, "0") if length > len(region) else None


class OperatorForm(forms.ModelForm):
    """A user's role and region beside their account. `manager` (the scope of whoever manages,
    set by the admin) limits both."""

    manager: Scope = NOBODY

    role = forms.ChoiceField(label=_("role"))
    region = forms.CharField(
        label=_("region"),
        required=False,
        max_length=13,
        help_text=_(
            "The KPU code of the area they work on: none for an admin or national staff, a "
            "provinsi or kabupaten/kota for staff, a kecamatan for a PPK operator, a TPS for KPPS."
        ),
    )

    class Meta:
        model = get_user_model()
        fields = ["username", "email"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        given = roles_given_by(self.manager)
        role_field = self.fields["role"]
        assert isinstance(role_field, forms.ChoiceField)
        role_field.choices = [(v, label) for v, label in Role.choices if v in given]
        if self.instance.pk is not None:
            profile = Profile.objects.filter(user=self.instance).first()
            role = Role.ADMIN if self.instance.is_superuser else (profile.role if profile else "")
            self.initial["role"] = role
            self.initial["region"] = profile.region_id if profile and profile.region_id else ""

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data
        role, region = cleaned.get("role"), cleaned.get("region", "").strip()
        if not role:
            return cleaned
        fits = (not region or codes.is_code(region)) and codes.level_of(region) in ROLE_LEVELS[role]
        if not fits:
            levels = " / ".join(str(LEVEL_NAMES[level]) for level in ROLE_LEVELS[role])
            wrong_level = _("A user with this role works on %(levels)s.")
            self._refuse(wrong_level % {"levels": levels}, "wrong_level")
            return cleaned
        try:
            operator_region_check(role=role, region_code=region)
        except OperatorRefused:
            self._refuse(_("No area has the code %(code)s.") % {"code": region}, "no_area")
            return cleaned
        if not self.manager.manages(Scope(role=role, region=region)):
            not_below = _("You may only give regions below your own (%(region)s).")
            self._refuse(not_below % {"region": self.manager.region or "-"}, "not_below")
        cleaned["region"] = region
        return cleaned

    def _refuse(self, message: str, code: str) -> None:
        self.add_error("region", forms.ValidationError(message, code=code))


class OperatorAddForm(OperatorForm):
    """A new user, made without a password: they set one with the invitation link shown next."""


class OperatorChangeForm(OperatorForm):
    class Meta(OperatorForm.Meta):
        fields = ["username", "first_name", "last_name", "email", "is_active"]
