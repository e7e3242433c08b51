"""ASGI entry point, for servers that speak ASGI."""

import os

from django.core.asgi import get_asgi_application

from sirekap_tracker.config import load_settings_or_exit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sirekap_tracker.settings")
# Settings only, not the services: a web process must boot while Redis or PostgreSQL is down
# (a worker recycled during an outage), since public pages are served from the snapshot and
# intake keeps answering; manage.py and Celery keep the one-line check of the services.
load_settings_or_exit(check_services=False)
application = get_asgi_application()
