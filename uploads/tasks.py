"""Thin tasks: load by id, call a service. Idempotent, because acks_late may run one twice."""

import structlog
from celery import shared_task

from uploads import delivery, poller
from uploads.services.delivery import upload_claim, upload_record_outcome
from uploads.services.sweeper import uploads_sweep
from uploads.services.tus import tus_uploads_expire


@shared_task
def deliver_upload(upload_id: int) -> None:
    with structlog.contextvars.bound_contextvars(upload_id=upload_id):
        lease = upload_claim(upload_id=upload_id)
        if lease is None:
            return
        with structlog.contextvars.bound_contextvars(tps=lease.tps_code, contest=lease.kind):
            upload_record_outcome(lease=lease, outcome=delivery.deliver(lease))


@shared_task
def sweep_uploads() -> None:
    uploads_sweep()


@shared_task
def poll_public_site() -> None:
    # Beat fires every POLL_INTERVAL_SECONDS; a poll still running makes the next one skip.
    poller.poll_exclusively()


@shared_task
def expire_tus_uploads() -> None:
    tus_uploads_expire()
