"""What a phone on a bad network pays, measured in a real Chromium against the site as
production serves it: gunicorn with production's settings (DEBUG off, static files collected,
hashed and compressed by WhiteNoise) behind the production nginx config (deploy/nginx/: gzip
for pages, its short cache), on loopback. Bytes are what Chromium counts over the wire for each
response (DevTools' Network.loadingFinished encodedDataLength: headers and compressed body).

- A first view of the public home page and of the kabupaten page weighs at most 30 KB (HTML,
  CSS, JS, icon), and a live poll at most 2 KB.
- At 400 kbit/s with 400 ms of latency (DevTools' network emulation), three 12 MP photos of
  about 1.5 MB each, shrunk on the phone, go over tus through two forced disconnects without a
  finished chunk sent again (Django's byte count per page equals its length); the kabupaten
  page is readable (first contentful paint) within 3 s.

- The upload page's service worker, as production serves it, keeps the page's collected,
  hashed files, and the page opens again with no network.

Without nginx the tests are skipped: what they measure is production's compression, which
nginx does for pages (`make test` installs it as root). docs/pages.md and docs/uploads.md give
the figures."""

import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from playwright.sync_api import expect

from tests.conftest import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    PROJECT_DIR,
    child_env,
    gunicorn_start,
    wait_until,
)
from tests.documents import phone_photo
from tests.nginx import NGINX, LocalNginx, free_port, production_config
from tests.test_browser_pages import morning  # noqa: F401
from tests.test_browser_upload import ARTIFACTS, PASSWORD, PHONE, log_in
from tests.test_deploy import CADDY, CADDYFILE, NGINX_ON_LOOPBACK, SITE, caddy_env
from tests.world import LABANGKA_TPS, person
from uploads.models import TusUpload, Upload

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not (NGINX.exists() and CADDY.exists()),
        reason=f"{NGINX} or {CADDY} is missing: run `make test` as root to install them",
    ),
]

FIRST_VIEW_MAX = 30 * 1024
POLL_MAX = 2 * 1024
# DevTools' emulation of a poor mobile network: 400 kbit/s each way, 400 ms of latency.
SLOW = {
    "offline": False,
    "latency": 400,
    "downloadThroughput": 400_000 / 8,
    "uploadThroughput": 400_000 / 8,
}
OFFLINE = {**SLOW, "offline": True}
CHUNK = 256 * 1024  # the page's tus chunk (static/js/unggah.js)
HEADERS_MAX = 4096  # a PATCH's request line and headers, at most
READABLE_WITHIN_MS = 3000


@dataclass(frozen=True)
class Site:
    url: str
    nginx_folder: Path


@pytest.fixture(scope="module")
def static_root(tmp_path_factory, django_db_setup):
    """The static files as the Dockerfile collects them: hashed, gzip and brotli beside."""
    root = tmp_path_factory.mktemp("static")
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input", "--verbosity", "0"],
        cwd=PROJECT_DIR,
        env=child_env(STATIC_ROOT=str(root)),
        check=True,
    )
    return root


@pytest.fixture
def site(start_process, static_root, tmp_path, ppu):
    """Production's stack on loopback: deploy/caddy/Caddyfile (TLS, HTTP/2; its own internal
    certificate, which the browser is told to accept), the production nginx config, gunicorn
    with production's settings."""
    front, inner = free_port(), free_port()
    url = f"https://127.0.0.1:{front}"
    env = child_env(
        STATIC_ROOT=str(static_root),
        DEBUG="false",
        MEDIA_ROOT=settings.MEDIA_ROOT,
        # nginx passes the host without its port, as production's 443 is none to name.
        CSRF_TRUSTED_ORIGINS=url,
        LOG_LEVEL="WARNING",
    )
    _, upstream = gunicorn_start(start_process, env, workers=2)
    production = production_config(
        upstream=upstream.removeprefix("http://"), port=inner, cache_folder=tmp_path / "cache"
    )
    with LocalNginx(tmp_path / "nginx", [production], [inner]) as nginx:
        caddy_start(start_process, tmp_path, url, inner)
        yield Site(url, nginx.folder)


def caddy_start(start_process, tmp_path: Path, url: str, nginx_port: int) -> None:
    """The Caddyfile at url in front of nginx, once it answers. HTTP/3 is left out: Chromium
    takes it up only for a certificate it trusts."""
    text = CADDYFILE.read_text()
    for old in (SITE, NGINX_ON_LOOPBACK):
        assert text.count(old) == 1, old
    text = text.replace(SITE, f"{url} {{\n\ttls internal")
    text = text.replace(NGINX_ON_LOOPBACK, f"reverse_proxy 127.0.0.1:{nginx_port}")
    options = "{\n\tadmin off\n\tskip_install_trust\n\tservers {\n\t\tprotocols h1 h2\n\t}\n}\n\n"
    config = tmp_path / "Caddyfile"
    config.write_text(options + text)
    start_process(
        [str(CADDY), "run", "--config", str(config), "--adapter", "caddyfile"],
        name="caddy",
        env=caddy_env(tmp_path),
    )
    wait_until(lambda: httpx.get(f"{url}/nginx-health", verify=False).status_code == 200, 30)


