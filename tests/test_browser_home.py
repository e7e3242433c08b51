"""The page a visitor sees, in a real Chromium."""

import pytest

from tests.conftest import PROJECT_DIR

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ARTIFACTS = PROJECT_DIR / "test-artifacts"


def test_a_visitor_reads_the_home_page_and_switches_to_english(page, live_server):
    page.goto(live_server.url + "/")
    assert page.locator("h1").inner_text() == "Progres unggah dokumen hasil TPS"
    assert page.evaluate("typeof htmx") == "object", "the vendored htmx did not load"

    page.get_by_role("link", name="EN").click()
    page.wait_for_url(live_server.url + "/en/")
    assert page.locator("h1").inner_text() == (
        "Upload progress of polling station result documents"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "home-en.png", full_page=True)
