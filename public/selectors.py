"""What anyone may read: the open data (our counts in the KPU's public JSON, Pilkada shape, and as
CSV) and the public progress pages.

Reads and builders are apart. The reads (`public_page`, `progress_board`, `progress_tps`)
query, a fixed number of times whatever the area; the builders
(`hhcw_area`, `hhcw_tps`, `wilayah_list`, `progress_csv`, `json_bytes`, `hhcw_etag`,
`bytes_etag`) are pure functions of what a read returned: the public snapshot (public/entries.py)
builds the very bytes the views answer from them.
Format and paths: docs/api.md; the KPU's own: docs/kpu-format.md.
"""

import csv
import hashlib
import io
import json
from dataclasses import dataclass, replace
from datetime import datetime

from django.db.models import F
from django.urls import reverse

from progress.selectors import STUCK_LIST_LIMIT, AreaCounts, Counts, CountsBoard, progress_of_area
from regions.models import CODE_LENGTH, LEVEL_OF_LENGTH, Level
from regions.selectors import Place, place_of_area
from regions.zones import WIB
from uploads.documents import EXTENSION
from uploads.models import Page, Status, StuckReason, Upload
from uploads.selectors import (
    SiteFigure,
    StuckTps,
    site_figure,
    uploads_of_desa,
    uploads_stuck_under,
)

# The KPU marks re-votes (pemungutan suara ulang) here; we track regular voting only.
PSU = "Reguler"
TPS_CODE_LENGTH = CODE_LENGTH[Level.TPS]

# The statuses the open data speaks of. `sending` (a worker holding a queued upload for the
# seconds of one delivery attempt) is counted as `queued`: both mean "received here, not yet
# accepted by the publication server", and a column that flickers for seconds tells a reader
# nothing. So the counts of a row always add up to its total.
PUBLIC_STATUS = {status: status for status in Status.values} | {Status.SENDING: Status.QUEUED}
CSV_HEADER = (
    "kode",
    "nama",
    "total",
    "published",
    "persen",
    "delivered",
    "queued",
    "retrying",
    "rejected",
    "missing",
    "stuck",
)


# --- Reads


def _place_and_upload_of_tps(kind: str, tps_code: str) -> tuple[Place, Upload] | None:
    """The TPS's desa (as a place) and its upload of the kind. Where two contests of one kind
    cover the TPS (Pemilu contests opened over nested regions), the first one opened counts:
    the KPU keeps one file per kind and TPS."""
    if len(tps_code) != TPS_CODE_LENGTH:
        return None
    place = place_of_area(kind=kind, area_code=tps_code[: CODE_LENGTH[Level.DESA]])
    if place is None:
        return None
    uploads = uploads_of_desa(contest_ids=place.contest_ids, desa_code=tps_code)
    upload = min(uploads, key=lambda upload: upload.contest_id, default=None)
    return None if upload is None else (place, upload)


def public_page(*, pk: int) -> Page | None:
    """A page anyone may see: of the current document of a published upload. One query."""
    rows = Page.objects.select_related("document__upload").filter(
        pk=pk,
        document__upload__status=Status.PUBLISHED,
        document__upload__document=F("document"),
    )
    return rows.first()


# --- Builders: pure functions of what the reads returned.


def hhcw_area(counts: AreaCounts, *, ts: datetime) -> dict:
    """The hhcw file of an area (or the nation), as the KPU's Pilkada files are, plus ours under
    "tracker". ts: when the file is built."""
    area = counts.area
    return {
        "mode": "hhcw",
        "tungsura": {
            "chart": {"progres": _progres(area)},
            "table": {
                child.code: {"psu": PSU, "progres": _progres(child), "status_progress": True}
                for child in counts.children
            },
        },
        "psu": PSU,
        "progres": {"total": area.total, "progres": area.published},
        "ts": wib_text(ts),
        "tracker": {
            "kode": area.code or None,
            "nama": area.name or None,
            "tingkat": _level(area.code),
            **_status_counts(area),
            "table": {
                child.code: {"nama": child.name, **_status_counts(child)}
                for child in counts.children
            },
        },
    }


