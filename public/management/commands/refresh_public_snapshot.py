"""Rebuilds the public snapshot now (public/snapshots.py): what changed, or with --all every
entry there is, e.g. after regions were re-imported or a contest opened."""

from django.core.management.base import BaseCommand, CommandError

from public.services import snapshot_rebuild_all, snapshot_refresh

BUSY = "another refresh is running; try again in a few seconds"


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser) -> None:
        parser.add_argument("--all", action="store_true", help="rebuild every entry there is")

    def handle(self, *args, **options) -> None:
        if options["all"]:
            areas = snapshot_rebuild_all()
            if areas is None:
                raise CommandError(BUSY)
            self.stdout.write(f"rebuilt the entries of {areas} areas")
            return
        refresh = snapshot_refresh(budget_seconds=float("inf"))
        if refresh is None:
            raise CommandError(BUSY)
        self.stdout.write(
            f"{refresh.changed} areas changed; rebuilt {refresh.entries} entries of "
            f"{refresh.rebuilt} areas in {refresh.seconds:.2f} s"
        )
