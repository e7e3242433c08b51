"""A document arrives (the API, the form): checked before anything is written, kept, queued.

The identifiers and the sender's region are checked first, then every page is decoded
(uploads.documents), then, in one transaction with the upload locked, the document and its pages
are stored and the upload queued; the delivery task is sent after commit. Anything refused
writes nothing.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache, partial

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext_noop

from accounts.scope import Can, Scope, scope_of
from regions import codes
from regions.models import Area, Contest, ContestKind, Level
from sirekap_tracker import rows
from uploads import documents
from uploads.models import Action, Document, Page, Source, Status, Upload
from uploads.refusals import Refused
from uploads.services.delivery import deliveries_enqueue
from uploads.services.transitions import upload_transition


class UploadRefused(Refused):
    """An upload that cannot be taken, with the HTTP status that says why."""


@dataclass
class Receipt:
    upload: Upload
    document: Document
    created: bool


@dataclass(frozen=True)
class Intent:
    """What a person meant, beyond the pages (the form and the API send it; a KPPS app need not).

    `based_on`: the SHA-256 of the document they saw as current ("" none); if another came in
    since, theirs is refused (409) rather than silently replacing the one they never saw.
    `reason`: why a published document is replaced, or why a document already used for another
    TPS is right for this one too (KPU staff only)."""

    based_on: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class Original:
    """What a sender knew of a page's original photo before its browser shrank it ("" unknown):
    its SHA-256, and when (camera clock, ISO 8601) and where ("latitude,longitude") its EXIF says
    it was taken."""

    sha256: str = ""
    taken_at: str = ""
    location: str = ""


def upload_receive(
    *,
    tps_code: str,
    kind: str,
    files: list,
    user,
    ip: str = "",
    idempotency_key: str = "",
    intent: Intent = Intent(),
    originals: Sequence[Original] = (),
) -> Receipt:
    """Takes a document for a TPS and contest and queues it for delivery.

    The identifiers and the user's region are checked before any page is read. The same content
    again (or the same Idempotency-Key) returns the upload as it is: no second document, no
    second delivery. A KPPS's upload has source KPPS; anyone else's is the PPK's (on its
    behalf). `originals`: what the sender knew of each page's original photo, in page order,
    kept with the pages. Raises UploadRefused (400, 403 or 409) and writes
    nothing.
    """
    scope = intake_target_check(tps_code=tps_code, kind=kind, user=user)
    try:
        pages = documents.pages_check(files)
    except documents.PageRefused as error:
        raise UploadRefused(error.words.template, **error.words.values) from error
    sha256 = documents.document_sha256(pages)
    source = Source.KPPS if scope.is_kpps else Source.PPK
    with transaction.atomic():
        locked = _upload_locked(tps_code, kind, sha256, idempotency_key)
        upload = locked.upload
        existing = _known_document(locked, sha256, idempotency_key)
        if existing:
            return Receipt(upload, existing, created=False)
        _check_based_on(upload, intent)
        _check_replaceable(upload, sha256, scope, intent)
        _check_not_elsewhere(locked, sha256, scope, intent)
        document = _document_create(
            upload, pages, sha256, user, source, idempotency_key, intent.reason, originals
        )
        _queue(upload, document, user, source, ip)
        transaction.on_commit(partial(deliveries_enqueue, [upload.pk]))
    return Receipt(upload, document, created=True)


def intake_target_check(*, tps_code: str, kind: str, user) -> Scope:
    """Refuses a malformed code or contest, a TPS outside the user's region (403, whether or not
    it exists: a code outside says nothing about what is there), an unknown TPS inside it and a
    contest not open there (400). Reads no page."""
    if not codes.is_code(tps_code, [codes.TPS_LENGTH]):
        raise UploadRefused(
            gettext_noop("tps: expected a 13-digit TPS code, got %(value)s"),
            value=repr(tps_code[:40]),
        )
    if kind not in ContestKind.values:
        raise UploadRefused(
            gettext_noop("contest: unknown %(value)s; one of %(kinds)s"),
            value=repr(kind[:40]),
            kinds=", ".join(ContestKind.values),
        )
    scope = scope_of(user)
    if not scope.uploads_to(tps_code):
        raise UploadRefused(
            gettext_noop("TPS %(tps)s is outside your region"), status=403, tps=tps_code
        )
    if not _upload_exists(tps_code, kind):
        if not Area.objects.filter(code=tps_code, level=Level.TPS).exists():
            raise UploadRefused(gettext_noop("tps: no TPS with code %(tps)s"), tps=tps_code)
        raise UploadRefused(
            gettext_noop("contest: %(kind)s is not open at TPS %(tps)s"), kind=kind, tps=tps_code
        )
    return scope


def _upload_exists(tps_code: str, kind: str) -> bool:
    """Whether the contest is open at the TPS: plain SQL, as the locked read below (the ORM's
    exists() cost about 1 ms of CPU to build)."""
    with connection.cursor() as cursor:
        cursor.execute(_exists_sql(), [tps_code, kind])
        (exists,) = cursor.fetchone()
    return exists


@cache
def _exists_sql() -> str:
    return f"""
        SELECT EXISTS (SELECT FROM {Upload._meta.db_table} upload
            JOIN {Contest._meta.db_table} contest ON contest.id = upload.contest_id
            WHERE upload.tps_id = %s AND contest.kind = %s)
    """


@dataclass(frozen=True)
class _Locked:
    """The upload, locked, and what the checks ask of its other documents and of the others'."""

    upload: Upload
    keyed_id: int | None  # the document the request's Idempotency-Key already made
    sent_elsewhere: bool  # the same pages are a document of another upload


