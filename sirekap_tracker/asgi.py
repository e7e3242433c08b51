"""ASGI entry point, for servers that speak ASGI."""

import os

from django.core.asgi import get_asgi_application

from sirekap_tracker.config import load_settings_or_exit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sirekap_tracker.settings")
load_settings_or_exit()
application = get_asgi_application()
