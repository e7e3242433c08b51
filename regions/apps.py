from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RegionsConfig(AppConfig):
    """Areas from provinsi down to TPS, and the contests held over them."""

    name = "regions"
    verbose_name = _("Regions")
