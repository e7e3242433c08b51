"""A document arrives (the API, the form): checked before anything is written, kept, queued.

The identifiers and the sender's region are checked first, then every page is decoded
(uploads.documents), then, in one transaction with the upload locked, the document and its pages
are stored and the upload queued; the delivery task is sent after commit. Anything refused
writes nothing.
"""

from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from accounts.selectors import user_may_act_on
from regions import codes
from regions.models import Area, ContestKind, Level
from uploads import documents
from uploads.models import Action, Document, Page, Source, Status, Upload
from uploads.services.delivery import deliveries_enqueue
from uploads.services.transitions import upload_transition


class UploadRefused(Exception):
    """An upload that cannot be taken, with the HTTP status that says why."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Receipt:
    upload: Upload
    document: Document
    created: bool


def upload_receive(
    *,
    tps_code: str,
    kind: str,
    files: list,
    user,
    source: str = Source.KPPS,
    idempotency_key: str = "",
) -> Receipt:
    """Takes a document for a TPS and contest and queues it for delivery.

    The identifiers and the user's region are checked before any page is read. The same content
    again (or the same Idempotency-Key) returns the upload as it is: no second document, no
    second delivery. Raises UploadRefused (400, 403 or 409) and writes nothing.
    """
    intake_target_check(tps_code=tps_code, kind=kind, user=user)
    try:
        pages = documents.pages_check(files)
    except documents.PageRefused as error:
        raise UploadRefused(str(error)) from error
    sha256 = documents.document_sha256(pages)
    with transaction.atomic():
        upload = _upload_locked(tps_code, kind)
        existing = _known_document(upload, sha256, idempotency_key)
        if existing:
            return Receipt(upload, existing, created=False)
        _check_replaceable(upload, sha256)
        document = _document_create(upload, pages, sha256, user, source, idempotency_key)
        _queue(upload, document, user, source)
        transaction.on_commit(partial(deliveries_enqueue, [upload.pk]))
    upload.refresh_from_db()
    return Receipt(upload, document, created=True)


def intake_target_check(*, tps_code: str, kind: str, user) -> None:
    """Refuses a malformed code or contest, a TPS outside the user's region (403, whether or not
    it exists: a code outside says nothing about what is there), an unknown TPS inside it and a
    contest not open there (400). Reads no page."""
    if not codes.is_code(tps_code, [codes.TPS_LENGTH]):
        raise UploadRefused(f"tps: expected a 13-digit TPS code, got {tps_code[:40]!r}")
    if kind not in ContestKind.values:
        raise UploadRefused(
            f"contest: unknown {kind[:40]!r}; one of {', '.join(ContestKind.values)}"
        )
    if not user_may_act_on(user, tps_code):
        raise UploadRefused(f"TPS {tps_code} is outside your region", status=403)
    if not Upload.objects.filter(tps_id=tps_code, contest__kind=kind).exists():
        if not Area.objects.filter(code=tps_code, level=Level.TPS).exists():
            raise UploadRefused(f"tps: no TPS with code {tps_code}")
        raise UploadRefused(f"contest: {kind} is not open at TPS {tps_code}")


def _upload_locked(tps_code: str, kind: str) -> Upload:
    return (
        Upload.objects.select_for_update(of=("self",))
        .select_related("tps", "contest")
        .get(tps_id=tps_code, contest__kind=kind)
    )


def _known_document(upload: Upload, sha256: str, key: str) -> Document | None:
    """The document this request already made (same Idempotency-Key), or the current one if it
    has the same content."""
    if key:
        by_key = Document.objects.filter(upload=upload, idempotency_key=key).first()
        if by_key and by_key.sha256 != sha256:
            raise UploadRefused(
                f"Idempotency-Key {key!r} was already used for a different document", status=409
            )
        if by_key:
            return by_key
    current = upload.document
    return current if current and current.sha256 == sha256 else None


def _check_replaceable(upload: Upload, sha256: str) -> None:
    """A new document is refused once the upload is published, when it is an earlier version
    sent again, and beyond UPLOAD_MAX_DOCUMENTS versions (each is kept and delivered).

    An earlier version is not made current again: that would be a new delivery (alternating two
    documents would deliver forever), and answering it as taken would be untrue.
    """
    where = f"TPS {upload.tps_id} {upload.contest.kind}"
    if upload.status == Status.PUBLISHED:
        raise UploadRefused(
            f"{where} is already published with a different document; "
            "a replacement goes through the PPK with a reason",
            status=409,
        )
    versions = upload.documents.aggregate(
        total=Count("pk"), same=Count("pk", filter=Q(sha256=sha256))
    )
    if versions["same"]:
        current = upload.document.sha256 if upload.document else "-"
        raise UploadRefused(
            f"this document (SHA-256 {sha256}) was sent for {where} before and was replaced "
            f"by another one (SHA-256 {current}), which stays the current one; an earlier "
            "version cannot be made current again",
            status=409,
        )
    limit = settings.UPLOAD_MAX_DOCUMENTS
    if versions["total"] >= limit:
        raise UploadRefused(
            f"{where} already has {limit} versions of its document, the most allowed; "
            "the current one stays and is delivered",
            status=409,
        )


def _document_create(upload, pages, sha256, user, source, key) -> Document:
    document = Document.objects.create(
        upload=upload, sha256=sha256, source=source, uploaded_by=user, idempotency_key=key
    )
    Page.objects.bulk_create(
        Page(
            document=document,
            number=page.number,
            file=documents.page_store(
                page=page, kind=upload.contest.kind, tps_code=upload.tps_id, sha256=sha256
            ),
            sha256=page.sha256,
            size=page.size,
            content_type=page.content_type,
        )
        for page in pages
    )
    return document


def _queue(upload: Upload, document: Document, user, source: str) -> None:
    now = timezone.now()
    replaced = upload.document_id is not None
    upload_transition(
        upload_id=upload.pk,
        expected=Status.UNPUBLISHED,
        new=Status.QUEUED,
        action=Action.REPLACED if replaced else Action.RECEIVED,
        source=source,
        actor=user,
        reason=f"SHA-256 {document.sha256}",
        changes={
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
        },
    )
