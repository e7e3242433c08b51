"""Thin tasks: call a service."""

from celery import shared_task

from uploads.progress import services


@shared_task
def fold_progress() -> None:
    services.progress_fold()


@shared_task
def take_timeline_points() -> None:
    services.timeline_point_take()


@shared_task
def compact_timeline_points() -> None:
    services.timeline_points_compact()
