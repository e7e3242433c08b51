"""Rebuilds the public snapshot now (public/snapshots.py), each contest kind in turn: what
changed, or with --all every entry there is, e.g. after regions were re-imported or a contest
opened."""

from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from public.services import snapshot_rebuild_all, snapshot_refresh_all

BUSY = "another refresh of {kinds} is running; try again in a few seconds"


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser) -> None:
        parser.add_argument("--all", action="store_true", help="rebuild every entry there is")

    def handle(self, *args, **options) -> None:
        results: dict[str, Any]
        said: Callable[[Any], str]
        if options["all"]:
            results = snapshot_rebuild_all()
            said = "rebuilt the entries of {} areas".format
        else:
            results = snapshot_refresh_all(budget_seconds=float("inf"))
            said = _refresh_said
        for kind, result in results.items():
            if result is not None:
                self.stdout.write(f"{kind}: {said(result)}")
        busy = [kind for kind, result in results.items() if result is None]
        if busy:
            raise CommandError(BUSY.format(kinds=", ".join(busy)))


def _refresh_said(refresh: Any) -> str:
    return (
        f"{refresh.changed} areas changed; rebuilt {refresh.entries} entries of "
        f"{refresh.rebuilt} areas in {refresh.seconds:.2f} s"
    )
