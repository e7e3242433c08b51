"""WSGI entry point for gunicorn (production) and runserver."""

import os

from django.core.wsgi import get_wsgi_application

from sirekap_tracker.config import load_settings_or_exit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sirekap_tracker.settings")
load_settings_or_exit()
application = get_wsgi_application()
