from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SimulatorConfig(AppConfig):
    """Stand-ins for the world outside the system (the KPU's publication server), for the demo,
    the tests and the benchmarks. Nothing in production imports it."""

    name = "simulator"
    verbose_name = _("Simulator")