def _upload_locked(tps_code: str, kind: str, sha256: str, key: str) -> _Locked:
    """The upload locked, with its TPS and contest, and in the same statement what the checks
    need of other rows: the document the Idempotency-Key made, and whether the pages were sent
    for another upload (nearly every document is a first one, with a new key and new pages, so
    the rows behind these answers are read only to refuse).

    Plain SQL, the models built from its row: the ORM spent about 3 ms of CPU building this
    query and its instances, more than everything else the transaction does (docs/performance.md,
    "Throughput"). The columns come from the models, so a new field is read as well."""
    parameters = {"tps": tps_code, "kind": kind, "sha256": sha256, "key": key}
    with connection.cursor() as cursor:
        cursor.execute(_locked_sql(), parameters)
        row = cursor.fetchone()
    if row is None:
        raise Upload.DoesNotExist(f"no upload of {kind} at TPS {tps_code}")
    *values, keyed_id, sent_elsewhere = row
    upload, at = rows.built(Upload, values, 0)
    contest, at = rows.built(Contest, values, at)
    tps, _ = rows.built(Area, values, at)
    upload.contest, upload.tps = contest, tps
    return _Locked(upload, keyed_id, sent_elsewhere)


@cache
def _locked_sql() -> str:
    documents = Document._meta.db_table
    # An empty key is no key: documents sent without one all have it empty.
    return f"""
        SELECT {rows.columns(Upload, "upload")}, {rows.columns(Contest, "contest")},
            {rows.columns(Area, "tps")},
            (SELECT id FROM {documents} document
                WHERE %(key)s <> '' AND document.upload_id = upload.id
                    AND document.idempotency_key = %(key)s
                ORDER BY document.created_at, document.id LIMIT 1),
            EXISTS (SELECT FROM {documents} document
                WHERE document.sha256 = %(sha256)s AND document.upload_id <> upload.id)
        FROM {Upload._meta.db_table} upload
        JOIN {Contest._meta.db_table} contest ON contest.id = upload.contest_id
        JOIN {Area._meta.db_table} tps ON tps.code = upload.tps_id
        WHERE upload.tps_id = %(tps)s AND contest.kind = %(kind)s
        FOR UPDATE OF upload
    """


