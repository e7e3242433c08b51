"""What the public site shows: an upload it lists is published, and what it said of an area is
kept beside our own counts (PublicAreaProgress, also the poller's memory)."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.db.models import Case, F, Value, When
from django.utils import timezone

from uploads.kpu import AreaFigures
from uploads.models import Action, PublicAreaProgress, Source, Status
from uploads.services.transitions import Move, upload_transition_many

# Published without a document of ours (the KPPS used the Sirekap app): the source is the public
# site.
_SOURCE_OF_PUBLISHED = Case(
    When(document__isnull=True, then=Value(Source.PUBLIC_SITE)), default=F("source")
)


def upload_mark_published(*, upload_id: int, images: list[str]) -> bool:
    """The public site lists the document: published, whichever way it got there. If it never
    came through here, the source is the public site."""
    return upload_mark_published_many(images={upload_id: images}) == 1


def upload_mark_published_many(*, images: Mapping[int, list[str]]) -> int:
    """upload_mark_published of each upload in `images` (the images the site lists for it), in
    one statement; each unpublished one moves with its own event. Returns how many moved."""
    each = {"public_images": list(images.values())}
    return len(upload_transition_many(upload_ids=list(images), each=each, **publishing()))


def publishing() -> Move:
    """What marking published does to an upload, but its images: the arguments of
    upload_transition (and of upload_transition_many)."""
    return Move(
        expected=Status.UNPUBLISHED,
        new=Status.PUBLISHED,
        action=Action.PUBLISHED,
        source=Source.PUBLIC_SITE,
        changes={
            "published_at": timezone.now(),
            "stuck": False,
            "stuck_reason": "",
            "stuck_since": None,
            "stuck_note": "",
            "lease_token": None,
            "lease_expires_at": None,
            "next_attempt_at": None,
            "failing_since": None,
            "source": _SOURCE_OF_PUBLISHED,
        },
    )


@dataclass(frozen=True)
class AreaRead:
    """What the site said about one area in one read, and how to ask again conditionally."""

    kind: str
    area_code: str
    figures: AreaFigures
    children: dict[str, int]
    etag: str
    last_modified: str


def public_progress_record(*, reads: Sequence[AreaRead]) -> None:
    """Remembers what the site said about these areas and how to ask again conditionally: one
    statement for them all.

    An upsert, because a command run beside the beat task may write the same rows. A validator
    too long for its column is dropped rather than cut: a cut one would never match anyway.
    """
    # One row per area (the last read wins): an upsert may not touch a row twice.
    latest = {(read.kind, read.area_code): read for read in reads}
    PublicAreaProgress.objects.bulk_create(
        [
            PublicAreaProgress(
                kind=read.kind,
                area_code=read.area_code,
                total=read.figures.total,
                published=read.figures.published,
                site_ts=read.figures.ts,
                children=read.children,
                etag=read.etag if len(read.etag) <= 200 else "",
                last_modified=read.last_modified if len(read.last_modified) <= 100 else "",
            )
            for read in latest.values()
        ],
        update_conflicts=True,
        unique_fields=["kind", "area_code"],
        update_fields=[
            "total",
            "published",
            "site_ts",
            "children",
            "etag",
            "last_modified",
            "fetched_at",
        ],
    )
