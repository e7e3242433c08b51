"""Every write to uploads: intake, the status transitions of delivery and polling, the sweeper.

Times come from the application's clock (timezone.now()), not PostgreSQL's now(), which stands
still for a whole transaction.

Rules (docs/design.md): a status changes only through `upload_transition`, a compare-and-swap on the
expected status that writes an UploadEvent in the same transaction; zero rows means someone else
won. PostgreSQL is the source of truth and Redis only the doorbell: a task is sent after commit,
and the sweeper rings again for anything due whose doorbell went unanswered.
"""

import datetime
import functools
import hashlib
import logging
import random
import uuid
import weakref
from dataclasses import dataclass
from functools import partial

import structlog
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, Count, F, Model, Q, Value, When
from django.db.models.sql import Query
from django.utils import timezone

from regions.models import CODE_LENGTH, ContestKind, Level
from uploads import counters, documents
from uploads.models import (
    REPLACEABLE,
    WAITING_TO_SEND,
    Action,
    Document,
    Page,
    Source,
    Status,
    StuckReason,
    Upload,
)

logger = structlog.get_logger(__name__)


class UploadRefused(Exception):
    """An upload that cannot be taken, with the HTTP status that says why."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


# --- Transitions

# Every status but published: what may still be published, or flagged stuck.
UNPUBLISHED = tuple(status for status in Status.values if status != Status.PUBLISHED)

# A transition is one statement: one round trip, atomic without a transaction of its own.
# `locked` takes the row only if it is still in an expected state and passes the guard, and
# carries its old status and stuck flag out (UPDATE ... RETURNING shows only the new row before
# PostgreSQL 18). The event and the progress change (progress/models.py) read `moved`: when
# someone else won, nothing is locked and nothing is written. A NULL new status keeps the status
# (a change of the stuck flag alone).
_TRANSITION = """
    WITH locked AS (
        SELECT id, status, stuck FROM uploads_upload
        WHERE id = {upload_id} AND status = ANY({expected}){guard}
        FOR UPDATE
    ), moved AS (
        UPDATE uploads_upload
        SET status = coalesce({new}, locked.status),
            status_since = CASE WHEN coalesce({new}, locked.status) = locked.status
                THEN uploads_upload.status_since ELSE {now} END{assignments}
        FROM locked WHERE uploads_upload.id = locked.id
        RETURNING uploads_upload.id AS upload_id, uploads_upload.contest_id,
            uploads_upload.tps_id, locked.status AS old_status, uploads_upload.status AS new_status,
            locked.stuck AS was_stuck, uploads_upload.stuck AS is_stuck,
            uploads_upload.stuck_reason
    ), event AS (
        INSERT INTO uploads_uploadevent (upload_id, action, old_status, new_status, stuck_reason,
            actor_id, source, reason, created_at)
        SELECT upload_id, {action}, old_status, new_status, stuck_reason,
            {actor}, {source}, {reason}, {now}
        FROM moved
    ), counted AS ({count})
    SELECT moved.old_status, moved.new_status, moved.tps_id, contest.kind
    FROM moved JOIN regions_contest contest ON contest.id = moved.contest_id