def _known_document(locked: _Locked, sha256: str, key: str) -> Document | None:
    """The document this request already made (same Idempotency-Key), or the current one if it
    has the same content."""
    if locked.keyed_id is not None:
        by_key = Document.objects.get(pk=locked.keyed_id)
        if by_key.sha256 != sha256:
            raise UploadRefused(
                gettext_noop("Idempotency-Key %(key)s was already used for a different document"),
                status=409,
                key=repr(key),
            )
        return by_key
    current = locked.upload.document
    return current if current and current.sha256 == sha256 else None


def _check_based_on(upload: Upload, intent: Intent) -> None:
    """Refuses a document made against a current one that is not current any more."""
    current = upload.document.sha256 if upload.document else ""
    if intent.based_on is None or intent.based_on == current:
        return
    document = upload.document
    who = document.uploaded_by.get_username() if document and document.uploaded_by else "KPPS"
    raise UploadRefused(
        gettext_noop(
            "TPS %(tps)s %(kind)s got another document (SHA-256 %(sha256)s) from %(who)s at "
            "%(when)s since you looked; look at it before you replace it"
        ),
        status=409,
        tps=upload.tps_id,
        kind=upload.contest.kind,
        sha256=current,
        who=who,
        when=document.created_at.isoformat(timespec="seconds") if document else "-",
    )


def _check_replaceable(upload: Upload, sha256: str, scope: Scope, intent: Intent) -> None:
    """A published document is replaced only by the PPK (or higher), with a reason; the old one
    is kept. A new document is also refused when it is an earlier version sent again, and beyond
    UPLOAD_MAX_DOCUMENTS versions (each is kept and delivered).

    An earlier version is not made current again: that would be a new delivery (alternating two
    documents would deliver forever), and answering it as taken would be untrue.
    """
    where = f"TPS {upload.tps_id} {upload.contest.kind}"
    if upload.status == Status.PUBLISHED and (scope.is_kpps or not intent.reason):
        raise UploadRefused(
            gettext_noop(
                "%(where)s is already published with a different document; a replacement goes "
                "through the PPK with a reason"
            ),
            status=409,
            where=where,
        )
    if upload.document_id is None:
        return  # a first document: a document is made current when it is made, so none is kept
    versions = upload.documents.aggregate(
        total=Count("pk"), same=Count("pk", filter=Q(sha256=sha256))
    )
    if versions["same"]:
        current = upload.document.sha256 if upload.document else "-"
        raise UploadRefused(
            gettext_noop(
                "this document (SHA-256 %(sha256)s) was sent for %(where)s before and was "
                "replaced by another one (SHA-256 %(current)s), which stays the current one; an "
                "earlier version cannot be made current again"
            ),
            status=409,
            sha256=sha256,
            where=where,
            current=current,
        )
    limit = settings.UPLOAD_MAX_DOCUMENTS
    if versions["total"] >= limit:
        raise UploadRefused(
            gettext_noop(
                "%(where)s already has %(limit)s versions of its document, the most allowed; "
                "the current one stays and is delivered"
            ),
            status=409,
            where=where,
            limit=limit,
        )


def _check_not_elsewhere(locked: _Locked, sha256: str, scope: Scope, intent: Intent) -> None:
    """The same pages already sent for another TPS or contest are refused, naming it: a photo of
    the wrong form is the commonest mistake in the field. KPU staff may confirm it with a reason
    (a form that truly covers both)."""
    # Asked with the lock: nearly every document is new, and the names are read only to refuse.
    if not locked.sent_elsewhere or (scope.may(Can.AUDIT) and intent.reason):
        return
    others = Document.objects.filter(sha256=sha256).exclude(upload_id=locked.upload.pk)
    other = others.select_related("upload__contest", "upload__tps").first()
    assert other is not None
    raise UploadRefused(
        gettext_noop(
            "this document (SHA-256 %(sha256)s) was already sent for TPS %(tps)s (%(name)s) "
            "%(kind)s; check that the photo is of this TPS's form"
        ),
        status=409,
        sha256=sha256,
        tps=other.upload.tps_id,
        name=other.upload.tps.name,
        kind=other.upload.contest.kind,
    )


