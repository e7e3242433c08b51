import time

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from simulator import kpps

# How long the simulator waits for the web app and the publication server to listen: under
# `make run` all processes start at once, and Django takes a few seconds to come up on a slow
# machine.
WAIT_SECONDS = 90


class Command(BaseCommand):
    help = (
        "Makes the demo's missing uploads arrive through the API over a few minutes, with a few "
        "Babulu TPS on a network that keeps failing (they end up stuck). For `make run`."
    )

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="the web app")
        parser.add_argument("--minutes", type=float, default=5.0)
        parser.add_argument("--unlucky", type=int, default=3, help="Babulu TPS that get stuck")
        parser.add_argument("--drops", type=int, default=40, help="failed deliveries for each")
        parser.add_argument("--seed", type=int, default=2024)
        parser.add_argument("--limit", type=int, default=None, help="send at most this many")
        parser.add_argument(
            "--stay", action="store_true", help="keep running when done (honcho stops all else)"
        )

    def handle(self, *args, url, minutes, unlucky, drops, seed, limit, stay, **options):
        if minutes <= 0:
            raise CommandError(f"--minutes: expected more than 0, got {minutes}")
        # Both must listen before the first request: the stand-in is told about the bad network
        # first, and the uploads go to the web app.
        _wait_for("the web app", f"{url}/livez")
        if settings.PUBLICATION_URL:
            _wait_for("the publication server (PUBLICATION_URL)", settings.PUBLICATION_URL)
        plan = kpps.plan_make(seed=seed, unlucky=unlucky, limit=limit)
        if plan.unlucky and settings.PUBLICATION_URL:
            kinds = {kind for _, kind in plan.uploads}
            kpps.bad_network_script(settings.PUBLICATION_URL, plan, kinds, drops)
        self.stdout.write(
            f"{len(plan.uploads)} uploads over {minutes:g} minutes to {url}; "
            f"bad network at TPS {', '.join(plan.unlucky) or '-'}"
        )
        self.stdout.flush()
        tokens = kpps.kpps_tokens({tps for tps, _ in plan.uploads})
        taken = kpps.uploads_run(url=url, tokens=tokens, plan=plan, minutes=minutes, seed=seed)
        self.stdout.write(f"done: {taken} of {len(plan.uploads)} uploads taken")
        self.stdout.flush()
        while stay:
            time.sleep(3600)


def _wait_for(what: str, url: str, seconds: float = WAIT_SECONDS) -> None:
    """Returns once url answers anything over HTTP; a CommandError naming what after seconds."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise CommandError(f"{what} at {url} did not answer within {seconds:g} s") from None
            time.sleep(0.3)
