"""Rebuilds the public snapshot now (public/snapshots.py), each contest kind in turn: what
changed, or with --all every entry there is, e.g. after regions were re-imported or a contest
opened."""

from django.core.management.base import BaseCommand, CommandError

from public.services import snapshot_rebuild_all, snapshot_refresh_all

BUSY = "another refresh of {kinds} is running; try again in a few seconds"


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser) -> None:
        parser.add_argument("--all", action="store_true", help="rebuild every entry there is")

    def handle(self, *args, **options) -> None:
        busy = self._rebuild_all() if options["all"] else self._refresh()
        if busy:
            raise CommandError(BUSY.format(kinds=", ".join(busy)))

    def _rebuild_all(self) -> list[str]:
        rebuilt = snapshot_rebuild_all()
        for kind, areas in rebuilt.items():
            if areas is not None:
                self.stdout.write(f"{kind}: rebuilt the entries of {areas} areas")
        return [kind for kind, areas in rebuilt.items() if areas is None]

    def _refresh(self) -> list[str]:
        refreshed = snapshot_refresh_all(budget_seconds=float("inf"))
        for kind, refresh in refreshed.items():
            if refresh is not None:
                self.stdout.write(
                    f"{kind}: {refresh.changed} areas changed; rebuilt {refresh.entries} "
                    f"entries of {refresh.rebuilt} areas in {refresh.seconds:.2f} s"
                )
        return [kind for kind, refresh in refreshed.items() if refresh is None]
