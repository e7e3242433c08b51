"""Resumable uploads over tus 1.0 (uploads/tus.py answers the protocol): every write.

One tus upload is one page of a document the client names (TusDocument.key). Its bytes go to a
part file (uploads.tus_parts) and its offset moves on only once they are on disk. The request
whose bytes complete the last page of a document takes the document in, in the same
transaction that records the page complete, exactly as POST /api/uploads/ takes one
(uploads.services.intake.upload_receive: the same checks and refusals, the document id as the
Idempotency-Key). The outcome, the Document or the refusal, is kept on the TusDocument, where
the state endpoint finds it whatever became of the answer to that request. Should taking it
in fail (PostgreSQL gone, the process killed), nothing of it commits, the page's offset
included: the client sends its last chunk again and the document is taken in then.

Locks: a PATCH or DELETE holds the upload's session advisory lock while it reads the body, so
a second one meanwhile is refused (409) rather than interleaved; the TusDocument's row is
locked by whatever changes its pages or takes it in, so pages completing together take it in
once.
"""

import datetime
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import partial

import structlog
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_noop

from uploads import documents, tus_parts
from uploads.models import Document, TusDocument, TusState, TusUpload, Upload
from uploads.refusals import Refused, Words
from uploads.services.intake import Intent, UploadRefused, intake_target_check, upload_receive

logger = structlog.get_logger(__name__)

# How long an expired document's uploads still answer 410 before they are forgotten (404).
GONE_KEPT = datetime.timedelta(days=7)


class TusRefused(Refused):
    """A tus request refused, with its HTTP status and any header the answer needs."""

    def __init__(self, template: str, status: int = 400, headers: dict | None = None, **values):
        super().__init__(template, status=status, **values)
        self.headers = headers or {}


@dataclass(frozen=True)
class PageSpec:
    """What a client says about a page when it creates its upload (Upload-Metadata)."""

    tps: str
    contest: str
    document: str
    page: int
    pages: int
    filename: str
    original_sha256: str = ""
    based_on: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class Checksum:
    algorithm: str  # a hashlib name
    digest: bytes


@dataclass(frozen=True)
class Refusal:
    """The intake's refusal of a document, as its client was (or will be) answered."""

    status: int
    error: str  # in English
    pesan: str  # the same in Indonesian

    @classmethod
    def of(cls, refused: Refused) -> "Refusal":
        return cls(refused.status, str(refused), refused.words.said_in("id"))


@dataclass(frozen=True)
class Appended:
    """A body appended: the upload as it is now, whether the whole body arrived, and, when its
    bytes completed the document and the intake refused it, the refusal."""

    upload: TusUpload
    whole: bool = True
    refusal: Refusal | None = None


def _expiry() -> datetime.datetime:
    return timezone.now() + datetime.timedelta(hours=settings.TUS_EXPIRY_HOURS)


def tus_upload_create(*, user, spec: PageSpec, length: int, metadata: str) -> TusUpload:
    """Creates the upload of one page, after every check that needs no byte: the TPS and
    contest, the user's region (UploadRefused: 400, 403), the page's size (PageRefused: 400
    empty, 413 too large), the number of pages, and that the document's other pages said the
    same about it (TusRefused: 400)."""
    intake_target_check(tps_code=spec.tps, kind=spec.contest, user=user)
    documents.page_size_check(number=spec.page, name=spec.filename, size=length)
    try:
        documents.pages_count_check(spec.pages)
    except documents.PageRefused as refused:
        raise _metadata_refused("pages", refused.words) from None
    upload = Upload.objects.select_related("contest").get(
        tps_id=spec.tps, contest__kind=spec.contest
    )
    upload_id = uuid.uuid4()
    tus_parts.part_create(upload_id)
    try:
        with transaction.atomic():
            created = TusUpload.objects.create(
                id=upload_id,
                tus_document=_document_for(user, spec, upload),
                page=spec.page,
                filename=spec.filename,
                original_sha256=spec.original_sha256,
                metadata=metadata,
                length=length,
            )
    except BaseException:
        tus_parts.part_remove(upload_id)
        raise
    logger.info(
        "tus upload created",
        upload_id=upload.pk,
        tus_upload=str(upload_id),
        document=spec.document,
        page=spec.page,
        tps=spec.tps,
        contest=spec.contest,
        length=length,
    )
    return created


