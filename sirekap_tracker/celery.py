"""The Celery app. Its settings are the CELERY_* block of settings.py, each line commented there."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sirekap_tracker.settings")

app = Celery("sirekap_tracker", include=["sirekap_tracker.health"])
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_configure.connect
def _settings_or_exit(**kwargs) -> None:
    # Celery reads its configuration (our Django settings) while it parses its command line; load
    # them first ourselves, so that a bad or unreachable DATABASE_URL or REDIS_URL reads as one
    # line instead of a traceback or a worker reconnecting forever.
    from sirekap_tracker.config import load_settings_or_exit

    load_settings_or_exit(check_services=False)


@signals.worker_init.connect
@signals.beat_init.connect
def _services_or_exit(**kwargs) -> None:
    # Checked as a worker or beat starts rather than on every configure, so that a web process
    # sending a task during a database outage gets an error for that request, not an exit.
    from sirekap_tracker.config import load_settings_or_exit

    load_settings_or_exit(check_services=True)


def _add_worker_heartbeat() -> None:
    from sirekap_tracker.health import WorkerHeartbeat

    app.steps["worker"].add(WorkerHeartbeat)


_add_worker_heartbeat()