def hhcw_tps(row: "TpsRow", *, base_url: str, ts: datetime) -> dict:
    """The hhcw file of one TPS, as the KPU's Pilkada files are (no vote numbers), plus ours
    under "tracker". row: of `progress_tps`, or of each TPS of a desa's board. base_url: the
    scheme and host the page URLs start with ("https://example.org"). ts: when the file is
    built."""
    published = row.published
    images = [base_url + page.url for page in row.pages] or list(row.site_images)
    return {
        "mode": "hhcw",
        "tungsura": {"chart": {}, "administrasi": None} if published else None,
        "images": images,
        "psu": PSU,
        "ts": wib_text(ts),
        "status_suara": published,
        "status_adm": published,
        "tracker": {
            "kode": row.code,
            "nama": row.name,
            "status": row.status,
            "stuck": row.stuck,
            "stuck_reason": row.stuck_reason or None,
            "status_since": _iso(row.status_since),
            "delivered_at": _iso(row.delivered_at),
            "published_at": _iso(row.published_at),
            "sha256": row.sha256 or None,
            "pages": [
                {
                    "url": base_url + page.url,
                    "sha256": page.sha256,
                    "size": page.size,
                    "type": page.content_type,
                }
                for page in row.pages
            ],
        },
    }


def page_url(page: Page, *, base_url: str) -> str:
    """Where anyone reads a published page (public.views.page)."""
    name = f"{page.pk}.{EXTENSION[page.content_type]}"
    return base_url + reverse("public:page", kwargs={"name": name})


def wilayah_list(counts: AreaCounts) -> list[dict]:
    """The children of an area as the KPU's region lists give them. We know no KPU internal id:
    `id` is the code as an integer (at most 13 digits, exact in any JSON reader)."""
    return [
        {
            "nama": child.name,
            "id": int(child.code),
            "kode": child.code,
            "tingkat": _level(child.code),
        }
        for child in counts.children
    ]


def progress_csv(counts: AreaCounts) -> bytes:
    """One row per child (CSV_HEADER), UTF-8 without BOM, CRLF line ends (RFC 4180)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for child in counts.children:
        row = _status_counts(child)
        percent = child.percent
        writer.writerow(
            [
                child.code,
                child.name,
                row["total"],
                row["published"],
                "" if percent is None else f"{percent:.2f}",
                *(row[column] for column in CSV_HEADER[5:]),
            ]
        )
    return out.getvalue().encode()


def json_bytes(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def hhcw_etag(value: dict) -> str:
    """A weak validator of an hhcw file: its data without `ts`, the time it was built, so that
    a file built again from unchanged data still answers 304."""
    return "W/" + bytes_etag(json_bytes({**value, "ts": None}))


def bytes_etag(body: bytes) -> str:
    return f'"{hashlib.sha256(body).hexdigest()[:32]}"'


def wib_text(moment: datetime) -> str:
    """Local time in WIB as the KPU writes `ts`: "2024-11-28 06:00:00"."""
    return moment.astimezone(WIB.info).strftime("%Y-%m-%d %H:%M:%S")


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(WIB.info).isoformat()


def _progres(counts: Counts) -> dict:
    percent = counts.percent
    return {
        "total": counts.total,
        "persen": None if percent is None else float(percent),
        "progres": counts.published,
    }


def _status_counts(counts: Counts) -> dict[str, int]:
    """The counts in the order of CSV_HEADER, `sending` counted as `queued`."""
    return {
        "total": counts.total,
        "published": counts.published,
        "delivered": counts.delivered,
        "queued": counts.queued + counts.sending,
        "retrying": counts.retrying,
        "rejected": counts.rejected,
        "missing": counts.missing,
        "stuck": counts.stuck,
    }


def _level(code: str) -> int:
    """The KPU's tingkat: 1 provinsi ... 5 TPS; 0 for the nation."""
    return int(LEVEL_OF_LENGTH.get(len(code), 0))


# --- Pages: what a public progress page shows. Besides the place (areas and contests, public by
# nature) only plain values, no upload or document instance, so that nothing a template is handed
# can lead to an operator, a note, an event or a token, and a snapshot layer can keep the boards.

# The counts a page lists, as the open data gives them (`sending` counted as `queued`).
PAGE_STATUSES = ("published", "delivered", "queued", "retrying", "rejected", "missing")


@dataclass(frozen=True)
class PageImage:
    """A page of a published document, where anyone reads it (/api/dokumen/...)."""

    number: int
    url: str
    sha256: str
    size: int
    content_type: str

    @property
    def is_image(self) -> bool:
        return self.content_type != "application/pdf"