def _document_for(user, spec: PageSpec, upload: Upload) -> TusDocument:
    """The document the page belongs to, made by its first page, locked, its expiry moved on."""
    tus_document, created = TusDocument.objects.select_for_update().get_or_create(
        owner=user,
        key=spec.document,
        defaults={
            "upload": upload,
            "pages": spec.pages,
            "based_on": spec.based_on,
            "reason": spec.reason,
            "expires_at": _expiry(),
        },
    )
    if not created:
        _check_same_document(tus_document, spec, upload)
        # An expired document comes back to life with this page (its old pages stay gone).
        tus_document.expires_at = _expiry()
        tus_document.expired_at = None
        tus_document.save(update_fields=["expires_at", "expired_at"])
    return tus_document


def _check_same_document(tus_document: TusDocument, spec: PageSpec, upload: Upload) -> None:
    """A document id stands for one document: its pages must agree on what it is."""
    said = {
        "tps": (tus_document.upload.tps_id, upload.tps_id),
        "contest": (tus_document.upload.contest.kind, upload.contest.kind),
        "pages": (tus_document.pages, spec.pages),
        "based_on": (tus_document.based_on, spec.based_on),
        "reason": (tus_document.reason, spec.reason),
    }
    for key, (before, now) in said.items():
        if before != now:
            raise _metadata_refused(
                key,
                Words(
                    gettext_noop(
                        "document %(document)s was begun with %(before)s, this page says "
                        "%(now)s; a document id stands for one document"
                    ),
                    document=repr(spec.document),
                    before=repr(before),
                    now=repr(now),
                ),
            )


def _metadata_refused(key: str, problem: Words) -> TusRefused:
    """A refusal naming the Upload-Metadata key at fault."""
    return TusRefused(
        gettext_noop("Upload-Metadata %(key)s: %(problem)s"), key=key, problem=problem
    )


def tus_upload_live(*, upload_id: uuid.UUID, user) -> TusUpload:
    """The user's upload, unless it is unknown (404) or gone: expired or terminated (410)."""
    upload = (
        TusUpload.objects.select_related("tus_document")
        .filter(pk=upload_id, tus_document__owner=user)
        .first()
    )
    if upload is None:
        raise TusRefused(gettext_noop("no upload %(id)s of yours"), status=404, id=upload_id)
    expired = upload.tus_document.expires_at <= timezone.now()
    if upload.state in TusState.ENDED or expired:
        state = TusState.TERMINATED if upload.state == TusState.TERMINATED else TusState.EXPIRED
        raise TusRefused(
            gettext_noop("upload %(id)s is %(state)s; start a new one"),
            status=410,
            id=upload_id,
            state=state.label,
        )
    return upload


