"""A contest opens over a region: the contest, and one expected upload (`missing`) per TPS
under it, counted in the same transaction, so that every total is exact from the start."""

import datetime
from dataclasses import dataclass

from django.db import connection, transaction

from regions.models import Contest, Level
from regions.services import contest_save
from uploads.progress.services import progress_count_new_uploads


@dataclass
class OpenedContest:
    contest: Contest
    created: bool
    new_uploads: int
    total_uploads: int


@transaction.atomic
def contest_open(
    *,
    kind: str,
    region_code: str,
    name: str | None = None,
    closes_at: datetime.datetime | None = None,
) -> OpenedContest:
    """Creates the contest if needed and one expected upload per TPS under its region.

    Running it again after new TPS were imported adds only theirs: the totals are exact from the
    start and stay so.
    """
    contest, created = contest_save(
        kind=kind, region_code=region_code, name=name, closes_at=closes_at
    )
    new_uploads = _create_expected_uploads(contest)
    total = contest.uploads.count()
    return OpenedContest(contest, created, new_uploads, total)


def _create_expected_uploads(contest: Contest) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO uploads_upload (contest_id, tps_id, status)
            SELECT %s, code, 'missing' FROM regions_area
            WHERE level = %s AND code LIKE %s
            ON CONFLICT (contest_id, tps_id) DO NOTHING
            """,
            [contest.pk, Level.TPS, contest.region_id + "%"],
        )
        created = cursor.rowcount
    # Counted in this transaction, so the per-area totals are exact from the start.
    progress_count_new_uploads(contest_id=contest.pk)
    return created