class Wire:
    """What Chromium received for each response of a page, by DevTools' count."""

    def __init__(self, context, page) -> None:
        self.session = context.new_cdp_session(page)
        self.session.send("Network.enable")
        self.responses: dict[str, dict] = {}
        self.bytes: dict[str, int] = {}
        self.session.on("Network.responseReceived", self._response)
        self.session.on("Network.loadingFinished", self._finished)

    def _response(self, event) -> None:
        self.responses[event["requestId"]] = event["response"]

    def _finished(self, event) -> None:
        self.bytes[event["requestId"]] = int(event["encodedDataLength"])

    def received(self) -> dict[str, tuple[int, str]]:
        """URL -> (bytes over the wire, Content-Encoding) of every finished response."""
        return {
            self.responses[key]["url"]: (size, _encoding(self.responses[key]))
            for key, size in self.bytes.items()
            if key in self.responses
        }

    def clear(self) -> None:
        self.responses.clear()
        self.bytes.clear()


def _encoding(response: dict) -> str:
    headers = {name.lower(): value for name, value in response["headers"].items()}
    return headers.get("content-encoding", "")


def first_view(browser, url: str) -> tuple[dict[str, tuple[int, str]], object, Wire]:
    """A phone's first view of url (nothing cached): what came over the wire."""
    context = browser.new_context(viewport=PHONE, is_mobile=True, ignore_https_errors=True)
    page = context.new_page()
    wire = Wire(context, page)
    page.goto(url, wait_until="networkidle")
    return wire.received(), page, wire


def report(name: str, received: dict[str, tuple[int, str]]) -> str:
    lines = [f"{name}: {sum(size for size, _ in received.values())} bytes"]
    for url, (size, encoding) in received.items():
        lines.append(f"  {size:>6} {encoding or '-':>4} {url}")
    return "\n".join(lines)


def test_a_first_view_of_the_public_pages_and_a_poll_fit_a_phones_budget(
    browser,
    site,
    morning,  # noqa: F811
):
    figures = []
    for path in ["/", "/progress/pkwkk/6409/"]:
        received, page, wire = first_view(browser, site.url + path)
        figures.append(report(path, received))
        assert page.locator(".big-percent").inner_text() == "98,97%"
        assert page.evaluate("typeof htmx") == "object"
        # HTML, styles and scripts, each compressed: by nginx for the page, WhiteNoise for
        # the static files.
        kinds = {url.rsplit(".", 1)[-1] if "/static/" in url else "html" for url in received}
        assert {"html", "css", "js"} <= kinds, received
        for url, (_, encoding) in received.items():
            if not url.endswith(".svg"):
                assert encoding in ("gzip", "br"), (url, encoding)
        assert page.locator("img:not([loading=lazy])").count() == 0
        assert sum(size for size, _ in received.values()) <= FIRST_VIEW_MAX, figures[-1]

        # The live part, as the page polls it every 15 s (a change: 200 with the part).
        wire.clear()
        poll = page.evaluate(
            """fetch(document.querySelector("[data-live]").getAttribute("hx-get"),
                     {headers: {"HX-Request": "true"}, cache: "no-cache"})
                 .then((response) => response.text().then(() => response.status))"""
        )
        # DevTools' events reach this process while Playwright waits on the page.
        while not wire.received():
            page.wait_for_timeout(50)
        ((url, (size, encoding)),) = wire.received().items()
        figures.append(report(f"{path} poll", wire.received()))
        assert (poll, encoding) == (200, "gzip"), url
        assert size <= POLL_MAX, figures[-1]
        page.context.close()
    print("\n".join(figures))


