from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    """Who may do what where: a user's region and the API tokens of upload clients."""

    name = "accounts"
    verbose_name = _("Accounts")
