"""Thin tasks: call a service."""

import logging

from celery import shared_task
from django.conf import settings

from public import mirror, services

logger = logging.getLogger(__name__)


@shared_task
def refresh_public_snapshot() -> None:
    """Beat's, every SNAPSHOT_REFRESH_SECONDS: one refresh per contest kind, each a task of its
    own, so that as many snapshot worker processes as there are kinds refresh them at once. A
    refresh not started within the period is dropped: the next period asks for it first."""
    for kind in services.snapshot_kinds_due():
        refresh_public_snapshot_of.apply_async((kind,), expires=settings.SNAPSHOT_REFRESH_SECONDS)


@shared_task
def refresh_public_snapshot_of(kind: str) -> None:
    refresh = services.snapshot_refresh(kind)
    if refresh is not None and refresh.left:
        logger.warning(
            "public snapshot %s: %d areas wait for the next refresh (%d rebuilt in %.1f s)",
            kind,
            refresh.left,
            refresh.rebuilt,
            refresh.seconds,
        )


@shared_task
def sweep_public_snapshot() -> None:
    services.snapshot_sweep()


@shared_task
def push_public_mirror() -> None:
    """Beat's, every PUBLIC_MIRROR_SECONDS when PUBLIC_S3_BUCKET is set."""
    push = mirror.mirror_push()
    if push is not None and push.failed:
        logger.warning(
            "public mirror: %d objects failed, %d wait (last error on the system page)",
            push.failed,
            push.left,
        )


@shared_task
def rebuild_public_candidates(kind: str) -> None:
    services.snapshot_candidates_rebuild(kind)