@contextmanager
def _writing(upload_id: uuid.UUID) -> Iterator[None]:
    """Holds the upload's advisory lock (the session's: no transaction stays open while a slow
    body arrives); another request holding it is refused with 409."""
    key = int.from_bytes(upload_id.bytes[:8], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        (held,) = cursor.fetchone()
    if not held:
        raise TusRefused(
            gettext_noop(
                "another request is writing to upload %(id)s; ask for its offset (HEAD) and "
                "continue from there"
            ),
            status=409,
            id=upload_id,
        )
    try:
        yield
    finally:
        # A connection lost meanwhile took the lock with it.
        with suppress(DatabaseError), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def tus_upload_append(
    *,
    upload_id: uuid.UUID,
    user,
    offset: int,
    read: Callable[[int], bytes],
    size: int,
    checksum: Checksum | None = None,
    ip: str = "",
) -> Appended:
    """Appends a body of `size` bytes (read with `read(n)`) at `offset`, which must be the
    upload's (409 otherwise), within its length (413). With a checksum, a body that does not
    match (460) or did not arrive whole (400) is discarded; without, whatever arrived is kept.
    The bytes that complete the document take it in."""
    with _writing(upload_id):
        upload = tus_upload_live(upload_id=upload_id, user=user)
        _check_append(upload, offset, size)
        if upload.state != TusState.OPEN:
            return Appended(upload)  # a complete upload, and an empty body at its end
        # Alive while its body arrives, however slowly: the sweep leaves it alone.
        TusDocument.objects.filter(pk=upload.tus_document_id, expired_at__isnull=True).update(
            expires_at=_expiry()
        )
        written = _write(upload, offset, read, size, checksum)
        upload, refusal = _record(upload, offset, written.size, ip)
        return Appended(upload, written.whole, refusal)


def _check_append(upload: TusUpload, offset: int, size: int) -> None:
    if offset != upload.offset:
        raise TusRefused(
            gettext_noop(
                "Upload-Offset: %(given)s, but upload %(id)s is at %(offset)s; continue from there"
            ),
            status=409,
            headers={"Upload-Offset": str(upload.offset)},
            given=offset,
            id=upload.pk,
            offset=upload.offset,
        )
    if offset + size > upload.length:
        raise TusRefused(
            gettext_noop(
                "%(size)s bytes at offset %(offset)s go past the upload's length, %(length)s"
            ),
            status=413,
            size=size,
            offset=offset,
            length=upload.length,
        )


def _write(
    upload: TusUpload, offset: int, read, size: int, checksum: Checksum | None
) -> tus_parts.Written:
    algorithm = checksum.algorithm if checksum else None
    try:
        written = tus_parts.part_write(
            upload.pk, offset=offset, read=read, size=size, algorithm=algorithm
        )
    except FileNotFoundError:
        logger.error("tus part missing", tus_upload=str(upload.pk), folder=str(tus_parts.root()))
        raise TusRefused(
            gettext_noop(
                "the bytes of upload %(id)s are not on this server; every web process must "
                "share TUS_ROOT"
            ),
            status=500,
            id=upload.pk,
        ) from None
    if checksum is None or (written.whole and written.digest == checksum.digest):
        return written
    tus_parts.part_cut(upload.pk, size=offset)
    TusUpload.objects.filter(pk=upload.pk).update(received=F("received") + written.size)
    if not written.whole:
        raise TusRefused(
            gettext_noop(
                "the body ended after %(size)s bytes of %(announced)s; with Upload-Checksum it "
                "must arrive whole, so none was kept"
            ),
            size=written.size,
            announced=size,
        )
    raise TusRefused(
        gettext_noop("Upload-Checksum: the body's %(algorithm)s does not match; none was kept"),
        status=460,
        algorithm=checksum.algorithm,
    )


def _record(upload: TusUpload, offset: int, size: int, ip: str) -> tuple[TusUpload, Refusal | None]:
    """Moves the offset on (the bytes are on disk), in one transaction with the document's
    expiry and, when the page is complete, taking the document in."""
    new_offset = offset + size
    complete = new_offset == upload.length
    with transaction.atomic():
        tus_document = TusDocument.objects.select_for_update().get(pk=upload.tus_document_id)
        changes: dict = {"offset": new_offset, "received": F("received") + size}
        if complete:
            changes |= {"state": TusState.COMPLETE, "completed_at": timezone.now()}
        moved = TusUpload.objects.filter(pk=upload.pk, offset=offset, state=TusState.OPEN).update(
            **changes
        )
        if not moved:  # the expiry sweep took it meanwhile
            raise TusRefused(
                gettext_noop("upload %(id)s expired; start a new one"), status=410, id=upload.pk
            )
        tus_document.expires_at = _expiry()
        tus_document.save(update_fields=["expires_at"])
        refusal = _document_take(tus_document, ip) if complete else None
    upload.refresh_from_db()
    if complete:
        logger.info("tus upload complete", tus_upload=str(upload.pk), page=upload.page)
    return upload, refusal


def _document_take(tus_document: TusDocument, ip: str) -> Refusal | None:
    """Takes the (locked) document in when every page has arrived: the intake's refusal, or
    None (taken, or pages still missing). Pages whose bytes were taken in already are read back
    from the document they went into."""
    chosen = _pages_arrived(tus_document)
    if len(chosen) < tus_document.pages:
        return None
    if all(part.state in (TusState.TAKEN, TusState.REFUSED) for part in chosen):
        return _outcome_recorded(tus_document)
    upload = Upload.objects.select_related("contest").get(pk=tus_document.upload_id)
    files = [_page_file(tus_document, part) for part in chosen]
    try:
        receipt = upload_receive(
            tps_code=upload.tps_id,
            kind=upload.contest.kind,
            files=files,
            user=tus_document.owner,
            ip=ip,
            idempotency_key=tus_document.key,
            intent=Intent(based_on=tus_document.based_on, reason=tus_document.reason),
            originals=[part.original_sha256 for part in chosen],
        )
    except UploadRefused as refused:
        refusal = Refusal.of(refused)
        _refusal_record(tus_document, chosen, refusal)
        return refusal
    finally:
        for file in files:
            file.close()
    _taken_record(tus_document, chosen, receipt.document)
    return None


def _pages_arrived(tus_document: TusDocument) -> list[TusUpload]:
    """For each page number, the last upload of it whose bytes all arrived; in page order."""
    latest: dict[int, TusUpload] = {}
    for part in tus_document.parts.filter(state__in=TusState.ARRIVED).order_by("completed_at"):
        latest[part.page] = part
    return [latest[number] for number in sorted(latest)]


def _page_file(tus_document: TusDocument, part: TusUpload) -> UploadedFile:
    if part.state != TusState.TAKEN:
        return tus_parts.part_open(part.pk, name=part.filename, size=part.length)
    # Its bytes went into the document taken in before: read them back from the storage.
    page = tus_document.document.pages.get(number=part.page)  # type: ignore[union-attr]
    stored = page.file.storage.open(str(page.file.name), "rb")
    return UploadedFile(stored, name=part.filename, size=page.size)


def _outcome_recorded(tus_document: TusDocument) -> Refusal | None:
    """The outcome of the pages as they are, found by an earlier request (two pages completing
    together: the second finds the first's)."""
    if not tus_document.is_refused:
        return None
    return Refusal(
        tus_document.refusal_status or 400, tus_document.refusal_error, tus_document.refusal_pesan
    )


def _refusal_record(tus_document: TusDocument, chosen: list[TusUpload], refusal: Refusal) -> None:
    tus_document.refusal_status = refusal.status
    tus_document.refusal_error = refusal.error
    tus_document.refusal_pesan = refusal.pesan
    tus_document.refused_at = timezone.now()
    tus_document.save(
        update_fields=["refusal_status", "refusal_error", "refusal_pesan", "refused_at"]
    )
    waiting = [part.pk for part in chosen if part.state == TusState.COMPLETE]
    TusUpload.objects.filter(pk__in=waiting).update(state=TusState.REFUSED)
    logger.info(
        "tus document refused",
        document=tus_document.key,
        upload_id=tus_document.upload_id,
        status=refusal.status,
        error=refusal.error,
    )


def _taken_record(tus_document: TusDocument, chosen: list[TusUpload], document: Document) -> None:
    tus_document.document = document
    tus_document.taken_at = timezone.now()
    tus_document.save(update_fields=["document", "taken_at"])
    with_part = [part.pk for part in chosen if part.state in TusState.WITH_PART]
    TusUpload.objects.filter(pk__in=with_part).update(state=TusState.TAKEN)
    transaction.on_commit(partial(_parts_remove, with_part))
    logger.info(
        "tus document taken in",
        document=tus_document.key,
        upload_id=tus_document.upload_id,
        sha256=document.sha256,
    )


def _parts_remove(upload_ids: list[uuid.UUID]) -> None:
    for upload_id in upload_ids:
        tus_parts.part_remove(upload_id)


def tus_upload_terminate(*, upload_id: uuid.UUID, user) -> None:
    """Ends an upload at its client's request (DELETE): its bytes go, it answers 410. A page
    already taken in stays in its document."""
    with _writing(upload_id):
        upload = tus_upload_live(upload_id=upload_id, user=user)
        with transaction.atomic():
            TusDocument.objects.select_for_update().get(pk=upload.tus_document_id)
            TusUpload.objects.filter(pk=upload.pk).update(
                state=TusState.TERMINATED, ended_at=timezone.now()
            )
            transaction.on_commit(partial(tus_parts.part_remove, upload.pk))
    logger.info("tus upload terminated", tus_upload=str(upload_id))


@dataclass(frozen=True)
class ExpiryResult:
    expired: int  # uploads whose document expired: bytes removed, answered 410 from now on
    forgotten: int  # documents gone long enough to be forgotten (their uploads answer 404)


def tus_uploads_expire(*, batch: int = 500) -> ExpiryResult:
    """What beat runs every few minutes: the uploads of documents past their expiry lose their
    bytes and answer 410; documents expired for GONE_KEPT are deleted with their uploads (and
    answer 404). A document being written or taken in (its row locked) waits for the next run."""
    now = timezone.now()
    with transaction.atomic():
        due = list(
            TusDocument.objects.filter(expires_at__lte=now, expired_at__isnull=True)
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:batch]
        )
        TusDocument.objects.filter(pk__in=due).update(expired_at=now)
        parts = TusUpload.objects.filter(tus_document__in=due, ended_at__isnull=True)
        with_part = list(parts.filter(state__in=TusState.WITH_PART).values_list("pk", flat=True))
        expired = parts.update(state=TusState.EXPIRED, ended_at=now)
        transaction.on_commit(partial(_parts_remove, with_part))
    old = TusDocument.objects.filter(expired_at__lte=now - GONE_KEPT).values("pk")[:batch]
    _, deleted = TusDocument.objects.filter(pk__in=old).delete()
    forgotten = deleted.get(TusDocument._meta.label, 0)
    if expired or forgotten:
        logger.info("tus uploads expired", expired=expired, forgotten=forgotten)
    return ExpiryResult(expired=expired, forgotten=forgotten)