@dataclass(frozen=True)
class TpsRow:
    """One TPS of a contest kind as the public sees it."""

    code: str
    name: str
    status: str  # as in the open data: `sending` reads `queued`
    status_since: datetime
    since: datetime  # Upload.phase_since: what a page shows as "since"
    stuck: bool
    stuck_reason: str  # a StuckReason; "" when not stuck
    stuck_since: datetime | None
    trouble_since: datetime | None  # Upload.trouble_since, when stuck
    delivered_at: datetime | None
    published_at: datetime | None
    sha256: str  # of the current document; "" before one arrived
    pages: tuple[PageImage, ...]  # once published
    site_images: tuple[str, ...]  # the public site's own, for a TPS published without us

    @property
    def status_label(self) -> str:
        return Status(self.status).label

    @property
    def stuck_label(self) -> str:
        return _stuck_label(self.stuck_reason)

    @property
    def published(self) -> bool:
        return self.status == Status.PUBLISHED


@dataclass(frozen=True)
class AreaBoard(CountsBoard):
    """Everything a public area page shows."""

    place: Place
    counts: AreaCounts
    site: SiteFigure | None
    stuck: list[StuckTps]  # the longest stuck first, at most STUCK_LIST_LIMIT
    tps: list[TpsRow]  # at a desa

    @property
    def site_children(self) -> dict[str, int]:
        return self.site.children if self.site else {}

    @property
    def by_status(self) -> list[tuple[str, str, int]]:
        counts = _status_counts(self.area)
        return [(status, Status(status).label, counts[status]) for status in PAGE_STATUSES]


@dataclass(frozen=True)
class TpsBoard:
    """Everything a public TPS page shows: the TPS, and its desa as the place above it."""

    place: Place
    tps: TpsRow

    @property
    def complete(self) -> bool:
        return self.tps.published


def progress_board(*, kind: str, area_code: str, lists: bool = True) -> AreaBoard | None:
    """An area's public page ("" the nation, down to a desa), or None when the area is unknown,
    a TPS, or in no contest of the kind. Five queries (four for the nation, seven at a desa).
    Without lists (the timeline part), only the counts: no site figure, stuck list or TPS."""
    place = place_of_area(kind=kind, area_code=area_code)
    if place is None:
        return None
    ids = place.contest_ids
    counts = progress_of_area(contest_ids=ids, area_code=area_code)
    if not lists:
        return AreaBoard(place=place, counts=counts, site=None, stuck=[], tps=[])
    return AreaBoard(
        place=place,
        counts=counts,
        site=site_figure(kind=kind, area_code=area_code),
        stuck=_stuck_under(ids, area_code),
        tps=_tps_rows(ids, area_code) if place.is_desa else [],
    )


def progress_tps(*, kind: str, tps_code: str) -> TpsBoard | None:
    """A TPS's public page, or None when no contest of the kind covers it. Four queries."""
    found = _place_and_upload_of_tps(kind, tps_code)
    if found is None:
        return None
    place, upload = found
    return TpsBoard(place, _tps_row(upload))


def _stuck_under(contest_ids: list[int], area_code: str) -> list[StuckTps]:
    """The stuck TPS below an area, in trouble longest first, without their events: what
    operators write there is not for the public."""
    rows = uploads_stuck_under(contest_ids=contest_ids, area_code=area_code, limit=STUCK_LIST_LIMIT)
    return [replace(row, status=PUBLIC_STATUS[row.status]) for row in rows]


def _tps_rows(contest_ids: list[int], desa_code: str) -> list[TpsRow]:
    """A desa's TPS, one row each (the first contest opened, as `progress_tps`). Two queries."""
    first: dict[str, Upload] = {}
    for upload in uploads_of_desa(contest_ids=contest_ids, desa_code=desa_code):
        first.setdefault(upload.tps_id, upload)
    return [_tps_row(upload) for upload in first.values()]


def _tps_row(upload: Upload) -> TpsRow:
    """upload: with tps, document and document.pages loaded (uploads_of_desa)."""
    published = upload.status == Status.PUBLISHED
    document = upload.document
    pages = list(document.pages.all()) if document is not None and published else []
    site_images = upload.public_images if published and not pages else None
    return TpsRow(
        code=upload.tps_id,
        name=upload.tps.name,
        status=PUBLIC_STATUS[upload.status],
        status_since=upload.status_since,
        since=upload.phase_since,
        stuck=upload.stuck,
        stuck_reason=upload.stuck_reason,
        stuck_since=upload.stuck_since,
        trouble_since=upload.trouble_since if upload.stuck else None,
        delivered_at=upload.delivered_at,
        published_at=upload.published_at,
        sha256=document.sha256 if document is not None else "",
        pages=tuple(
            PageImage(
                page.number, page_url(page, base_url=""), page.sha256, page.size, page.content_type
            )
            for page in pages
        ),
        site_images=tuple(url for url in site_images or [] if isinstance(url, str)),
    )


def _stuck_label(reason: str) -> str:
    return StuckReason(reason).label if reason else ""
