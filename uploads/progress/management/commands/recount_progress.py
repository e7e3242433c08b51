from django.core.management.base import BaseCommand

from regions.models import Contest
from uploads.progress.models import COLUMNS
from uploads.progress.services import Drift, progress_recount


class Command(BaseCommand):
    help = (
        "Compares every area's progress counts with a fresh count of the uploads and reports the "
        "areas that drifted; --fix repairs them."
    )

    def add_arguments(self, parser):
        parser.add_argument("--fix", action="store_true", help="repair the counts that drifted")

    def handle(self, *args, fix: bool, **options):
        recount = progress_recount(fix=fix)
        contests = Contest.objects.in_bulk({drift.contest_id for drift in recount.drifts})
        for drift in recount.drifts:
            self.stdout.write(_describe(drift, contests.get(drift.contest_id)))
        drifted = len(recount.drifts)
        if not drifted:
            summary = f"no drift: {recount.areas} area counts match the uploads"
        elif recount.fixed:
            summary = f"{drifted} of {recount.areas} area counts drifted; repaired"
        else:
            summary = f"{drifted} of {recount.areas} area counts drifted; --fix repairs them"
        self.stdout.write(summary)


def _describe(drift: Drift, contest: Contest | None) -> str:
    which = f"{contest.kind} {contest.region_id}" if contest else f"contest {drift.contest_id}"
    differences = ", ".join(
        f"{column} {drift.counted[column]} counted, {drift.actual[column]} actual"
        for column in COLUMNS
        if drift.counted[column] != drift.actual[column]
    )
    return f"{which} {drift.area_code or 'national'}: {differences}"
