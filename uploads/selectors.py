"""Reads of uploads shared by the poller and the pages."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Count, F, Q

from uploads.kpu import ts_time
from uploads.models import (
    Action,
    PublicAreaProgress,
    Status,
    StuckReason,
    TusDocument,
    Upload,
)
from uploads.progress.selectors import Counts, SiteFigure, progress_of_children


def upload_counts_per_child(
    *, kind: str, area_codes: Sequence[str]
) -> dict[str, dict[str, Counts]]:
    """Our TPS and published TPS of a contest kind under each child area that has any, summed
    over the contests of the kind there, for each of these areas (all of one level): from the
    progress counts, one statement for them all, never a count of the uploads below a desa (the
    poller asks at every area it reads).
    """
    counts = progress_of_children(kind=kind, area_codes=area_codes)
    return {code: {child.code: child for child in children} for code, children in counts.items()}


def upload_ids_unpublished(*, kind: str, images: dict[str, list[str]]) -> dict[str, list[int]]:
    """Per TPS (the keys of `images`), the uploads of a contest kind there that are not published
    yet, leaving out those the site shows these very images for already: a published document
    replaced since, whose old pages the site still shows until it publishes the new ones. One
    query for them all."""
    rows = (
        Upload.objects.filter(contest__kind=kind, tps_id__in=list(images))
        .exclude(status=Status.PUBLISHED)
        .order_by("pk")
        .values_list("pk", "tps_id", "public_images")
    )
    unpublished: dict[str, list[int]] = {code: [] for code in images}
    for pk, tps, shown in rows:
        if shown != images[tps]:
            unpublished[tps].append(pk)
    return unpublished


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


class StatusLabels:
    """What a row's `status` and `stuck_reason` read as, in the active language."""

    status: str
    stuck_reason: str

    @property
    def status_label(self) -> str:
        return str(Status(self.status).label)

    @property
    def stuck_label(self) -> str:
        return str(StuckReason(self.stuck_reason).label) if self.stuck_reason else ""


# Action.values builds its list at each call; a stuck list asks once a row.
_ACTIONS = frozenset(Action.values)


@dataclass(frozen=True)
class StuckTps(StatusLabels):
    """A stuck TPS as the pages list it: where it is and since when it is in trouble. The last
    event is read for staff pages only; the public never sees what an operator wrote."""

    code: str
    name: str
    desa: str
    kecamatan: str
    status: str
    stuck_reason: str  # a StuckReason
    trouble_since: datetime  # Upload.trouble_since
    last_action: str = ""  # an Action; "" when events were not read
    last_reason: str = ""
    last_event_at: datetime | None = None

    @property
    def last_action_label(self) -> str:
        return str(Action(self.last_action).label) if self.last_action in _ACTIONS else ""


# Upload.trouble_since in SQL, over the table named upload.
_TROUBLE_SINCE_SQL = f"""coalesce(upload.failing_since,
    CASE WHEN upload.status = '{Status.DELIVERED.value}'
         THEN coalesce(upload.delivered_at, upload.status_since)
         ELSE coalesce(upload.stuck_since, upload.status_since) END)"""
