"""The home page a visitor sees, in a real Chromium: the public progress of the home area."""

import pytest

from tests.conftest import PROJECT_DIR

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ARTIFACTS = PROJECT_DIR / "test-artifacts"


def test_a_visitor_reads_the_home_page_and_switches_to_english(page, live_server, ppu):
    page.goto(live_server.url + "/")
    assert page.locator("h1").inner_text() == "Kabupaten PENAJAM PASER UTARA 6409"
    assert page.locator(".big-percent").inner_text() == "0,00%"
    assert page.evaluate("typeof htmx") == "object", "the vendored htmx did not load"
    assert page.get_by_role("link", name="Staf: masuk ke dasbor").is_visible()

    page.get_by_role("link", name="EN", exact=True).click()
    page.wait_for_url(live_server.url + "/en/")
    assert page.locator("h1").inner_text() == "PENAJAM PASER UTARA Regency 6409"
    assert "0 of 293 TPS published" in page.locator(".of-total").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "home-en.png", full_page=True)
