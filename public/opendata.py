"""The open data: our counts in the KPU's public JSON (Pilkada shape, docs/kpu-format.md) and as
CSV, built by pure functions from what public.selectors read, and the plain shapes the public
pages and files share (TpsRow, PageImage). The public snapshot (public/entries.py) builds the
very bytes the views answer from them. Our paths and fields: docs/api.md.
"""

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from datetime import datetime

from django.urls import reverse

from regions import codes
from regions.selectors import ListedCandidate
from regions.zones import WIB
from uploads.documents import EXTENSION
from uploads.kpu import PSU, ts_text
from uploads.models import Page, Status
from uploads.progress.selectors import AreaCounts, Counts
from uploads.selectors import StatusLabels

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
class TpsRow(StatusLabels):
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
    def published(self) -> bool:
        return self.status == Status.PUBLISHED


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
        "ts": ts_text(ts),
        "tracker": {
            "kode": area.code or None,
            "nama": area.name or None,
            "tingkat": _level(area.code),
            **public_counts(area),
            "table": {
                child.code: {"nama": child.name, **public_counts(child)}
                for child in counts.children
            },
        },
    }


def hhcw_tps(row: TpsRow, *, base_url: str, ts: datetime) -> dict:
    """The hhcw file of one TPS, as the KPU's Pilkada files are (no vote numbers), plus ours
    under "tracker". row: of `public_tps_page`, or of each TPS of a desa's page_data. base_url: the
    scheme and host the page URLs start with ("https://example.org"). ts: when the file is
    built."""
    published = row.published
    images = [base_url + page.url for page in row.pages] or list(row.site_images)
    return {
        "mode": "hhcw",
        "tungsura": {"chart": {}, "administrasi": None} if published else None,
        "images": images,
        "psu": PSU,
        "ts": ts_text(ts),
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


def paslon_file(candidates: list[ListedCandidate]) -> dict:
    """The candidates of a contest kind as the KPU's pilkada/paslon/<kind>.json: by area code,
    then by candidate id, in the order given (candidates_of_kind: by area, then ballot number).
    An open contest kind without candidates imported yet is `{}`: the KPU's clients stop when
    the file is missing, and read an empty list as "nobody to show" (docs/api.md)."""
    areas: dict[str, dict] = {}
    times: dict[datetime, str] = {}  # most of a list shares a few times
    for candidate in candidates:
        moment = candidate.listed_at
        areas.setdefault(candidate.area_code, {})[candidate.kpu_id] = {
            "nama": candidate.name,
            "nomor_urut": candidate.number,
            "warna": candidate.colour,
            "ts": times.get(moment) or times.setdefault(moment, ts_text(moment)),
        }
    return areas


def page_url(page: Page, *, base_url: str) -> str:
    """Where anyone reads a published page (public.views.document_page)."""
    name = f"{page.pk}.{EXTENSION[page.content_type]}"
    return base_url + reverse("public:document-page", kwargs={"name": name})


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
        row = public_counts(child)
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


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(WIB.info).isoformat()


def _progres(counts: Counts) -> dict:
    percent = counts.percent
    return {
        "total": counts.total,
        "persen": None if percent is None else float(percent),
        "progres": counts.published,
    }


def public_counts(counts: Counts) -> dict[str, int]:
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
    return codes.level_of(code)