# The stuck TPS of many areas in one statement: for each area, a range of the partial index of
# stuck uploads by (contest, TPS) (codes are digits: in the C collation, the codes' own, every
# code under an area sorts from the area's code to before its code followed by ":", the
# character after "9"). The few listed per area are picked before their places are joined: a
# national page must not join the names of every stuck TPS in the country (thousands on a bad
# night) to show 25. With _LAST_EVENT, each listed upload's last event too, for staff pages.
_STUCK_UNDER_AREAS = f"""
    SELECT area.code, stuck.tps_id, tps.name, coalesce(desa.name, ''),
           coalesce(kecamatan.name, ''), stuck.status, stuck.stuck_reason, stuck.trouble_since
           {{event_columns}}
    FROM unnest(%(areas)s::text[]) AS area(code)
    CROSS JOIN LATERAL (
        SELECT upload.id, upload.tps_id, upload.status, upload.stuck_reason,
               {_TROUBLE_SINCE_SQL} AS trouble_since
        FROM uploads_upload upload
        WHERE upload.stuck AND upload.contest_id = ANY(%(contests)s)
              AND upload.tps_id >= area.code COLLATE "C"
              AND upload.tps_id < (area.code || ':') COLLATE "C"
        ORDER BY trouble_since, upload.tps_id
        LIMIT %(limit)s
    ) stuck
    JOIN regions_area tps ON tps.code = stuck.tps_id
    LEFT JOIN regions_area desa ON desa.code = tps.parent_id
    LEFT JOIN regions_area kecamatan ON kecamatan.code = desa.parent_id
    {{event_join}}
    ORDER BY area.code, stuck.trouble_since, stuck.tps_id
"""
# The last event of a listed upload: one entry of the index of its history (upload, id).
_LAST_EVENT = {
    "event_columns": ", coalesce(event.action, ''), coalesce(event.reason, ''), event.created_at",
    "event_join": """LEFT JOIN LATERAL (
        SELECT action, reason, created_at FROM uploads_uploadevent
        WHERE upload_id = stuck.id ORDER BY id DESC LIMIT 1
    ) event ON true""",
}
_NO_EVENT = {"event_columns": "", "event_join": ""}


def uploads_stuck_under(
    *, contest_ids: Sequence[int], area_code: str, limit: int, events: bool = False
) -> list[StuckTps]:
    """The stuck TPS below an area, in trouble longest first, at most `limit` of them, with
    their desa and kecamatan, and with events, the last event's action, reason and time. One
    statement (uploads_stuck_under_areas)."""
    return uploads_stuck_under_areas(
        contest_ids=contest_ids, area_codes=[area_code], limit=limit, events=events
    )[area_code]


def uploads_stuck_under_areas(
    *, contest_ids: Sequence[int], area_codes: list[str], limit: int, events: bool = False
) -> dict[str, list[StuckTps]]:
    """uploads_stuck_under of many areas at once, by area code: the stuck TPS of the contests
    below each area, in trouble longest first, at most `limit` each. One statement.
    contest_ids: those of every area's contest area (a contest of another area's region has no
    upload below this one)."""
    params: dict[str, Any] = {"areas": area_codes, "contests": list(contest_ids), "limit": limit}
    statement = _STUCK_UNDER_AREAS.format(**(_LAST_EVENT if events else _NO_EVENT))
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        rows = cursor.fetchall()
    stuck: dict[str, list[StuckTps]] = {code: [] for code in area_codes}
    for code, *row in rows:
        stuck[code].append(StuckTps(*row))
    return stuck


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

    oldest_queued: datetime | None
    oldest_retrying: datetime | None


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


def site_figure(*, kind: str, area_code: str) -> SiteFigure | None:
    """The public site's figure of an area as the poller last read it, or None. One query."""
    row = PublicAreaProgress.objects.filter(kind=kind, area_code=area_code).first()
    return None if row is None else _site_figure(row)


def site_figures(*, kind: str, area_codes: list[str]) -> dict[str, SiteFigure]:
    """site_figure of many areas at once, by code (absent: never read). One query."""
    rows = public_progress_by_code(kind=kind, codes=area_codes)
    return {code: _site_figure(row) for code, row in rows.items()}


def _site_figure(row: PublicAreaProgress) -> SiteFigure:
    return SiteFigure(row.published, row.total, ts_time(row.site_ts), row.children)


def upload_with_pages(*, kind: str, tps_code: str) -> Upload | None:
    """The upload of a contest kind at a TPS, with its current document's pages."""
    return (
        Upload.objects.filter(tps_id=tps_code, contest__kind=kind)
        .select_related("contest", "taken_by", "document")
        .prefetch_related("document__pages")
        .first()
    )


def tus_refusal_last(*, upload_id: int) -> TusDocument | None:
    """The document sent over tus for an upload that was refused last, unless it was taken in
    after its refusal."""
    return (
        TusDocument.objects.filter(upload_id=upload_id, refused_at__isnull=False)
        .filter(Q(taken_at__isnull=True) | Q(taken_at__lt=F("refused_at")))
        .order_by("-refused_at")
        .first()
    )
