#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sirekap_tracker.settings")
    from django.core.management import execute_from_command_line

    from sirekap_tracker.config import load_settings_or_exit

    load_settings_or_exit()
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
