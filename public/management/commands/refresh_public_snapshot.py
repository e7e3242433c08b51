"""Rebuilds the public snapshot now (public/snapshots.py), each contest kind in turn: what
changed, or with --all every entry there is, e.g. after regions were re-imported or a contest
opened. With --build-down-to, before the night: builds what the public reads first of every
area down to that level, those entries not built yet (for the mirror's bucket, docs/deploy.md)."""

from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from public.services import snapshot_prebuild, snapshot_rebuild_all, snapshot_refresh_all
from regions import codes
from regions.selectors import contest_kinds_held

BUSY = "another refresh of {kinds} is running; try again in a few seconds"
LEVELS = {"provinsi": codes.PROVINSI, "kabupaten": codes.KABUPATEN, "kecamatan": codes.KECAMATAN}


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser) -> None:
        chosen = parser.add_mutually_exclusive_group()
        chosen.add_argument("--all", action="store_true", help="rebuild every entry there is")
        chosen.add_argument(
            "--build-down-to",
            choices=list(LEVELS),
            help="build the pages and files of every area from the nation down to this level "
            "that are not built yet",
        )

    def handle(self, *args, **options) -> None:
        results: dict[str, Any]
        said: Callable[[Any], str]
        if options["build_down_to"]:
            level = options["build_down_to"]
            results = {
                kind: snapshot_prebuild(kind, down_to=LEVELS[level])
                for kind, _name in contest_kinds_held("")
            }
            said = f"built {{}} entries of the areas down to the {level}".format
        elif options["all"]:
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
