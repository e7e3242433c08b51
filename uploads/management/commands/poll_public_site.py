import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from uploads import poller


class Command(BaseCommand):
    help = (
        "Reads the public site at SIREKAP_DATA_URL and marks uploads published where their TPS "
        "lists images. Runs every POLL_INTERVAL_SECONDS until Ctrl-C, or once with --once."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="one run, then exit")
        parser.add_argument("--contest", help="only this contest kind, e.g. pkwkk")
        parser.add_argument("--region", help="only this area (KPU code) inside a contest's region")

    def handle(self, *args, once: bool, contest: str | None, region: str | None, **options):
        try:
            while True:
                started = time.monotonic()
                self._run(contest, region)
                if once:
                    return
                elapsed = time.monotonic() - started
                time.sleep(max(0.0, settings.POLL_INTERVAL_SECONDS - elapsed))
        except KeyboardInterrupt:
            self.stdout.write("poll: stopped")

    def _run(self, contest: str | None, region: str | None) -> None:
        try:
            summary = poller.poll(kind=contest, region=region)
        except poller.PollRefused as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"poll: {summary}")
