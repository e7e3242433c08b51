from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ProgressConfig(AppConfig):
    """Exact counts per area and contest (TPS by status, stuck), kept off hot rows."""

    name = "progress"
    verbose_name = _("Progress")