def _document_create(upload, pages, sha256, user, source, key, reason, originals) -> Document:
    document = Document(
        upload=upload,
        sha256=sha256,
        source=source,
        uploaded_by=user,
        idempotency_key=key,
        reason=reason,
    )
    stored = [
        Page(
            document=document,
            number=page.number,
            file=documents.page_store(
                page=page, kind=upload.contest.kind, tps_code=upload.tps_id, sha256=sha256
            ),
            sha256=page.sha256,
            size=page.size,
            content_type=page.content_type,
            original_sha256=original.sha256,
            original_taken_at=original.taken_at,
            original_location=original.location,
        )
        for page, original in zip(pages, _padded(originals, len(pages)), strict=True)
    ]
    _document_insert(document, stored)
    return document


def _document_insert(document: Document, pages: list[Page]) -> None:
    """Inserts the document and its pages in one statement, the document's id given to both.

    The ORM's create and bulk_create cost two round trips and about 1.5 ms of CPU building
    their SQL (docs/performance.md, "Throughput"). The columns and their values come from the
    models (each field's pre_save and get_db_prep_save, as the ORM's insert takes them), so a
    new field is written as well."""
    document_fields = rows.inserted_fields(Document)
    page_fields = [field for field in rows.inserted_fields(Page) if field.column != _PAGE_DOCUMENT]
    values = rows.insert_values(document, document_fields)
    page_rows = [rows.insert_values(page, page_fields) for page in pages]
    sql = _document_insert_sql(
        tuple(rows.column_marks(document_fields, values)),
        tuple(tuple(rows.column_marks(page_fields, row)) for row in page_rows),
    )
    parameters = [
        *rows.without_defaults(values),
        *(value for row in page_rows for value in rows.without_defaults(row)),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, parameters)
        (document.pk,) = cursor.fetchone()
    document._state.adding, document._state.db = False, connection.alias


# A page's document column: the document's id, given in the statement.
_PAGE_DOCUMENT = Page._meta.get_field("document").column


@lru_cache(maxsize=32)
def _document_insert_sql(document: tuple, pages: tuple) -> str:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(column) for column, _ in document)
    marks = ", ".join(mark for _, mark in document)
    page_columns = ", ".join(quote(column) for column, _ in pages[0])
    page_rows = ", ".join(
        "((SELECT id FROM document), " + ", ".join(mark for _, mark in page) + ")" for page in pages
    )
    return f"""
        WITH document AS (
            INSERT INTO {Document._meta.db_table} ({columns}) VALUES ({marks}) RETURNING id
        ), page AS (
            INSERT INTO {Page._meta.db_table} ({quote(_PAGE_DOCUMENT)}, {page_columns})
            VALUES {page_rows}
        )
        SELECT id FROM document
    """


def _padded(originals: Sequence[Original], count: int) -> list[Original]:
    return [*originals[:count], *[Original()] * (count - len(originals))]


def _queue(upload: Upload, document: Document, user, source: str, ip: str) -> None:
    """Current and on its way. A published upload goes back on its way too: its new document
    is delivered, and it is published again when the site shows the new one.

    The locked `upload` is then as the transition left it, for the receipt: with the lock held
    nothing else changed it, so reading it again (a query with its TPS and contest) would say
    only what is set here."""
    now = timezone.now()
    replaced = upload.document_id is not None
    why = f"; {document.reason}" if document.reason else ""
    changes = {
        "document": document,
        "source": source,
        "attempts": 0,
        "queued_at": now,
        "next_attempt_at": now,
        "dispatched_at": now,
        "lease_token": None,
        "lease_expires_at": None,
        "last_error": "",
        "failing_since": None,
    }
    old = upload_transition(
        upload_id=upload.pk,
        expected=(*Status.UNPUBLISHED, Status.PUBLISHED),
        new=Status.QUEUED,
        action=Action.REPLACED if replaced else Action.RECEIVED,
        source=source,
        actor=user,
        ip=ip,
        reason=f"SHA-256 {document.sha256}{why}",
        changes=changes,
        now=now,
    )
    for name, value in changes.items():
        setattr(upload, name, value)
    if old != Status.QUEUED:
        upload.status, upload.status_since = Status.QUEUED, now
