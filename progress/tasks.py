"""Thin tasks: call a service."""

from celery import shared_task

from progress import services


@shared_task
def fold_progress() -> None:
    services.progress_fold()
