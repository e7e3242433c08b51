from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OperationsConfig(AppConfig):
    """Running it: /metrics for Prometheus, the system page for staff, a request's log line."""

    name = "operations"
    verbose_name = _("Operations")
