"""Reads of uploads shared by the poller and the pages."""

from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Left

from regions.models import CODE_LENGTH
from uploads.models import PublicAreaProgress, Status, Upload, UploadEvent


@dataclass(frozen=True)
class ChildCount:
    total: int
    published: int


def child_code_length(area_code: str) -> int:
    """The length of the codes one level below area_code ("" is the nation: provinsi codes)."""
    return min(length for length in CODE_LENGTH.values() if length > len(area_code))


def upload_counts_per_child(*, kind: str, area_code: str) -> dict[str, ChildCount]:
    """Our TPS and published TPS of a contest kind under each child area that has any.

    TPS are counted once each, so two contests of one kind over nested regions do not count
    a TPS twice: the figures compare with the public site's, which knows one file per kind.
    """
    one_tps = Count("tps_id", distinct=True)
    rows = (
        Upload.objects.filter(contest__kind=kind, tps__code__startswith=area_code)
        .annotate(child=Left("tps_id", child_code_length(area_code)))
        .values("child")
        .annotate(
            total=one_tps,
            published=Count("tps_id", distinct=True, filter=Q(status=Status.PUBLISHED)),
        )
        .order_by("child")
    )
    return {row["child"]: ChildCount(row["total"], row["published"]) for row in rows}


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
        .select_related("tps", "contest")
        .annotate(
            last_action=Subquery(last_event.values("action")[:1]),
            last_reason=Subquery(last_event.values("reason")[:1]),
            last_event_at=Subquery(last_event.values("created_at")[:1]),
        )
        .order_by("stuck_since", "tps_id")
    )
    return list(rows[:limit])
