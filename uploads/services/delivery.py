"""Sending documents: the news that there is work (`deliveries_enqueue`), a worker's lease on
one upload (`upload_claim`) and what the publication server's answer means for it
(`upload_record_outcome`): delivered, retried with backoff (and flagged stuck when overdue), or
rejected.

PostgreSQL is the source of truth and Redis only carries the news: a task is sent after commit,
and the sweeper (uploads.services.sweeper) sends again for anything due whose task went unanswered.
"""

import datetime
import random
import uuid
from functools import cache

import structlog
from celery import current_app
from django.conf import settings
from django.db import connection
from django.db.models import F, QuerySet
from django.utils import timezone
from kombu.exceptions import OperationalError

from uploads import counters
from uploads.delivery import Lease, Outcome, OutcomeKind, PageFile
from uploads.models import Action, Page, Status, StuckReason, Upload
from uploads.services.stuck import flag_again_after, upload_mark_stuck
from uploads.services.transitions import upload_transition

logger = structlog.get_logger(__name__)

# Sent by name: the task module imports these services, not the other way round.
DELIVER_TASK = "uploads.tasks.deliver_upload"


def deliveries_enqueue(upload_ids: list[int]) -> None:
    """Sends one delivery task per upload. Redis being down is not an error here: the rows are
    committed, so they are marked not enqueued and the sweeper sends them when Redis is back."""
    for position, upload_id in enumerate(upload_ids):
        try:
            # declare=[]: the queue is not declared first. Over Redis a task is an LPUSH onto the
            # list its queue names, declared or not, and the worker declares the queues it takes
            # from as it starts; the declaration, though cached per connection, cost every send
            # a copy of the queue bound to the channel. (A new list each time: kombu may add to it.)
            current_app.send_task(DELIVER_TASK, args=[upload_id], declare=[])
        except (OperationalError, ConnectionError, OSError) as error:
            logger.warning(
                "enqueueing failed; the sweeper will enqueue again",
                error=str(error),
                uploads=len(upload_ids) - position,
            )
            Upload.objects.filter(pk__in=upload_ids[position:]).update(dispatched_at=None)
            return


def upload_claim(*, upload_id: int) -> Lease | None:
    """Takes a lease on a due upload for one delivery attempt, or None if it is not ours to send.

    Only a due row is claimed, so a late duplicate task for an upload waiting out its backoff
    does nothing.
    """
    token = uuid.uuid4()
    expires = timezone.now() + datetime.timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)
    won = upload_transition(
        upload_id=upload_id,
        expected=Status.WAITING_TO_SEND,
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
    return _lease(upload_id, token)


def _lease(upload_id: int, token: uuid.UUID) -> Lease:
    """The lease on the upload's current document, its pages in order: one query, of values
    only (building model instances across four tables cost more than a second query). Only an
    upload with a document waits to be sent (intake sets both in one transition), and a
    document has at least one page."""
    with connection.cursor() as cursor:
        cursor.execute(_lease_sql(), [upload_id])
        rows = cursor.fetchall()
    assert rows, f"upload {upload_id} is waiting to be sent without a document"
    _, _, sha256, tps, kind, attempts, failing_since = rows[0]
    pages = [PageFile(name, content_type) for name, content_type, *_ in rows]
    return Lease(upload_id, token, kind, tps, sha256, pages, attempts, failing_since)


def _lease_query(upload_id: int) -> QuerySet:
    return (
        Page.objects.filter(document__upload=upload_id, document=F("document__upload__document"))
        .order_by("number")
        .values_list(
            "file",
            "content_type",
            "document__sha256",
            "document__upload__tps_id",
            "document__upload__contest__kind",
            "document__upload__attempts",
            "document__upload__failing_since",
        )
    )


@cache
def _lease_sql() -> str:
    """The lease's SQL as the ORM writes it, built once: building it cost about 0.8 ms of CPU a
    delivery, more than PostgreSQL's answer. Its one parameter is the upload's id; none of its
    columns has a converter on PostgreSQL, so the rows are what values_list would give."""
    sql, parameters = _lease_query(0).query.sql_with_params()
    assert parameters == (0,), parameters
    return sql


def upload_record_outcome(*, lease: Lease, outcome: Outcome) -> bool:
    """Writes the result of a delivery attempt, fenced by the lease: a worker whose lease expired
    (and whose upload another worker took over) cannot overwrite newer state."""
    now = timezone.now()
    released = {"lease_token": None, "lease_expires_at": None}
    # The lease fences the write, so the failing_since it read at the claim is still current.
    failed = {**released, "last_error": outcome.reason, "failing_since": lease.failing_since or now}
    if outcome.kind == OutcomeKind.ACCEPTED:
        changes = {
            **released,
            "delivered_at": now,
            "next_attempt_at": None,
            "last_error": "",
            "failing_since": None,
        }
        new, action = Status.DELIVERED, Action.DELIVERED
    elif outcome.kind == OutcomeKind.PERMANENT:
        changes = {**failed, "next_attempt_at": None}
        new, action = Status.REJECTED, Action.REJECTED
    else:
        delay = _retry_delay(lease.attempt, outcome.retry_after)
        changes = {**failed, "next_attempt_at": now + datetime.timedelta(seconds=delay)}
        new, action = Status.RETRYING, Action.RETRY
    counters.delivery_count(outcome=outcome.kind)
    waits = {"retry_in_seconds": round(delay, 1)} if outcome.kind == OutcomeKind.TRANSIENT else {}
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
    if won and outcome.kind == OutcomeKind.TRANSIENT:
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
    upload = (
        Upload.objects.filter(pk=upload_id, stuck=False)
        .filter(flag_again_after(settings.STUCK_AFTER_MINUTES))
        .only("attempts", "queued_at")
        .first()
    )
    if upload is None:
        return
    waited = timezone.now() - (upload.queued_at or timezone.now())
    too_long = waited >= datetime.timedelta(minutes=settings.STUCK_AFTER_MINUTES)
    if upload.attempts >= settings.STUCK_AFTER_ATTEMPTS or too_long:
        reason = StuckReason.NETWORK if outcome.network else StuckReason.SERVER_QUEUE
        # The note is the last error as the server gave it: pages show what it means.
        upload_mark_stuck(upload_id=upload_id, reason=reason, note=outcome.reason)
