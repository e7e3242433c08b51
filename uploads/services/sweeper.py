"""What beat runs every few seconds (SWEEP_INTERVAL_SECONDS): the sweeper takes back uploads whose
worker died (their lease expired), enqueues again what is due and whose task went unanswered (a
message lost with Redis, or waiting behind a long queue), and flags deliveries left too long in
the server queue. Every claim is SKIP LOCKED: two sweepers never wait on each other."""

import datetime
from dataclasses import dataclass
from functools import partial

import structlog
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from uploads.models import Action, Status, StuckReason, Upload
from uploads.services.delivery import deliveries_enqueue
from uploads.services.stuck import flag_again_after, upload_mark_stuck
from uploads.services.transitions import upload_transition

logger = structlog.get_logger(__name__)


@dataclass
class SweepResult:
    enqueued: int
    leases_expired: int
    flagged_in_server_queue: int


def uploads_sweep(*, batch: int = 1000) -> SweepResult:
    """What beat runs every few seconds: take back expired leases, enqueue again due uploads
    whose task went unanswered, and flag deliveries that sit too long in the server queue."""
    expired = _expire_leases(batch)
    enqueued = _enqueue_due(batch)
    flagged = _flag_server_queue(batch)
    return SweepResult(enqueued, expired, flagged)


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


def _enqueue_due(batch: int) -> int:
    grace = datetime.timedelta(seconds=settings.DISPATCH_GRACE_SECONDS)
    unanswered = Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=timezone.now() - grace)
    with transaction.atomic():
        # SKIP LOCKED: two sweepers (or a sweeper and an intake) never wait on each other.
        due = list(
            Upload.objects.filter(
                status__in=Status.WAITING_TO_SEND, next_attempt_at__lte=timezone.now()
            )
            .filter(unanswered)
            .order_by("next_attempt_at")
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("pk", "tps_id", "contest__kind")[:batch]
        )
        ids = [upload_id for upload_id, _, _ in due]
        Upload.objects.filter(pk__in=ids).update(dispatched_at=timezone.now())
        transaction.on_commit(partial(deliveries_enqueue, ids))
    for upload_id, tps, kind in due:
        logger.info("upload due: enqueued again", upload_id=upload_id, tps=tps, contest=kind)
    return len(due)


def _flag_server_queue(batch: int) -> int:
    since = timezone.now() - datetime.timedelta(minutes=settings.SERVER_QUEUE_STUCK_MINUTES)
    ids = (
        Upload.objects.filter(status=Status.DELIVERED, stuck=False, status_since__lt=since)
        .filter(flag_again_after(settings.SERVER_QUEUE_STUCK_MINUTES))
        .values_list("pk", flat=True)[:batch]
    )
    return sum(
        upload_mark_stuck(upload_id=upload_id, reason=StuckReason.SERVER_QUEUE) for upload_id in ids
    )
