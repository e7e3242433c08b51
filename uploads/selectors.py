"""Reads of uploads shared by the poller and the pages."""

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection
from django.db.models import Count, OuterRef, Subquery

from progress.selectors import Counts, progress_of_area
from regions.selectors import place_of_area
from uploads.models import PublicAreaProgress, Status, Upload, UploadEvent


def upload_counts_per_child(*, kind: str, area_code: str) -> dict[str, Counts]:
    """Our TPS and published TPS of a contest kind under each child area that has any, summed
    over the contests of the kind there, from the progress counts: a handful of index lookups
    at any level, never a count of the uploads below (the poller asks at every area it reads).
    """
    place = place_of_area(kind=kind, area_code=area_code)
    if place is None:
        return {}
    counts = progress_of_area(contest_ids=place.contest_ids, area_code=area_code)
    return {child.code: child for child in counts.children}


def upload_ids_unpublished(*, kind: str, tps_code: str) -> list[int]:
    """The uploads of a contest kind at one TPS that are not published yet."""
    rows = Upload.objects.filter(contest__kind=kind, tps_id=tps_code).exclude(
        status=Status.PUBLISHED
    )
    return list(rows.order_by("pk").values_list("pk", flat=True))


def public_progress_by_code(*, kind: str, codes: list[str]) -> dict[str, PublicAreaProgress]:
    """What the public site last said about these areas, by area code (absent: never read)."""
    rows = PublicAreaProgress.objects.filter(kind=kind, area_code__in=codes)
    return {row.area_code: row for row in rows}


def uploads_of_desa(*, contest_ids: Sequence[int], desa_code: str) -> list[Upload]:
    """The uploads of a desa's TPS (at most 999 per contest), each with its current document and
    that document's pages: two queries whatever the number of TPS."""
    rows = (
        Upload.objects.filter(contest_id__in=contest_ids, tps__code__startswith=desa_code)
        .select_related("tps", "document")
        .prefetch_related("document__pages")
        .order_by("tps_id", "contest_id")
    )
    return list(rows)


def uploads_stuck_under(*, contest_ids: Sequence[int], area_code: str, limit: int) -> list[Upload]:
    """The stuck uploads below an area, longest stuck first, at most `limit` of them, each with
    its last event's action, reason and time (last_action, last_reason, last_event_at). One query:
    the partial index on stuck rows keeps it small at national scale."""
    last_event = UploadEvent.objects.filter(upload=OuterRef("pk")).order_by("-id")
    rows = (
        Upload.objects.filter(
            contest_id__in=contest_ids, tps__code__startswith=area_code, stuck=True
        )
        .select_related("tps")
        .annotate(
            last_action=Subquery(last_event.values("action")[:1]),
            last_reason=Subquery(last_event.values("reason")[:1]),
            last_event_at=Subquery(last_event.values("created_at")[:1]),
        )
        .order_by("stuck_since", "tps_id")
    )
    return list(rows[:limit])


def uploads_stuck_by_reason() -> list[tuple[str, str, int]]:
    """(contest kind, stuck reason, uploads) for every stuck upload in the country. One query
    over the partial index of stuck rows: a few thousand rows on a bad night, not millions."""
    rows = (
        Upload.objects.filter(stuck=True)
        .values_list("contest__kind", "stuck_reason")
        .annotate(uploads=Count("pk"))
        .order_by("contest__kind", "stuck_reason")
    )
    return list(rows)


@dataclass(frozen=True)
class Waiting:
    """When the documents waiting longest to be sent were received (None: none waits)."""

    oldest_queued: datetime.datetime | None
    oldest_retrying: datetime.datetime | None


# Each the first entry of the partial index of waiting uploads (status, then queued_at).
_OLDEST_WAITING = """
    SELECT (SELECT min(queued_at) FROM uploads_upload WHERE status = 'queued'),
           (SELECT min(queued_at) FROM uploads_upload WHERE status = 'retrying')
"""


def uploads_waiting() -> Waiting:
    """The oldest queued upload (waiting for a worker) and the oldest retrying one (waiting out a
    backoff), by when their document came in: one statement, two index lookups."""
    with connection.cursor() as cursor:
        cursor.execute(_OLDEST_WAITING)
        return Waiting(*cursor.fetchone())
