from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class UploadsConfig(AppConfig):
    """Result documents per TPS and contest: intake, delivery, polling and progress."""

    name = "uploads"
    verbose_name = _("Uploads")
