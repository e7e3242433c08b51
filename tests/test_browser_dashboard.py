"""What KPU staff see on the dashboard, in a real Chromium, while the real pipeline runs.

A live server, a Celery worker and beat, the publication server stand-in: one more upload goes
in through intake, the worker delivers it, beat's poller finds it on the stand-in's public JSON,
and the open page moves without being reloaded. The screenshots are saved under test-artifacts/.
"""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from simulator.kpps import form_png
from tests.conftest import PROJECT_DIR, wait_until
from tests.documents import page_file
from tests.test_pipeline import pipeline_env, staff, start_beat, start_worker, world  # noqa: F401
from tests.world import LABANGKA, publish_all_but
from uploads.progress.services import timeline_point_take
from uploads.services.intake import upload_receive

pytestmark = [pytest.mark.browser, pytest.mark.pipeline, pytest.mark.django_db(transaction=True)]
ARTIFACTS = PROJECT_DIR / "test-artifacts"
LEFT = [f"{LABANGKA}{number:03d}" for number in (1, 2, 3, 4)]  # not yet published
BABULU_ROW = "#area-640903"


def log_in(page, url: str) -> None:
    user = staff()
    user.set_password("rahasia-sekali")
    user.save()
    page.goto(f"{url}/masuk/")
    page.get_by_label("Nama pengguna").fill("kpu")
    page.get_by_label("Sandi").fill("rahasia-sekali")
    page.get_by_role("button", name="Masuk").click()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"dashboard-{name}.png", full_page=True)


@pytest.fixture
def pipeline(world, publication_server_factory, start_process, tmp_path):  # noqa: F811
    publish_all_but(*LEFT)
    # Where the night stood ten minutes ago, as beat's minutely snapshots would have kept it.
    timeline_point_take(at=timezone.now() - timedelta(minutes=10))
    server = publication_server_factory(publish_delay_s=0)
    env = pipeline_env(world, server)
    worker = start_worker(start_process, env)
    beat = start_beat(start_process, env, tmp_path)
    # Running before the page opens: the wait below is the pipeline's, not the processes' start.
    wait_until(lambda: "ready." in worker.output(), timeout=60)
    wait_until(lambda: "Sending due task" in beat.output(), timeout=60)
    return server


def test_staff_watch_one_more_tps_arrive_and_drill_down_to_its_desa(
    browser, page, live_server, pipeline
):
    log_in(page, live_server.url)
    page.wait_for_url(re.compile(r"/dashboard/pkwkk/6409/$"))
    big = page.locator(".big-percent")
    assert big.inner_text() == "98,63%"  # 289/293
    assert page.locator(f"{BABULU_ROW} .percent").inner_text() == "93,44%"  # 57/61
    assert page.locator("progress.bar").get_attribute("value") == "289"
    page.evaluate("window.notReloaded = true")
    shot(page, "ppu-before")

    photo = page_file(form_png(LEFT[0]), "c-hasil.png", "image/png")
    upload_receive(tps_code=LEFT[0], kind="pkwkk", files=[photo], user=staff())

    # Delivery, the poller's next round (every second here), the fold of the counts (every 2 s)
    # and the page's next poll (5 s); with room for a machine busy with other tests.
    # (expect, not wait_for_function: the latter evaluates a string, which the CSP forbids.)
    expect(big).to_have_text("98,97%", timeout=20_000)
    assert page.evaluate("window.notReloaded") is True
    assert page.locator("progress.bar").get_attribute("value") == "290"
    assert page.locator(f"{BABULU_ROW} .percent").inner_text() == "95,08%"  # 58/61
    assert "290 dari 293 TPS terpublikasi" in page.locator(".of-total").inner_text()
    assert page.locator("svg.timeline-chart").is_visible()
    shot(page, "ppu-after")

    page.locator(f"{BABULU_ROW} a").click()
    page.wait_for_url(re.compile(r"/dashboard/pkwkk/640903/$"))
    assert page.locator("h1").inner_text().startswith("Kecamatan BABULU")
    assert page.locator(f"#area-{LABANGKA} .percent").inner_text() != ""
    shot(page, "babulu")

    page.locator(f"#area-{LABANGKA} a").click()
    page.wait_for_url(re.compile(rf"/dashboard/pkwkk/{LABANGKA}/$"))
    arrived = page.locator(f"#tps-{LEFT[0]}")
    assert "terpublikasi" in arrived.inner_text()
    photo = arrived.locator("img")
    photo.scroll_into_view_if_needed()
    # Lazy: fetched once in view, after the page's load event; expect waits for it.
    expect(photo).to_have_js_property("naturalWidth", 240)
    assert "belum ada" in page.locator(f"#tps-{LEFT[1]}").inner_text()
    shot(page, "labangka")

    # The same kabupaten on a phone: the figure fits, only the tables scroll sideways.
    phone = browser.new_context(
        viewport={"width": 390, "height": 844}, storage_state=page.context.storage_state()
    )
    small = phone.new_page()
    small.goto(f"{live_server.url}/dashboard/pkwkk/6409/")
    assert small.locator(".big-percent").inner_text() == "98,97%"
    assert small.evaluate("document.documentElement.scrollWidth") <= 390
    shot(small, "ppu-phone")
    phone.close()


def set_visibility(page, visible: bool) -> None:
    """What a browser does when the tab goes to the background or comes back."""
    page.evaluate(
        """visible => {
            const state = {hidden: !visible, visibilityState: visible ? "visible" : "hidden"};
            for (const [name, value] of Object.entries(state)) {
                Object.defineProperty(document, name, {value, configurable: true});
            }
            document.dispatchEvent(new Event("visibilitychange"));
        }""",
        visible,
    )


def test_a_hidden_tab_stops_polling_and_polls_again_when_shown(page, live_server, ppu, kpu_staff):
    log_in(page, live_server.url)
    page.wait_for_url(re.compile(r"/dashboard/pkwkk/6409/$"))
    polls = []
    page.on("request", lambda request: "hx-request" in request.headers and polls.append(request))
    set_visibility(page, False)
    page.wait_for_timeout(11_000)  # two polling periods of 5 s
    assert polls == []
    set_visibility(page, True)
    page.wait_for_timeout(1_000)
    assert len(polls) >= 1  # at once, not at the next tick of the 5 s
