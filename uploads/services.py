"""Every write to uploads: intake, the status transitions of delivery and polling, the sweeper.

Times come from the application's clock (timezone.now()), not PostgreSQL's now(), which stands
still for a whole transaction.

Rules (DESIGN.md): a status changes only through `upload_transition`, a compare-and-swap on the
expected status that writes an UploadEvent in the same transaction; zero rows means someone else
won. PostgreSQL is the source of truth and Redis only the doorbell: a task is sent after commit,
and the sweeper rings again for anything due whose doorbell went unanswered.
"""

import datetime
import logging
import random
import uuid
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from regions.models import CODE_LENGTH, ContestKind, Level
from uploads import documents
from uploads.models import (
    REPLACEABLE,
    WAITING_TO_SEND,
    Document,
    Page,
    Source,
    Status,
    StuckReason,
    Upload,
    UploadEvent,
)

logger = logging.getLogger(__name__)


class UploadRefused(Exception):
    """An upload that cannot be taken, with the HTTP status that says why."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


# --- Transitions


def upload_transition(
    *,
    upload_id: int,
    expected: tuple[str, ...],
    new: str,
    action: str,
    source: str = Source.SYSTEM,
    actor=None,
    reason: str = "",
    guard: Q | None = None,
    changes: dict | None = None,
) -> str | None:
    """Moves an upload from one of `expected` to `new`, with its event, in one transaction.

    `guard` adds conditions (a lease token, a deadline). Returns the old status, or None when the
    upload was not in an expected state any more: someone else won, and there is nothing to do.
    """
    with transaction.atomic():
        rows = Upload.objects.filter(pk=upload_id, status__in=expected)
        row = rows.filter(guard or Q()).select_for_update()
        row = row.values_list("status", "stuck", "tps_id", "contest_id").first()
        if row is None:
            return None
        old, was_stuck, tps_code, contest_id = row
        fields = dict(changes or {})
        if new != old:
            fields["status_since"] = timezone.now()
        Upload.objects.filter(pk=upload_id, status=old).update(status=new, **fields)
        UploadEvent.objects.create(
            upload_id=upload_id,
            action=action,
            old_status=old,
            new_status=new,
            actor=actor,
            source=source,
            reason=reason[:2000],
        )
        # In the same transaction, so the per-area counts stay exact (progress/models.py).
        from progress.services import progress_record

        progress_record(
            contest_id=contest_id,
            tps_code=tps_code,
            old_status=old,
            new_status=new,
            was_stuck=was_stuck,
            is_stuck=fields.get("stuck", was_stuck),
        )
        return old


def upload_mark_stuck(*, upload_id: int, reason: str, actor=None, note: str = "") -> bool:
    """Flags an upload stuck (a flag beside the status, cleared when it is published)."""
    with transaction.atomic():
        upload = Upload.objects.select_for_update().filter(pk=upload_id).first()
        if upload is None or upload.stuck or upload.status == Status.PUBLISHED:
            return False
        Upload.objects.filter(pk=upload_id).update(
            stuck=True, stuck_reason=reason, stuck_since=timezone.now()
        )
        # In the same transaction, so the per-area counts stay exact (progress/models.py).
        from progress.services import progress_record

        progress_record(
            contest_id=upload.contest_id,
            tps_code=upload.tps_id,
            old_status=upload.status,
            new_status=upload.status,
            was_stuck=False,
            is_stuck=True,
        )
        _event(upload, "stuck", actor=actor, reason=f"{StuckReason(reason).label}. {note}".strip())
        return True


def _event(upload: Upload, action: str, *, actor=None, source=Source.SYSTEM, reason="") -> None:
    UploadEvent.objects.create(
        upload=upload,
        action=action,
        old_status=upload.status,
        new_status=upload.status,
        actor=actor,
        source=source,
        reason=reason,
    )


# --- Intake


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
    """Takes a document for a TPS and contest, queues it for delivery, rings the doorbell.

    The same content again (or the same Idempotency-Key) returns the upload as it is: no second
    document, no second delivery. Raises UploadRefused (400, 403 or 409) and writes nothing.
    """
    _check_identifiers(tps_code, kind)
    try:
        pages = documents.pages_check(files)
    except documents.PageRefused as error:
        raise UploadRefused(str(error)) from error
    sha256 = documents.document_sha256(pages)
    with transaction.atomic():
        upload = _upload_for_intake(tps_code, kind, user)
        existing = _known_document(upload, sha256, idempotency_key)
        if existing:
            return Receipt(upload, existing, created=False)
        if upload.status == Status.PUBLISHED:
            raise UploadRefused(
                f"TPS {tps_code} {kind} is already published with a different document; "
                "a replacement goes through the PPK with a reason",
                status=409,
            )
        document = _document_create(upload, pages, sha256, user, source, idempotency_key)
        _queue(upload, document, user, source)
        transaction.on_commit(partial(doorbell_ring, [upload.pk]))
    upload.refresh_from_db()
    return Receipt(upload, document, created=True)


def _check_identifiers(tps_code: str, kind: str) -> None:
    if not (tps_code.isascii() and tps_code.isdigit() and len(tps_code) == CODE_LENGTH[Level.TPS]):
        raise UploadRefused(f"tps: expected a 13-digit TPS code, got {tps_code!r}")
    if kind not in ContestKind.values:
        raise UploadRefused(f"contest: unknown {kind!r}; one of {', '.join(ContestKind.values)}")


def _upload_for_intake(tps_code: str, kind: str, user) -> Upload:
    from accounts.selectors import user_may_act_on

    upload = (
        Upload.objects.select_for_update(of=("self",))
        .select_related("tps", "contest")
        .filter(tps_id=tps_code, contest__kind=kind)
        .first()
    )
    if upload is None:
        from regions.models import Area

        if not Area.objects.filter(code=tps_code, level=Level.TPS).exists():
            raise UploadRefused(f"tps: no TPS with code {tps_code}")
        raise UploadRefused(f"contest: {kind} is not open at TPS {tps_code}")
    if not user_may_act_on(user, tps_code):
        raise UploadRefused(f"TPS {tps_code} is outside your region", status=403)
    return upload


def _known_document(upload: Upload, sha256: str, key: str) -> Document | None:
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
        expected=REPLACEABLE,
        new=Status.QUEUED,
        action="replaced" if replaced else "received",
        source=source,
        actor=user,
        reason=f"{len(document.pages.all())} page(s), SHA-256 {document.sha256}",
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
        },
    )


# --- The doorbell


def doorbell_ring(upload_ids: list[int]) -> None:
    """Sends one delivery task per upload. Redis being down is not an error here: the rows are
    committed, so their doorbell is marked unrung and the sweeper rings it when Redis is back."""
    from kombu.exceptions import OperationalError

    from uploads.tasks import deliver_upload

    for position, upload_id in enumerate(upload_ids):
        try:
            deliver_upload.delay(upload_id)
        except (OperationalError, ConnectionError, OSError) as error:
            logger.warning("doorbell failed (%s); the sweeper will ring again", error)
            Upload.objects.filter(pk__in=upload_ids[position:]).update(dispatched_at=None)
            return


# --- Delivery


@dataclass
class Lease:
    upload_id: int
    token: uuid.UUID
    kind: str
    tps_code: str
    sha256: str
    pages: list[Page]
    attempt: int

    @property
    def idempotency_key(self) -> str:
        return f"{self.upload_id}:{self.sha256}"


def upload_claim(*, upload_id: int) -> Lease | None:
    """Takes a lease on a due upload for one delivery attempt, or None if it is not ours to send.

    Only a due row is claimed, so a late duplicate doorbell for an upload waiting out its backoff
    does nothing.
    """
    token = uuid.uuid4()
    expires = timezone.now() + datetime.timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)
    won = upload_transition(
        upload_id=upload_id,
        expected=WAITING_TO_SEND,
        new=Status.SENDING,
        action="claimed",
        guard=Q(next_attempt_at__lte=timezone.now()),
        changes={
            "lease_token": token,
            "lease_expires_at": expires,
            "dispatched_at": None,
            "attempts": F("attempts") + 1,
        },
    )
    if won is None:
        return None
    upload = Upload.objects.select_related("contest", "document").get(pk=upload_id)
    pages = list(upload.document.pages.order_by("number"))
    return Lease(
        upload_id,
        token,
        upload.contest.kind,
        upload.tps_id,
        upload.document.sha256,
        pages,
        upload.attempts,
    )


@dataclass
class Outcome:
    """What the publication server said: accepted, transient (retry) or permanent (reject)."""

    kind: str
    reason: str = ""
    # The server's Retry-After, in seconds, when it gave one.
    retry_after: float | None = None
    # A network failure (no answer) rather than the server refusing: names the stuck reason.
    network: bool = False


def upload_record_outcome(*, lease: Lease, outcome: Outcome) -> bool:
    """Writes the result of a delivery attempt, fenced by the lease: a worker whose lease expired
    (and whose upload another worker took over) cannot overwrite newer state."""
    fence = Q(lease_token=lease.token)
    released = {"lease_token": None, "lease_expires_at": None}
    if outcome.kind == "accepted":
        changes = {
            **released,
            "delivered_at": timezone.now(),
            "next_attempt_at": None,
            "last_error": "",
        }
        new, action = Status.DELIVERED, "delivered"
    elif outcome.kind == "permanent":
        changes = {**released, "next_attempt_at": None, "last_error": outcome.reason}
        new, action = Status.REJECTED, "rejected"
    else:
        delay = _retry_delay(lease.attempt, outcome.retry_after)
        due = timezone.now() + datetime.timedelta(seconds=delay)
        changes = {**released, "next_attempt_at": due, "last_error": outcome.reason}
        new, action = Status.RETRYING, "retry"
    won = upload_transition(
        upload_id=lease.upload_id,
        expected=(Status.SENDING,),
        new=new,
        action=action,
        reason=outcome.reason,
        guard=fence,
        changes=changes,
    )
    if won and outcome.kind == "transient":
        _flag_if_overdue(lease.upload_id, outcome)
    return won is not None


# A Retry-After is honoured as given, even past our own cap, up to this (a typo in the server's
# header must not park an upload for days).
RETRY_AFTER_LIMIT = 3600


def _retry_delay(attempt: int, retry_after: float | None) -> float:
    """Exponential backoff with full jitter; at the cap once the upload is overdue; the server's
    Retry-After when it gave one (it knows its own load better than we do)."""
    cap = settings.DELIVERY_BACKOFF_CAP_SECONDS
    if retry_after is not None:
        return min(max(retry_after, 0.0), RETRY_AFTER_LIMIT)
    if attempt >= settings.STUCK_AFTER_ATTEMPTS:
        return cap
    ceiling = min(cap, settings.DELIVERY_BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
    return random.uniform(0, ceiling)


def _flag_if_overdue(upload_id: int, outcome: Outcome) -> None:
    upload = Upload.objects.filter(pk=upload_id).only("attempts", "queued_at", "stuck").first()
    if upload is None or upload.stuck:
        return
    waited = timezone.now() - (upload.queued_at or timezone.now())
    too_long = waited >= datetime.timedelta(minutes=settings.STUCK_AFTER_MINUTES)
    if upload.attempts >= settings.STUCK_AFTER_ATTEMPTS or too_long:
        reason = StuckReason.NETWORK if outcome.network else StuckReason.SERVER_QUEUE
        upload_mark_stuck(
            upload_id=upload_id,
            reason=reason,
            note=f"{upload.attempts} attempts; last error: {outcome.reason}",
        )


# --- The sweeper


@dataclass
class SweepResult:
    rung: int
    leases_expired: int
    flagged_in_server_queue: int


def uploads_sweep(*, batch: int = 1000) -> SweepResult:
    """What beat runs every few seconds: take back expired leases, ring for due uploads whose
    doorbell went unanswered, and flag deliveries that sit too long in the server queue."""
    expired = _expire_leases(batch)
    rung = _ring_due(batch)
    flagged = _flag_server_queue(batch)
    return SweepResult(rung, expired, flagged)


def _expire_leases(batch: int) -> int:
    ids = Upload.objects.filter(
        status=Status.SENDING, lease_expires_at__lt=timezone.now()
    ).values_list("pk", flat=True)[:batch]
    expired = 0
    for upload_id in ids:
        expired += bool(
            upload_transition(
                upload_id=upload_id,
                expected=(Status.SENDING,),
                new=Status.RETRYING,
                action="lease expired",
                reason="the worker sending it stopped answering; another will send it",
                guard=Q(lease_expires_at__lt=timezone.now()),
                changes={
                    "lease_token": None,
                    "lease_expires_at": None,
                    "next_attempt_at": timezone.now(),
                },
            )
        )
    return expired


def _ring_due(batch: int) -> int:
    grace = datetime.timedelta(seconds=settings.DISPATCH_GRACE_SECONDS)
    unanswered = Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=timezone.now() - grace)
    with transaction.atomic():
        # SKIP LOCKED: two sweepers (or a sweeper and an intake) never wait on each other.
        due = list(
            Upload.objects.filter(status__in=WAITING_TO_SEND, next_attempt_at__lte=timezone.now())
            .filter(unanswered)
            .order_by("next_attempt_at")
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:batch]
        )
        Upload.objects.filter(pk__in=due).update(dispatched_at=timezone.now())
        transaction.on_commit(partial(doorbell_ring, due))
    return len(due)


def _flag_server_queue(batch: int) -> int:
    since = timezone.now() - datetime.timedelta(minutes=settings.SERVER_QUEUE_STUCK_MINUTES)
    ids = Upload.objects.filter(
        status=Status.DELIVERED, stuck=False, status_since__lt=since
    ).values_list("pk", flat=True)[:batch]
    minutes = settings.SERVER_QUEUE_STUCK_MINUTES
    return sum(
        upload_mark_stuck(
            upload_id=upload_id,
            reason=StuckReason.SERVER_QUEUE,
            note=f"delivered more than {minutes} minutes ago and not yet public",
        )
        for upload_id in ids
    )


# --- Publication


def upload_mark_published(*, upload_id: int, images: list[str]) -> bool:
    """The public site lists the document: published, whichever way it got there. If it never
    came through here, the source is the public site."""
    upload = Upload.objects.filter(pk=upload_id).only("status", "document_id").first()
    if upload is None or upload.status == Status.PUBLISHED:
        return False
    changes = {
        "published_at": timezone.now(),
        "public_images": images,
        "stuck": False,
        "stuck_reason": "",
        "stuck_since": None,
        "lease_token": None,
        "lease_expires_at": None,
        "next_attempt_at": None,
    }
    if upload.document_id is None:
        changes["source"] = Source.PUBLIC_SITE
    won = upload_transition(
        upload_id=upload_id,
        expected=tuple(s for s in Status.values if s != Status.PUBLISHED),
        new=Status.PUBLISHED,
        action="published",
        source=Source.PUBLIC_SITE,
        reason=f"{len(images)} image(s) on the public site",
        changes=changes,
    )
    return won is not None
