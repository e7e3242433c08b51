"""What anyone sees on the public progress pages, on a phone, in a real Chromium: the figure
moves without a reload, nothing breaks the Content-Security-Policy, the page is usable by
keyboard. The screenshots are saved under test-artifacts/public-*.png."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from simulator.kpps import form_png
from tests.conftest import PROJECT_DIR
from tests.documents import page_bytes, page_file
from tests.test_public_pages import mark_stuck_by_an_operator
from tests.world import LABANGKA, move, publish_all_but
from uploads.models import Status
from uploads.progress.services import timeline_point_take
from uploads.services.intake import upload_receive

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ARTIFACTS = PROJECT_DIR / "test-artifacts"
LEFT = [f"{LABANGKA}{number:03d}" for number in (1, 2, 3, 4)]  # not yet published
BABULU_ROW = "#area-640903"
PHONE = {"width": 390, "height": 844}


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"public-{name}.png", full_page=True)


@pytest.fixture
def phone(browser):
    """A phone-sized page that records console errors and CSP violations."""
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True)
    page = context.new_page()
    page.errors = []
    page.on(
        "console",
        lambda message: message.type in ("error", "warning") and page.errors.append(message.text),
    )
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    context.close()


@pytest.fixture
def night(ppu, kpu_staff):
    """PPU the morning after: all but four TPS of a Babulu desa published, one of those stuck
    (marked by an operator, with a note), one received and waiting; the timeline has a past."""
    publish_all_but(*LEFT)
    move(LEFT[1], Status.RETRYING)
    mark_stuck_by_an_operator(LEFT[1])
    upload_receive(tps_code=LEFT[2], kind="pkwkk", files=[page_file(page_bytes())], user=kpu_staff)
    timeline_point_take(at=timezone.now() - timedelta(minutes=10))


def test_a_visitor_on_a_phone_watches_ppu_reach_290_of_293_without_reloading(
    phone, live_server, night, kpu_staff, celery_worker, celery_beat
):
    phone.goto(f"{live_server.url}/progress/pkwkk/6409/")
    # The poll's answer is in the snapshot before the change, as on the night: what brings the
    # change is the workers' refresh (beat, every 3 s), not a first build.
    assert phone.request.get(f"{live_server.url}/progress/pkwkk/6409/?part=live").ok
    big = phone.locator(".big-percent")
    assert big.inner_text() == "98,63%"  # 289/293
    assert phone.locator("progress.bar").get_attribute("aria-valuetext") == "98,63%"
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    phone.evaluate("window.notReloaded = true")
    polls = []
    phone.on("request", lambda request: "/live.html" in request.url and polls.append(request))
    shot(phone, "ppu-phone-before")

    photo = page_file(form_png(LEFT[0]), "c-hasil.png", "image/png")
    receipt = upload_receive(tps_code=LEFT[0], kind="pkwkk", files=[photo], user=kpu_staff)
    move(LEFT[0], Status.PUBLISHED)
    # The workers rebuild the snapshot within seconds; the next poll (every 15 s) brings it.
    expect(big).to_have_text("98,97%", timeout=25_000)
    assert phone.evaluate("window.notReloaded") is True
    # Each poll asks the server, never the browser's stale-while-revalidate copy of the last one.
    assert polls
    assert all(poll.all_headers().get("cache-control") == "max-age=0" for poll in polls)
    assert "290 dari 293 TPS terpublikasi" in phone.locator(".of-total").inner_text()
    assert phone.locator(f"{BABULU_ROW} .percent").inner_text() == "95,08%"  # 58/61
    shot(phone, "ppu-phone-after")

    # Down to the desa and its TPS, by the links.
    phone.locator(f"{BABULU_ROW} a").click()
    phone.wait_for_url(re.compile(r"/progress/pkwkk/640903/$"))
    phone.locator(f"#area-{LABANGKA} a").click()
    phone.wait_for_url(re.compile(rf"/progress/pkwkk/{LABANGKA}/$"))
    assert "terpublikasi" in phone.locator(f"#tps-{LEFT[0]}").inner_text()
    assert "jaringan" in phone.locator(f"#tps-{LEFT[1]}").inner_text()
    shot(phone, "labangka-phone")

    phone.locator(f"#tps-{LEFT[0]} th a").click()
    phone.wait_for_url(re.compile(rf"/progress/pkwkk/{LEFT[0]}/$"))
    image = phone.locator(".document-pages img")
    image.scroll_into_view_if_needed()
    # Lazy: fetched once in view, after the page's load event; expect waits for it.
    expect(image).to_have_js_property("naturalWidth", 240)
    assert receipt.document.pages.get().sha256 in phone.locator(".document-pages").inner_text()
    shot(phone, "tps-published-phone")
    assert phone.errors == []


def test_a_stuck_tps_reads_its_status_and_reason_without_the_operators_words(
    phone, live_server, night
):
    phone.goto(f"{live_server.url}/en/progress/pkwkk/{LEFT[1]}/")
    summary = phone.locator(".summary").inner_text()
    assert "retrying" in summary
    assert "stuck: network" in summary
    body = phone.locator("body").inner_text()
    assert "Budi" not in body and "rusak" not in body
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(phone, "tps-stuck-phone-en")
    assert phone.errors == []


def test_the_home_page_is_usable_by_keyboard_and_breaks_no_policy(page, live_server, night):
    violations = []
    page.on("console", lambda message: message.type == "error" and violations.append(message.text))
    page.goto(f"{live_server.url}/")
    assert page.locator("h1").inner_text().startswith("Kabupaten PENAJAM PASER UTARA")
    assert page.evaluate("typeof htmx") == "object", "the vendored htmx did not load"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    shot(page, "home")
    assert violations == []
