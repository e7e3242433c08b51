"""Thin tasks: call a service."""

import logging

from celery import shared_task

from public import services

logger = logging.getLogger(__name__)


@shared_task
def refresh_public_snapshot() -> None:
    refresh = services.snapshot_refresh()
    if refresh is not None and refresh.left:
        logger.warning(
            "public snapshot: %d areas wait for the next refresh (%d rebuilt in %.1f s)",
            refresh.left,
            refresh.rebuilt,
            refresh.seconds,
        )


@shared_task
def sweep_public_snapshot() -> None:
    services.snapshot_sweep()
