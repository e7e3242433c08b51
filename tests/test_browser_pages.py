"""The pages as people read them, at a phone's size and at a laptop's, in a real Chromium: the
figure without scrolling on a phone, nothing wider than the screen (or a table that says it
scrolls), one time zone, the area's. Screenshots: test-artifacts/pages-<page>-<size>.png."""

from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone
from playwright.sync_api import expect

from regions import demo
from tests.conftest import PROJECT_DIR
from tests.documents import page_file
from tests.world import publish_all_but
from uploads.delivery import Outcome
from uploads.models import PublicAreaProgress, StuckReason, Upload
from uploads.progress.services import timeline_point_take
from uploads.services.delivery import upload_claim, upload_record_outcome
from uploads.services.intake import upload_receive
from uploads.services.stuck import upload_mark_stuck

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ARTIFACTS = PROJECT_DIR / "test-artifacts"
SIZES = {"phone": {"width": 390, "height": 844}, "laptop": {"width": 1366, "height": 900}}
# The story's last three TPS, one in each desa of the seed story.
STUCK = [f"{desa}001" for desa in demo.STUCK_DESA]
LABANGKA_TPS = STUCK[1]
PAGES = {
    "home": "/",
    "kecamatan": f"/progress/pkwkk/{demo.BABULU}/",
    "desa": f"/progress/pkwkk/{LABANGKA_TPS[:10]}/",
    "stuck-tps": f"/progress/pkwkk/{LABANGKA_TPS}/",
    "dashboard": "/dashboard/pkwkk/6409/",
}
# What shows the page's state first: the area's percentage, or a TPS's status.
FIGURE = {"stuck-tps": ".big-status"}


@pytest.fixture
def morning(ppu, kpu_staff):
    """PPU the morning after: 290 of 293 published, the story's three stuck in Babulu after
    failing for an hour, the KPU site read, a timeline with a past."""
    timeline_point_take(at=timezone.now() - timedelta(minutes=50))
    publish_all_but(*STUCK)
    for tps in STUCK:
        receipt = upload_receive(tps_code=tps, kind="pkwkk", files=[page_file()], user=kpu_staff)
        lease = upload_claim(upload_id=receipt.upload.pk)
        error = Outcome("transient", "timeout: The read operation timed out", network=True)
        upload_record_outcome(lease=lease, outcome=error)
        upload_mark_stuck(upload_id=receipt.upload.pk, reason=StuckReason.NETWORK)
    Upload.objects.filter(tps_id__in=STUCK).update(
        failing_since=timezone.now() - timedelta(hours=1)
    )
    PublicAreaProgress.objects.create(
        kind="pkwkk", area_code="6409", total=293, published=290, site_ts="2024-11-28 06:00:00"
    )
    kpu_staff.first_name = "Sri"
    kpu_staff.save()


def logged_in(context, live_server) -> None:
    page = context.new_page()
    page.goto(f"{live_server.url}/masuk/")
    page.get_by_label("Nama pengguna").fill("kpu")
    page.get_by_label("Sandi").fill("rahasia-sekali")
    page.get_by_role("button", name="Masuk").click()
    page.wait_for_url(f"{live_server.url}/dashboard/pkwkk/6409/")
    page.close()


def overflowing_tables_without_a_hint(page) -> list[str]:
    return page.evaluate(
        """() => [...document.querySelectorAll(".scroll")]
            .filter((box) => box.scrollWidth > box.clientWidth + 1)
            .filter((box) => {
                const hint = box.previousElementSibling;
                return !(hint && hint.classList.contains("scroll-hint") && !hint.hidden
                         && hint.getBoundingClientRect().height > 0);
            })
            .map((box) => box.getAttribute("aria-labelledby") || box.className)"""
    )


@pytest.mark.parametrize("size", list(SIZES))
def test_every_page_shows_its_figure_first_fits_the_screen_and_speaks_the_areas_zone(
    browser, live_server, morning, size
):
    viewport = SIZES[size]
    context = browser.new_context(viewport=viewport, is_mobile=size == "phone")
    logged_in(context, live_server)
    page = context.new_page()
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    for name, path in PAGES.items():
        page.goto(live_server.url + path)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / f"pages-{name}-{size}.png", full_page=True)
        # Nothing wider than the screen, or a table that says it scrolls.
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"], name
        assert overflowing_tables_without_a_hint(page) == [], name
        # The area (or TPS) and its figure without scrolling.
        for selector in ("h1", FIGURE.get(name, ".big-percent")):
            box = page.locator(selector).bounding_box()
            assert box["y"] + box["height"] <= viewport["height"], (name, selector)
        # One zone: PPU's.
        body = page.locator("main").inner_text()
        assert "WITA" in body and "WIB" not in body, name
    assert "Sri" in page.locator(".staff-nav").inner_text()
    assert errors == []
    context.close()


def test_a_poll_while_the_database_is_away_keeps_the_figures_and_the_page_polls_on(
    browser, live_server, morning, monkeypatch
):
    """PostgreSQL restarting: the dashboard's poll gets a 503; the page keeps showing the last
    figures (htmx 4 would put the error page in their place) and the next poll brings the new."""
    context = browser.new_context()
    logged_in(context, live_server)
    page = context.new_page()
    page.goto(f"{live_server.url}/dashboard/pkwkk/6409/")
    big = page.locator(".big-percent")
    before = big.inner_text()

    def database_gone(**kwargs):
        raise OperationalError("the database system is shutting down")

    with monkeypatch.context() as away:
        away.setattr("dashboard.views.area_page", database_gone)
        with page.expect_response(lambda response: response.status == 503, timeout=15_000):
            pass
        page.wait_for_timeout(500)  # the swap the 503 would have made
        assert big.inner_text() == before
        assert page.locator("#live[hx-trigger]").count() == 1
    publish_all_but(*STUCK[1:])  # the database back, and one more TPS published
    expect(big).not_to_have_text(before, timeout=15_000)
    assert page.locator(".big-percent").inner_text() == "99,31%"  # 291/293, cut as the KPU does
    context.close()