def test_three_photos_go_through_two_disconnects_on_a_slow_network_and_the_page_reads_in_3_s(
    browser, site, tmp_path
):
    person("kpps-labangka", "kpps", LABANGKA_TPS, password=PASSWORD)
    photos = []
    for seed in (1, 2, 3):
        path = tmp_path / f"IMG_000{seed}.jpg"
        path.write_bytes(phone_photo(seed))
        photos.append(path)
    originals = [path.stat().st_size for path in photos]
    assert all(1_300_000 < size < 1_800_000 for size in originals), originals

    context = browser.new_context(
        viewport=PHONE, is_mobile=True, device_scale_factor=2, ignore_https_errors=True
    )
    page = context.new_page()
    log_in(page, site.url)
    page.locator(".phone-files").set_input_files([str(path) for path in photos])
    expect(page.locator(".phone-pages .phone-page")).to_have_count(3, timeout=30_000)

    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    network = context.new_cdp_session(page)
    network.send("Network.enable")
    network.send("Network.emulateNetworkConditions", SLOW)
    started = time.monotonic()
    page.get_by_role("button", name="Unggah").click()
    document = page.locator(".phone-document")
    # Cut twice while a chunk is on its way, after finished chunks: halfway through the first
    # chunk of page 2, then of page 3 (the page says how far it is: "Mengirim 40%").
    for number in (1, 2):
        state = document.locator(".phone-page-state").nth(number)
        expect(state).to_have_text(re.compile(r"Mengirim [4-7]\d%"), timeout=90_000)
        network.send("Network.emulateNetworkConditions", OFFLINE)
        expect(document).to_contain_text("Menunggu jaringan")
        network.send("Network.emulateNetworkConditions", SLOW)
    expect(document).to_contain_text("Diterima server", timeout=180_000)
    elapsed = time.monotonic() - started
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "upload-phone-slow-network.png", full_page=True)

    parts = list(TusUpload.objects.order_by("page", "created_at"))
    sent = [part.length for part in parts]
    # Django saw each byte of each page once: no finished chunk was sent again.
    assert [part.received for part in parts] == sent
    upload = Upload.objects.get(tps_id=LABANGKA_TPS, contest__kind="pkwkk")
    assert [page.size for page in upload.document.pages.order_by("number")] == sent
    # nginx saw both cuts (a request whose client gave up: 499, or 400 for a body cut short),
    # and read at most a chunk more per cut than the pages weigh (a chunk sent again whole when
    # the cut came before its body was in), besides each request's line and headers.
    patches = _patches(site.nginx_folder)
    assert len([status for status, _ in patches if status != "204"]) == 2, patches
    body_bytes = sum(size for _, size in patches)
    assert body_bytes <= sum(sent) + 2 * CHUNK + len(patches) * HEADERS_MAX, (sent, patches)
    print(
        f"\nphotos {originals} shrunk to {sent} bytes ({sum(sent)}); the phone sent "
        f"{len(patches)} PATCH requests, {[status for status, _ in patches]}; {elapsed:.1f} s "
        "at 400 kbit/s, 400 ms latency, two disconnects"
    )

    # The public page of the kabupaten, on a phone with nothing cached, on the same network.
    reader = browser.new_context(viewport=PHONE, is_mobile=True, ignore_https_errors=True)
    public = reader.new_page()
    reader.new_cdp_session(public).send("Network.emulateNetworkConditions", SLOW)
    public.goto(f"{site.url}/progress/pkwkk/6409/")
    expect(public.locator(".big-percent")).to_be_visible()
    painted = public.evaluate(
        "performance.getEntriesByName('first-contentful-paint').map((e) => e.startTime)"
    )
    assert painted and painted[0] <= READABLE_WITHIN_MS, painted
    print(f"kabupaten page: first contentful paint after {painted[0]:.0f} ms")
    reader.close()
    context.close()


# The paths of the files the upload page's service worker keeps, from the page.
KEPT_FILES = """caches.keys()
    .then((names) => names.filter((name) => name.startsWith("unggah-files-")))
    .then((names) => Promise.all(names.map((name) => caches.open(name).then((c) => c.keys()))))
    .then((lists) => lists.flat().map((request) => new URL(request.url).pathname))"""


def test_the_upload_page_opens_without_a_network_as_production_serves_it(browser, site):
    person("kpps-labangka", "kpps", LABANGKA_TPS, password=PASSWORD)
    # A browser registers a service worker only from a site whose certificate it trusts, as a
    # phone trusts the real one: this one is told to trust Caddy's internal certificate
    # (ignore_https_errors alone lets the pages load, not the worker).
    trusting = browser.browser_type.launch(
        executable_path=CHROMIUM, args=[*CHROMIUM_FLAGS, "--ignore-certificate-errors"]
    )
    try:
        context = trusting.new_context(viewport=PHONE, is_mobile=True, device_scale_factor=2)
        page = context.new_page()
        log_in(page, site.url)
        assert page.evaluate("navigator.serviceWorker.ready.then(() => true)")
        # The worker keeps the page's files by the names production gives them: collected, hashed
        # (a deploy that changes a file changes its name, and so the worker).
        kept = page.evaluate(KEPT_FILES)
        hashed = re.compile(r"/static/.+\.[0-9a-f]{12}\.(js|css|svg|png|ico|woff2)")
        assert kept and all(hashed.fullmatch(path) for path in kept), kept
        assert {path.rsplit(".", 1)[1] for path in kept} >= {"js", "css"}, kept

        # No network, and the tab reloaded: the page, its styles and its script, from the phone.
        context.set_offline(True)
        page.reload()
        expect(page.locator(".phone-pages")).to_be_visible()
        expect(page.locator("input[name=tps]")).to_have_value(LABANGKA_TPS)
        assert page.evaluate("[...document.styleSheets].every((s) => s.cssRules.length > 0)")
    finally:
        trusting.close()


def _patches(folder: Path) -> list[tuple[str, int]]:
    """Each PATCH of a tus upload nginx read, in order: its status (499: its client gave up
    before the answer) and the bytes read of it (line, headers and body, whole or cut)."""
    patches = []
    for line in (folder / "bodies.log").read_text().splitlines():
        method, uri, status, request_length, _ = line.split()
        if method == "PATCH" and uri.startswith("/api/uploads/tus/"):
            patches.append((status, int(request_length)))
    return patches
