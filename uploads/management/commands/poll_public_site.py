import signal
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from uploads import poller


class Stopped(Exception):
    """Ctrl-C during a poll: the walk stops at its next file."""


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
        # Ctrl-C only asks to stop, and the walk stops between two files: a KeyboardInterrupt
        # raised wherever the main thread happens to be (a query, a lock) could leave the
        # process waiting on a pool thread or a connection instead of exiting. A second Ctrl-C
        # interrupts at once.
        stop = threading.Event()

        def interrupted(signum, frame) -> None:
            if stop.is_set():
                raise KeyboardInterrupt
            stop.set()

        def heartbeat() -> None:
            if stop.is_set():
                raise Stopped

        signal.signal(signal.SIGINT, interrupted)
        try:
            while not stop.is_set():
                started = time.monotonic()
                self._run(contest, region, heartbeat)
                if once:
                    return
                stop.wait(max(0.0, settings.POLL_INTERVAL_SECONDS - (time.monotonic() - started)))
        except (Stopped, KeyboardInterrupt):
            pass
        self.stdout.write("poll: stopped")

    def _run(self, contest: str | None, region: str | None, heartbeat) -> None:
        try:
            summary = poller.poll(kind=contest, region=region, heartbeat=heartbeat)
        except poller.PollRefused as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"poll: {summary}")