"""
# Its parameters, in their $n order; those of the changes and the guard follow.
_PARAMETERS = ("upload_id", "expected", "new", "now", "action", "actor", "source", "reason")

# Django lookups a guard may use, as in filter(); `exact` as IS NOT DISTINCT FROM, so that None
# means NULL as it does in filter().
_GUARD_OPERATORS = {"exact": "IS NOT DISTINCT FROM", "lt": "<", "lte": "<="}


def upload_transition(
    *,
    upload_id: int,
    expected: tuple[str, ...],
    new: str | None,
    action: str,
    source: str = Source.SYSTEM,
    actor=None,
    reason: str = "",
    guard: dict | None = None,
    changes: dict | None = None,
) -> str | None:
    """Moves an upload from one of `expected` to `new` (None: the status stays), applying
    `changes`, with its event and its progress change, all or nothing.

    `guard` adds conditions, as filter() lookups (a lease token, a deadline). A value in `changes`
    may be an expression over the upload's columns (F("attempts") + 1). Returns the old status,
    or None when the upload was not in an expected state any more: someone else won, and nothing
    was written.
    """
    changes, guard = changes or {}, guard or {}
    # An expression is part of the statement (of its shape); a value is a parameter.
    shape = tuple((name, _expression(value)) for name, value in changes.items())
    statement = _statement(shape, tuple(guard))
    values = {
        "upload_id": upload_id,
        "expected": [str(status) for status in expected],
        "new": new,
        "now": timezone.now(),
        "action": action,
        "actor": actor.pk if actor is not None else None,
        "source": source,
        "reason": reason[:2000],
        **_values(changes, shape, guard),
    }
    row = _execute(statement, [values[name] for name in statement.parameters])
    if row is None:
        return None
    old, now, tps, kind = row
    _log_transition(upload_id, action, old=old, new=now, tps=tps, kind=kind, reason=reason)
    return old


# A claim is one step of a delivery whose outcome gets a line of its own.
_QUIET_ACTIONS = {Action.CLAIMED}


def _log_transition(upload_id: int, action: str, *, old, new, tps, kind, reason: str) -> None:
    """One line per change of an upload, with the upload, its TPS and its contest (and whatever
    the caller bound: a request id, a task id, the attempt)."""
    level = logging.DEBUG if action in _QUIET_ACTIONS else logging.INFO
    fields = {"upload_id": upload_id, "tps": tps, "contest": kind, "from": old, "to": new}
    logger.log(level, f"upload {action}", **fields, **({"reason": reason} if reason else {}))


def _values(changes: dict, shape: tuple, guard: dict) -> dict:
    """The parameters of `changes` (its values, not its expressions) and of `guard`."""
    values = {}
    for name, sql in shape:
        if not sql:
            value = changes[name]
            value = value.pk if isinstance(value, Model) else value
            values[f"set_{name}"] = _field(name).get_db_prep_save(value, connection)
    for lookup, value in guard.items():
        name, _ = _lookup(lookup)
        values[f"guard_{lookup}"] = _field(name).get_db_prep_value(value, connection)
    return values


@dataclass(frozen=True)
class _Statement:
    """The transition of one shape (the columns it sets, its expressions, the lookups of its
    guard), as a prepared statement: PostgreSQL then neither parses nor plans it again, which is
    about half of what a transition costs it."""

    name: str
    prepare: str
    execute: str
    parameters: tuple[str, ...]


@functools.lru_cache(maxsize=64)
def _statement(shape: tuple, guard: tuple[str, ...]) -> _Statement:
    from progress.services import progress_record_sql

    parameters = (
        *_PARAMETERS,
        *(f"set_{name}" for name, sql in shape if not sql),
        *(f"guard_{lookup}" for lookup in guard),
    )
    at = {name: f"${number}" for number, name in enumerate(parameters, 1)}
    assignments = "".join(f", {_column(name)} = {sql or at[f'set_{name}']}" for name, sql in shape)
    conditions = "".join(
        f" AND {_column(name)} {_GUARD_OPERATORS[operator]} {at[f'guard_{lookup}']}"
        for lookup in guard
        for name, operator in [_lookup(lookup)]
    )
    count = progress_record_sql(changes="moved")
    sql = _TRANSITION.format(**at, assignments=assignments, guard=conditions, count=count)
    # Named by its text: the same shape built again is the statement already prepared.
    name = f"upload_transition_{hashlib.sha256(sql.encode()).hexdigest()[:16]}"
    placeholders = ", ".join(["%s"] * len(parameters))
    return _Statement(
        name, f"PREPARE {name} AS {sql}", f"EXECUTE {name}({placeholders})", parameters
    )


# The statements prepared in each database session (connection). PostgreSQL keeps a prepared
# statement until the session ends, through rollbacks; a new connection prepares its own. (So
# nothing between Django and PostgreSQL may share sessions: no pooler in transaction mode.)
_PREPARED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _execute(statement: _Statement, parameters: list) -> tuple | None:
    with connection.cursor() as cursor:
        prepared = _PREPARED.setdefault(connection.connection, set())
        if statement.name not in prepared:
            cursor.execute(statement.prepare)
            prepared.add(statement.name)
        cursor.execute(statement.execute, parameters)
        return cursor.fetchone()


def _field(name: str):
    return Upload._meta.get_field(name)


def _column(name: str) -> str:
    return connection.ops.quote_name(_field(name).column)


def _lookup(lookup: str) -> tuple[str, str]:
    name, _, operator = lookup.partition("__")
    return name, operator or "exact"


def _expression(value) -> str:
    """An expression over the upload's columns as SQL; "" for a plain value."""
    return _expression_sql(value) if hasattr(value, "resolve_expression") else ""


@functools.lru_cache(maxsize=64)
def _expression_sql(expression) -> str:
    query = Query(Upload)
    resolved = expression.resolve_expression(query, allow_joins=False, for_save=True)
    sql, params = query.get_compiler(connection=connection).compile(resolved)
    # Its values inlined: it is part of the statement, which has parameters only for values.
    return connection.ops.compose_sql(sql, params)


def upload_mark_stuck(*, upload_id: int, reason: str, actor=None, note: str = "") -> bool:
    """Flags an upload stuck (a flag beside the status, cleared when it is published)."""
    old = upload_transition(
        upload_id=upload_id,
        expected=UNPUBLISHED,
        new=None,
        action=Action.STUCK,
        actor=actor,
        reason=note,
        guard={"stuck": False},
        changes={"stuck": True, "stuck_reason": reason, "stuck_since": timezone.now()},
    )
    return old is not None


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
        transaction.on_commit(partial(doorbell_ring, [upload.pk]))
    upload.refresh_from_db()
    return Receipt(upload, document, created=True)


