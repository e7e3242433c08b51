"""The upload page on a phone (/unggah/), as a KPPS officer of Labangka uses it, in a real
Chromium 360 px wide: photos taken without a network are shrunk and kept on the phone, survive
a reload served by the page's service worker, and go over tus once the network is back; the
page follows them to "published". A session that ended meanwhile asks for a new login and
loses nothing; a refusal is shown in the officer's words and the photos stay. Without
JavaScript the plain form still takes a document. Screenshots: test-artifacts/upload-*.png."""

import hashlib
import re

import pytest
from django.contrib.sessions.models import Session
from PIL import Image
from playwright.sync_api import expect

from tests.conftest import PROJECT_DIR
from tests.documents import PDF_HEAD, page_bytes, phone_photo
from tests.world import LABANGKA_TPS, move, person
from uploads.models import Document, Status, Upload

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("small_world"),
]
ARTIFACTS = PROJECT_DIR / "test-artifacts"
PHONE = {"width": 360, "height": 740}
PASSWORD = "sandi-labangka-2024"
PENAJAM_TPS = "6409011011001"  # outside the officer's TPS


@pytest.fixture
def kpps():
    return person("kpps-labangka", "kpps", LABANGKA_TPS, password=PASSWORD)


@pytest.fixture
def phone(browser):
    """A phone-sized page that records console errors (CSP violations among them)."""
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True)
    page = context.new_page()
    page.errors = []
    page.on("console", lambda message: message.type == "error" and page.errors.append(message.text))
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    context.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"upload-{name}.png", full_page=True)


def log_in(page, url: str, path: str = "/unggah/") -> None:
    page.goto(f"{url}/masuk/?next={path}")
    page.locator("input[name=username]").fill("kpps-labangka")
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(rf"{re.escape(path)}$"))


def unexpected(errors: list[str]) -> list[str]:
    """The console's errors but the browser's own notes of requests that found no network or
    were refused (401, 403: what the test makes happen); a CSP violation or a script's error
    stays."""
    expected = re.compile(r"net::ERR_INTERNET_DISCONNECTED|status of 40[13] ")
    return [error for error in errors if not expected.search(error)]


