import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from regions.models import ContestKind
from uploads.services.contests import contest_open


def aware_datetime(text: str) -> datetime.datetime:
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(
            f"--closes-at: {text!r} is not a date and time like 2024-11-27T13:00"
        ) from None
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


class Command(BaseCommand):
    help = (
        "Opens a contest over a region: one expected upload per TPS under it (again: only new TPS)."
    )

    def add_arguments(self, parser):
        parser.add_argument("contest", choices=ContestKind.values)
        parser.add_argument("--region", required=True, help="KPU code of the area it covers")
        parser.add_argument("--name", help="e.g. 'Pemilihan Bupati Penajam Paser Utara 2024'")
        parser.add_argument("--closes-at", help="when polls close, ISO 8601; local time if no zone")

    def handle(self, *args, contest: str, region: str, name, closes_at, **options):
        closes = aware_datetime(closes_at) if closes_at else None
        try:
            opened = contest_open(kind=contest, region_code=region, name=name, closes_at=closes)
        except ValueError as error:
            raise CommandError(str(error)) from None
        verb = "opened" if opened.created else "already open:"
        self.stdout.write(
            f"{verb} {contest} over {region} ({opened.contest.name}); "
            f"{opened.new_uploads} new expected uploads, {opened.total_uploads} in all"
        )
