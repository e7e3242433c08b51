"""WSGI entry point for gunicorn (production) and runserver."""

import os

from django.core.wsgi import get_wsgi_application

from sirekap_tracker.config import load_settings_or_exit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sirekap_tracker.settings")
# Settings only, not the services: a web process must boot while Redis or PostgreSQL is down
# (a worker recycled during an outage), since public pages are served from the snapshot and
# intake keeps answering; manage.py and Celery keep the one-line check of the services.
load_settings_or_exit(check_services=False)
application = get_wsgi_application()
