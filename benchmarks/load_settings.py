"""Settings of the gunicorn that benchmarks.public_load starts: the project's own, everything
from the environment as usual, with two trivial views added to the URLs (benchmarks.load_urls)."""

from sirekap_tracker.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.load_urls"
