"""The refresh reads many areas' page data together (public.selectors.public_area_pages,
public.services REBUILD_BATCH) and keeps the page around an area's figures from one build to the
next (public.entries._area_page): what it writes must be, byte for byte, what a first request
builds for each entry on its own with the page drawn afresh."""

import shutil
from datetime import UTC, datetime, timedelta

import pytest

from public import snapshots
from public.entries import home_name, page_name
from public.services import snapshot_entry, snapshot_refresh
from public.snapshots import Entry, Key
from regions.models import Area, Level
from tests.world import BABULU, LABANGKA, LABANGKA_TPS, PENAJAM, PPU, SEPAKU, SEPAKU_TPS, move
from uploads.models import PublicAreaProgress, Status, StuckReason, Upload
from uploads.progress.services import progress_fold, timeline_point_take
from uploads.services.stuck import upload_mark_stuck

pytestmark = pytest.mark.usefixtures("ppu")
KINDS = ("pkwkk", "pkwkp")
AREAS = ("", "64", PPU, PENAJAM, BABULU, SEPAKU, LABANGKA, LABANGKA_TPS, SEPAKU_TPS)
NIGHT = datetime(2024, 11, 27, 13, tzinfo=UTC)


def every_name() -> list[str]:
    """Every entry an area or a TPS may have (those it has not are None both ways)."""
    names = ["hhcw.json", "wilayah.json", "progress.csv"]
    for language in ("id", "en"):
        names.append(home_name(language))
        for part in ("page", "live", "timeline"):
            names += [page_name(language=language, part=part, sort=sort) for sort in SORTS]
    return names


SORTS = ("code", "progress", "stuck")


def a_busy_night(time_machine) -> None:
    """Published, delivered and queued TPS, stuck ones of every reason, the public site's
    figures and timeline points: every row and branch the pages draw."""
    uploads = list(Upload.objects.order_by("tps_id", "contest_id").values_list("pk", flat=True))
    statuses = [Status.PUBLISHED, Status.DELIVERED, Status.QUEUED, Status.RETRYING]
    for step, pk in enumerate(uploads[::2]):
        time_machine.shift(timedelta(seconds=13))
        _move(pk, statuses[step % len(statuses)])
        if step % 7 == 1:
            upload_mark_stuck(upload_id=pk, reason=list(StuckReason)[step % len(StuckReason)])
        if step % 40 == 0:
            progress_fold()
            timeline_point_take()
    for kind, code, published, children in [
        ("pkwkk", PPU, 120, {PENAJAM: 30, BABULU: 41}),
        ("pkwkk", "", 5, {}),
        ("pkwkp", "64", 99, {PPU: 99}),
    ]:
        PublicAreaProgress.objects.create(
            kind=kind, area_code=code, total=293, published=published,
            site_ts="2024-11-27 21:00:00", children=children,
        )  # fmt: skip
    progress_fold()
    timeline_point_take()


def _move(pk: int, status: str) -> None:
    upload = Upload.objects.get(pk=pk)
    move(upload.tps_id, status, kind=upload.contest.kind)


def same_host(entry: Entry | None) -> Entry | None:
    """The entry with the token of a TPS file's host (a random one) made the same."""
    if entry is None or not entry.base_url_token:
        return entry
    body = entry.body.replace(entry.base_url_token.encode(), b"HOST")
    return Entry(body, entry.content_type, entry.etag, entry.built_at, entry.headers, "HOST")


def test_a_refresh_writes_every_entry_as_its_first_request_builds_it(
    settings, snapshot_root, time_machine, monkeypatch
):
    settings.SNAPSHOT_READ_WINDOW_SECONDS = 10**6  # every entry counts as read
    time_machine.move_to(NIGHT, tick=False)
    a_busy_night(time_machine)
    keys = [Key(kind, code, name) for kind in KINDS for code in AREAS for name in every_name()]
    for key in keys:
        snapshot_entry(key)
    for kind in KINDS:
        snapshot_refresh(kind, budget_seconds=60)
    time_machine.shift(timedelta(minutes=2))
    for tps in Area.objects.filter(level=Level.TPS, code__startswith=BABULU).values_list(
        "code", flat=True
    )[:30]:
        move(tps, Status.PUBLISHED)
    upload_mark_stuck(
        upload_id=Upload.objects.get(tps_id=SEPAKU_TPS, contest__kind="pkwkk").pk,
        reason=StuckReason.DEVICE,
    )
    for kind in KINDS:
        snapshots.state_path(kind).unlink()  # the next refresh rebuilds every entry
        assert snapshot_refresh(kind, budget_seconds=60).rebuilt >= 8
    refreshed = {key: same_host(snapshots.entry_read(key)) for key in keys}
    assert sum(entry is not None for entry in refreshed.values()) > 150
    shutil.rmtree(snapshot_root)
    # And the pages around the figures drawn afresh, not kept from the first builds.
    monkeypatch.setattr("public.entries._shells", {})
    first_requests = {key: same_host(snapshot_entry(key)) for key in keys}
    assert [key for key in keys if refreshed[key] != first_requests[key]] == []