def fits_the_screen(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def photo_file(tmp_path, data: bytes):
    """A photo of the result form, as the phone's camera or gallery hands it over."""
    photo = tmp_path / "c-hasil.jpg"
    photo.write_bytes(data)
    return photo


def upload_of(tps=LABANGKA_TPS, kind="pkwkk") -> Upload:
    return Upload.objects.select_related("document").get(tps_id=tps, contest__kind=kind)


def test_photos_taken_offline_are_kept_through_a_reload_and_sent_when_the_network_returns(
    phone, live_server, kpps, tmp_path
):
    # Held upright, the camera wrote its pixels on their side (EXIF orientation 6), with the
    # time and the place.
    photo = phone_photo(
        1,
        orientation=6,
        taken_at="2024:11:27 13:05:10",
        zone="+08:00",
        gps=(((1, 27, 22.04), "S"), ((116, 24, 7.56), "E")),
    )
    pdf = page_bytes(PDF_HEAD, size=4096)
    (tmp_path / "IMG_0001.jpg").write_bytes(photo)
    (tmp_path / "halaman-2.pdf").write_bytes(pdf)

    log_in(phone, live_server.url)
    assert phone.evaluate("navigator.serviceWorker.ready.then(() => true)")
    # Its one TPS is offered; the contest is the first held there.
    expect(phone.locator("input[name=tps]")).to_have_value(LABANGKA_TPS)
    expect(phone.locator(".phone-pages")).to_be_visible()
    expect(phone.locator("input[name=file]")).to_be_hidden()

    phone.context.set_offline(True)
    phone.locator(".phone-files").set_input_files(
        [str(tmp_path / "IMG_0001.jpg"), str(tmp_path / "halaman-2.pdf")]
    )
    pages = phone.locator(".phone-pages .phone-page")
    expect(pages).to_have_count(2)
    # Upright, 2048 px on its long side.
    expect(pages.nth(0)).to_contain_text("Halaman 1 · 1536\u00d72048")
    expect(pages.nth(0)).to_contain_text("Di ponsel")
    expect(pages.nth(1)).to_contain_text("Halaman 2 · PDF")
    expect(phone.locator("#phone-news")).to_have_text("Halaman 2 disimpan di ponsel ini.")
    assert fits_the_screen(phone)
    shot(phone, "phone-pages")

    phone.locator("select[name=contest]").select_option("pkwkk")
    phone.get_by_role("button", name="Unggah").click()
    document = phone.locator(".phone-document")
    expect(document).to_contain_text("Menunggu jaringan")
    expect(phone.locator(".phone-pages .phone-page")).to_have_count(0)
    shot(phone, "phone-offline")

    # The tab reloaded (or closed and opened) with no network: the service worker answers
    # the page, IndexedDB still holds the photos.
    phone.reload()
    expect(document).to_contain_text("Menunggu jaringan")
    expect(document.locator(".phone-page")).to_have_count(2)
    assert upload_of().status == Status.MISSING

    # The browser says the network is back (the `online` event): the page sends at once
    # (its timer would only try again 20 s later).
    phone.context.set_offline(False)
    expect(document).to_contain_text("Diterima server (dalam antrean)", timeout=15_000)
    expect(document.locator(".phone-page").nth(0)).to_contain_text("Di server")
    shot(phone, "phone-received")

    upload = upload_of()
    assert upload.status == Status.QUEUED
    first, second = upload.document.pages.order_by("number")
    shrunk = Image.open(first.file)
    assert (shrunk.format, shrunk.size) == ("JPEG", (1536, 2048))
    assert first.size < len(photo) / 2
    assert first.original_sha256 == hashlib.sha256(photo).hexdigest()
    assert first.original_taken_at == "2024-11-27T13:05:10+08:00"
    assert first.original_location == "-1.456122,116.4021"
    assert (second.sha256, second.original_sha256) == (hashlib.sha256(pdf).hexdigest(), "")
    # Its photos left the phone once the server had them; its record stays until published.
    assert phone.evaluate(STORED_BLOBS) == 0

    move(LABANGKA_TPS, Status.PUBLISHED)
    # The page asks again whenever it is shown (and every 15 s while it is).
    phone.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    expect(document).to_contain_text("Terpublikasi di situs publik")
    expect(phone.locator("#phone-news")).to_contain_text("Terpublikasi di situs publik")
    assert fits_the_screen(phone)
    shot(phone, "phone-published")
    assert unexpected(phone.errors) == []


STORED_BLOBS = """new Promise((resolve) => {
  const request = indexedDB.open("sirekap-unggah");
  request.onsuccess = () => {
    const count = request.result.transaction("blobs").objectStore("blobs").count();
    count.onsuccess = () => resolve(count.result);
  };
})"""


def test_a_session_ended_asks_for_a_login_and_a_refusal_keeps_the_photos(
    phone, live_server, kpps, tmp_path
):
    photo = photo_file(tmp_path, page_bytes(size=30_000))
    log_in(phone, live_server.url)
    phone.locator(".phone-camera").set_input_files(str(photo))
    expect(phone.locator(".phone-pages .phone-page")).to_have_count(1)

    # A TPS not theirs: the server refuses it at the first request, in Indonesian.
    phone.locator("input[name=tps]").fill(PENAJAM_TPS)
    phone.get_by_role("button", name="Unggah").click()
    document = phone.locator(".phone-document")
    refusal = f"Ditolak server: TPS {PENAJAM_TPS} berada di luar wilayah Anda"
    expect(document).to_contain_text(refusal)
    shot(phone, "phone-refused")
    phone.get_by_role("button", name="Kembali ke halaman").click()
    expect(phone.locator(".phone-pages .phone-page")).to_have_count(1)
    expect(document).to_have_count(0)

    # The session ends (idle, or logged out elsewhere) while the page is open.
    Session.objects.all().delete()
    phone.locator("input[name=tps]").fill(LABANGKA_TPS)
    phone.get_by_role("button", name="Unggah").click()
    expect(phone.locator(".phone-login")).to_contain_text("Sesi Anda telah berakhir")
    expect(document.locator(".phone-page")).to_have_count(1)
    shot(phone, "phone-login-again")
    assert not Document.objects.exists()

    phone.get_by_role("link", name="Masuk lagi").click()
    phone.locator("input[name=username]").fill("kpps-labangka")
    phone.locator("input[name=password]").fill(PASSWORD)
    phone.locator("button[type=submit]").click()
    phone.wait_for_url(re.compile(r"/unggah/$"))
    expect(phone.locator(".phone-document")).to_contain_text("Diterima server", timeout=30_000)
    sent = upload_of().document.pages.get()
    assert sent.sha256 == hashlib.sha256(photo.read_bytes()).hexdigest()
    assert unexpected(phone.errors) == []


def test_unggah_tapped_while_a_photo_is_still_being_shrunk_sends_it(
    phone, live_server, kpps, tmp_path
):
    # A 12 MP photo takes the phone a moment to shrink; an officer taps "Unggah" at once.
    photo = photo_file(tmp_path, phone_photo(seed=7))
    log_in(phone, live_server.url)
    phone.locator(".phone-camera").set_input_files(str(photo))
    phone.get_by_role("button", name="Unggah").click()
    expect(phone.locator(".phone-document")).to_contain_text("Diterima server", timeout=30_000)
    expect(phone.locator(".phone-problem")).to_be_empty()
    assert (
        upload_of().document.pages.get().original_sha256
        == hashlib.sha256(photo.read_bytes()).hexdigest()
    )
    assert unexpected(phone.errors) == []


def test_the_network_back_while_an_attempt_is_failing_sends_at_once(
    phone, live_server, kpps, tmp_path
):
    photo = photo_file(tmp_path, page_bytes(size=30_000))
    log_in(phone, live_server.url)
    held = []

    def first_held(route):
        # An attempt's first question (what the server has for the TPS) hangs, as one does on
        # a network going away; later ones pass.
        if held:
            route.continue_()
        else:
            held.append(route)

    phone.route(f"**/api/uploads/pkwkk/{LABANGKA_TPS}/", first_held)
    phone.locator(".phone-camera").set_input_files(str(photo))
    expect(phone.locator(".phone-pages .phone-page")).to_have_count(1)
    phone.locator("select[name=contest]").select_option("pkwkk")
    phone.get_by_role("button", name="Unggah").click()
    for _ in range(200):  # Playwright calls the handler while the page is waited on
        if held:
            break
        phone.wait_for_timeout(50)
    assert held, "the page never asked the server within 10 s"
    # The phone says the network is back while that attempt is still on its way, and then the
    # attempt fails for the network that was gone: the page sends again at once, not after
    # the 20 s it waits for a network that went.
    phone.evaluate("dispatchEvent(new Event('online'))")
    held[0].abort("internetdisconnected")
    expect(phone.locator(".phone-document")).to_contain_text("Diterima server", timeout=10_000)
    assert upload_of().document.pages.get().size == 30_000


def test_the_page_speaks_english_at_en(phone, live_server, kpps, tmp_path):
    photo = photo_file(tmp_path, page_bytes(size=30_000))
    log_in(phone, live_server.url, "/en/unggah/")
    expect(phone.locator("label.pick").first).to_have_text("Take a photo")
    phone.locator(".phone-camera").set_input_files(str(photo))
    expect(phone.locator(".phone-pages .phone-page")).to_contain_text("Page 1")
    expect(phone.locator(".phone-pages .phone-page")).to_contain_text("On the phone")
    shot(phone, "phone-en")
    assert phone.errors == []


def test_without_javascript_the_plain_form_takes_a_document(browser, live_server, kpps, tmp_path):
    context = browser.new_context(viewport=PHONE, java_script_enabled=False)
    page = context.new_page()
    photo = photo_file(tmp_path, page_bytes(size=30_000))
    log_in(page, live_server.url)
    expect(page.locator(".phone-pages")).to_be_hidden()
    # Its one TPS is filled in.
    expect(page.locator("input[name=tps]")).to_have_value(LABANGKA_TPS)
    page.locator("input[name=file]").set_input_files(str(photo))
    page.get_by_role("button", name="Unggah").click()
    expect(page.locator(".receipt")).to_contain_text("Diterima")
    assert upload_of().document.sha256 == hashlib.sha256(photo.read_bytes()).hexdigest()
    shot(page, "phone-no-javascript")
    context.close()
