"""Thin tasks: call a service."""

from celery import shared_task

from progress import services


@shared_task
def fold_progress() -> None:
    services.progress_fold()


@shared_task
def snapshot_progress() -> None:
    services.progress_snapshot_take()


@shared_task
def compact_progress_snapshots() -> None:
    services.progress_snapshots_compact()
