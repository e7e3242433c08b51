from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ProgressConfig(AppConfig):
    """Exact counts per area and contest (TPS by status, stuck), kept off hot rows."""

    # Part of the uploads domain (the counts of its uploads per area), with the label it was
    # installed under: its tables and migrations keep their names (progress_*).
    name = "uploads.progress"
    label = "progress"
    verbose_name = _("Progress")
