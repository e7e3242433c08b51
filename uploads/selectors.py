"""Reads of uploads shared by the poller and the pages."""

from dataclasses import dataclass

from django.db.models import Count, Q
from django.db.models.functions import Left

from regions.models import CODE_LENGTH
from uploads.models import PublicAreaProgress, Status, Upload


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