def intake_target_check(*, tps_code: str, kind: str, user) -> None:
    """Refuses a malformed code or contest, a TPS outside the user's region (403, whether or not
    it exists: a code outside says nothing about what is there), an unknown TPS inside it and a
    contest not open there (400). Reads no page."""
    from accounts.selectors import user_may_act_on
    from regions.models import Area

    if not (tps_code.isascii() and tps_code.isdigit() and len(tps_code) == CODE_LENGTH[Level.TPS]):
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
        expected=REPLACEABLE,
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
            logger.warning(
                "doorbell failed; the sweeper will ring again",
                error=str(error),
                uploads=len(upload_ids) - position,
            )
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
    # The first failed attempt of this document, if any (Upload.failing_since).
    failing_since: datetime.datetime | None = None

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
        action=Action.CLAIMED,
        guard={"next_attempt_at__lte": timezone.now()},
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
        upload.failing_since,
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
    now = timezone.now()
    released = {"lease_token": None, "lease_expires_at": None}
    # The lease fences the write, so the failing_since it read at the claim is still current.
    failed = {**released, "last_error": outcome.reason, "failing_since": lease.failing_since or now}
    if outcome.kind == "accepted":
        changes = {
            **released,
            "delivered_at": now,
            "next_attempt_at": None,
            "last_error": "",
            "failing_since": None,
        }
        new, action = Status.DELIVERED, Action.DELIVERED
    elif outcome.kind == "permanent":
        changes = {**failed, "next_attempt_at": None}
        new, action = Status.REJECTED, Action.REJECTED
    else:
        delay = _retry_delay(lease.attempt, outcome.retry_after)
        changes = {**failed, "next_attempt_at": now + datetime.timedelta(seconds=delay)}
        new, action = Status.RETRYING, Action.RETRY
    counters.delivery_count(outcome=outcome.kind)
    waits = {"retry_in_seconds": round(delay, 1)} if outcome.kind == "transient" else {}
    with structlog.contextvars.bound_contextvars(attempt=lease.attempt, **waits):
        won = upload_transition(
            upload_id=lease.upload_id,
            expected=(Status.SENDING,),
            new=new,
            action=action,
            reason=outcome.reason,
            guard={"lease_token": lease.token},
            changes=changes,
        )
    if won is None:
        logger.warning(
            "delivery outcome dropped: the lease expired and another worker took the upload",
            upload_id=lease.upload_id,
            tps=lease.tps_code,
            contest=lease.kind,
            outcome=outcome.kind,
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
        # The note is the last error as the server gave it: pages show what it means.
        upload_mark_stuck(upload_id=upload_id, reason=reason, note=outcome.reason)


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
                action=Action.LEASE_EXPIRED,
                guard={"lease_expires_at__lt": timezone.now()},
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
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("pk", "tps_id", "contest__kind")[:batch]
        )
        ids = [upload_id for upload_id, _, _ in due]
        Upload.objects.filter(pk__in=ids).update(dispatched_at=timezone.now())
        transaction.on_commit(partial(doorbell_ring, ids))
    for upload_id, tps, kind in due:
        logger.info("upload due: doorbell rung", upload_id=upload_id, tps=tps, contest=kind)
    return len(due)


def _flag_server_queue(batch: int) -> int:
    since = timezone.now() - datetime.timedelta(minutes=settings.SERVER_QUEUE_STUCK_MINUTES)
    ids = Upload.objects.filter(
        status=Status.DELIVERED, stuck=False, status_since__lt=since
    ).values_list("pk", flat=True)[:batch]
    return sum(
        upload_mark_stuck(upload_id=upload_id, reason=StuckReason.SERVER_QUEUE) for upload_id in ids
    )


# --- Publication


# Published without a document of ours (the KPPS used the Sirekap app): the source is the public
# site.
_SOURCE_OF_PUBLISHED = Case(
    When(document__isnull=True, then=Value(Source.PUBLIC_SITE)), default=F("source")
)


def upload_mark_published(*, upload_id: int, images: list[str]) -> bool:
    """The public site lists the document: published, whichever way it got there. If it never
    came through here, the source is the public site."""
    won = upload_transition(
        upload_id=upload_id,
        expected=UNPUBLISHED,
        new=Status.PUBLISHED,
        action=Action.PUBLISHED,
        source=Source.PUBLIC_SITE,
        changes={
            "published_at": timezone.now(),
            "public_images": images,
            "stuck": False,
            "stuck_reason": "",
            "stuck_since": None,
            "lease_token": None,
            "lease_expires_at": None,
            "next_attempt_at": None,
            "failing_since": None,
            "source": _SOURCE_OF_PUBLISHED,
        },
    )
    return won is not None
