"""The public progress pages: what anyone reads, without personal data, cookies or inline code,
cacheable by anyone, at a fixed cost."""

import re
import secrets
import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.conftest import PROJECT_DIR, child_env
from tests.documents import page_bytes, page_file
from tests.world import (
    BABULU,
    LABANGKA,
    LABANGKA_TPS,
    babulu_tps,
    move,
    publish_all_but,
    refresh,
    text,
)
from uploads.models import PublicAreaProgress, Status, StuckReason, Upload
from uploads.progress.services import progress_fold, timeline_point_take
from uploads.services.intake import upload_receive
from uploads.services.stuck import upload_mark_stuck

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ppu")]

PPU = "/progress/pkwkk/6409/"
SHORT_CACHE = "public, max-age=5, stale-while-revalidate=30, stale-if-error=600"
OPERATOR = "Budi Operator PPK"
NOTE = "HP operator rusak"


def mark_stuck_by_an_operator(tps: str) -> None:
    operator = get_user_model().objects.create_user(OPERATOR, first_name="Budi", password="x")
    upload = Upload.objects.get(tps_id=tps, contest__kind="pkwkk")
    assert upload_mark_stuck(upload_id=upload.pk, reason="network", actor=operator, note=NOTE)


# --- What the page says


def test_290_of_293_reads_98_97_percent_in_indonesian_and_98_97_in_english(client):
    publish_all_but(*babulu_tps(3))
    page = text(client.get(PPU))
    assert "98,97%" in page
    assert "290 dari 293 TPS terpublikasi" in page
    english = text(client.get("/en" + PPU))
    assert "98.97%" in english
    assert "290 of 293 TPS published" in english


def test_the_bar_exposes_its_value_to_assistive_technology(client):
    publish_all_but(*babulu_tps(3))
    html = client.get("/en" + PPU).text
    bar = re.search(r'<progress class="bar"[^>]*>([^<]*)</progress>', html)
    assert 'max="293" value="290"' in bar.group()
    assert 'aria-valuetext="98.97%"' in bar.group()
    assert bar.group(1) == "98.97%"
    assert '<a class="skip-link" href="#main">' in html


def test_the_counts_by_status_are_those_of_the_open_data(client):
    first, second, third = babulu_tps(3)
    move(first, Status.PUBLISHED)
    move(second, Status.SENDING)  # read as queued, as in the open data
    move(third, Status.DELIVERED)
    html = client.get("/en" + PPU).text
    counts = dict(re.findall(r'status-(\w+)"><span class="count">(\d+)</span>', html))
    assert counts == {
        "published": "1",
        "delivered": "1",
        "queued": "1",
        "retrying": "0",
        "rejected": "0",
        "missing": "290",
    }
    assert "flagged stuck" not in text(client.get("/en" + PPU))  # said only when there are some


def test_the_time_of_the_data_is_given_in_the_areas_zone(client):
    assert re.search(r"Data as of \d+ \w+ \d\d:\d\d WITA", text(client.get("/en" + PPU)))
    assert re.search(r"Data as of \d+ \w+ \d\d:\d\d WIB", text(client.get("/en/progress/pkwkk/")))


def test_children_link_down_and_sort_lowest_first(client):
    publish_all_but(*babulu_tps(61))
    by_code = client.get("/en" + PPU).text
    assert re.findall(r'<tr id="area-(\d+)">', by_code) == ["640901", "640902", "640903", "640904"]
    assert f'href="/en/progress/pkwkk/{BABULU}/"' in by_code
    assert 'href="/en/progress/pkwkk/6409/?sort=progress"' in by_code
    lowest_first = client.get("/en" + PPU + "?sort=progress").text
    assert re.findall(r'<tr id="area-(\d+)">', lowest_first)[0] == BABULU
    assert re.search(
        r'aria-sort="ascending">\s*<a href="/en/progress/pkwkk/6409/\?sort=progress"', lowest_first
    )


def test_the_page_works_without_javascript_through_plain_links(client):
    page = client.get("/en" + PPU).text
    assert 'href="/en/progress/pkwkk/"' in page  # up to the nation
    assert 'href="/en/progress/pkwkp/6409/"' in page  # the contest switcher
    assert 'href="/progress/pkwkk/6409/"' in page  # the same page in Indonesian
    assert 'href="/api/progress/pkwkk/6409.csv"' in page


def test_the_public_sites_figure_is_shown_beside_ours(client):
    publish_all_but(*babulu_tps(4))
    PublicAreaProgress.objects.create(
        kind="pkwkk",
        area_code="6409",
        total=293,
        published=290,
        site_ts="2024-11-28 06:10:00",
        children={BABULU: 57},
    )
    page = text(client.get("/en" + PPU))
    # The site stamps its figure in WIB; PPU's pages speak WITA, an hour later.
    assert "KPU public site: 290/293 (as of 28 Nov 07:10 WITA) · here: 289/293" in page
    babulu_row = re.search(r'<tr id="area-640903">.*?</tr>', client.get(PPU).text, re.S).group()
    assert ">57</td>" in babulu_row


def test_a_desa_lists_its_tps_with_pages_only_once_published_and_their_sha256(client, kpu_staff):
    receipt = upload_receive(
        tps_code=LABANGKA_TPS, kind="pkwkk", files=[page_file(page_bytes())], user=kpu_staff
    )
    url = f"/en/progress/pkwkk/{LABANGKA}/"
    row = re.search(rf'<tr id="tps-{LABANGKA_TPS}">.*?</tr>', client.get(url).text, re.S).group()
    assert "queued" in row
    assert receipt.document.sha256 in row
    assert "received, not yet published" in row
    assert "/api/dokumen/" not in row
    assert f'href="/en/progress/pkwkk/{LABANGKA_TPS}/"' in row

    move(LABANGKA_TPS, Status.PUBLISHED)
    refresh()
    row = re.search(rf'<tr id="tps-{LABANGKA_TPS}">.*?</tr>', client.get(url).text, re.S).group()
    page = receipt.document.pages.get()
    assert f'href="/api/dokumen/{page.pk}.jpg"' in row
    assert client.get(f"/api/dokumen/{page.pk}.jpg").status_code == 200


def test_a_tps_page_shows_its_pages_with_their_sha256_once_published(client, kpu_staff):
    receipt = upload_receive(
        tps_code=LABANGKA_TPS, kind="pkwkk", files=[page_file(page_bytes())], user=kpu_staff
    )
    url = f"/en/progress/pkwkk/{LABANGKA_TPS}/"
    waiting = text(client.get(url))
    assert "its pages are shown here once it is published" in waiting
    assert receipt.document.sha256 in waiting
    move(LABANGKA_TPS, Status.PUBLISHED)
    refresh()
    response = client.get(url)
    page = receipt.document.pages.get()
    assert f'<img src="/api/dokumen/{page.pk}.jpg"' in response.text
    assert page.sha256 in text(response)
    assert "hx-trigger" not in response.text  # published: nothing more to wait for


# --- No personal data


def test_a_stuck_tps_shows_its_status_and_reason_but_not_who_or_what_they_wrote(client):
    move(LABANGKA_TPS, Status.RETRYING)
    mark_stuck_by_an_operator(LABANGKA_TPS)
    urls = [
        f"/en/progress/pkwkk/{LABANGKA_TPS}/",
        f"/en/progress/pkwkk/{LABANGKA}/",
        f"/en/progress/pkwkk/{BABULU}/",
        "/en/progress/pkwkk/",
    ]
    tps_page = text(client.get(urls[0]))
    assert "retrying" in tps_page
    assert "stuck: network" in tps_page
    assert "In trouble since" in tps_page
    assert "What happens next: the kecamatan's election committee (PPK) has been told" in tps_page
    for url in urls:
        for response in (client.get(url), client.get(f"{url}?part=live")):
            for secret in (OPERATOR, "Budi", NOTE, "rusak"):
                assert secret not in response.text, (url, secret)
    assert "network" in text(client.get(urls[2])).split("Stuck TPS")[1]


# --- Cookies, caches and language


PUBLIC_URLS = [
    "/",
    "/en/",
    PPU,
    "/en" + PPU,
    PPU + "?part=live",
    PPU + "?part=timeline",
    "/progress/pkwkk/",
    f"/progress/pkwkk/{LABANGKA}/",
    f"/en/progress/pkwkk/{LABANGKA}/?part=live",
    f"/progress/pkwkk/{LABANGKA_TPS}/",
    f"/en/progress/pkwkk/{LABANGKA_TPS}/?part=live",
]


@pytest.mark.parametrize("url", PUBLIC_URLS)
def test_no_public_page_sets_a_cookie_even_for_a_logged_in_staff_member(client, kpu_staff, url):
    timeline_point_take()
    for _ in ("anonymous", "logged in"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "Set-Cookie" not in response.headers
        assert not response.cookies
        assert "Cookie" not in response.get("Vary", "")
        assert response["Cache-Control"] == SHORT_CACHE
        client.force_login(kpu_staff)


@pytest.mark.parametrize("url", [PPU, PPU + "?part=live", f"/progress/pkwkk/{LABANGKA_TPS}/", "/"])
def test_an_unchanged_page_answers_304_to_its_etag_and_a_changed_one_200(client, url):
    first = client.get(url)
    etag = first["ETag"]
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again["ETag"] == etag
    assert again["Cache-Control"] == SHORT_CACHE
    move(LABANGKA_TPS, Status.PUBLISHED)
    refresh()
    changed = client.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed["ETag"] != etag


def test_each_language_sort_and_part_has_its_own_validator(client):
    urls = [PPU, "/en" + PPU, PPU + "?sort=progress", PPU + "?part=live", "/"]
    assert len({client.get(url)["ETag"] for url in urls}) == len(urls)


def test_the_root_is_indonesian_whatever_the_browser_asks_and_does_not_vary_by_it(client):
    response = client.get("/", headers={"accept-language": "en"})
    assert '<html lang="id">' in response.text
    assert "Accept-Language" not in response.get("Vary", "")
    assert response["Content-Language"] == "id"
    english = client.get("/en/", headers={"accept-language": "id"})
    assert '<html lang="en">' in english.text
    assert "Accept-Language" not in english.get("Vary", "")
    api = client.get("/api/hhcw/pkwkk.json", headers={"accept-language": "en"})
    assert "Accept-Language" not in api.get("Vary", "")


def test_a_language_cookie_changes_nothing(client):
    client.cookies["django_language"] = "en"
    assert '<html lang="id">' in client.get(PPU).text


# --- Live


def test_the_live_part_polls_every_15_seconds_from_its_own_url(client):
    page = client.get(PPU).text
    assert 'hx-get="/progress/pkwkk/6409/live.html"' in page
    assert 'hx-trigger="every 15s, visibilitychange from:document"' in page
    part = client.get(PPU + "live.html")
    assert part.text.lstrip().startswith('<div id="live"')
    assert "timeline-part" not in part.text
    # The same part as ?part=live, which links and clients made before still ask for.
    assert part.content == client.get(PPU + "?part=live").content


def test_a_part_or_sort_as_a_file_is_answered_like_its_query(client):
    assert 'hx-get="/progress/pkwkk/6409/timeline.html"' in client.get(PPU).text
    pairs = [("index.html", ""), ("timeline.html", "?part=timeline"),
             ("sort-progress.html", "?sort=progress"),
             ("live-sort-stuck.html", "?part=live&sort=stuck")]  # fmt: skip
    for file, query in pairs:
        assert client.get(PPU + file).content == client.get(PPU + query).content, file
    tps = f"/progress/pkwkk/{LABANGKA_TPS}/"
    assert client.get(tps + "live.html").content == client.get(tps + "?part=live").content
    for wrong in ["sort-nothing.html", "chart.html", "timeline-sort-.html"]:
        assert client.get(PPU + wrong).status_code == 404, wrong
    assert client.get(tps + "sort-progress.html").status_code == 404


def test_the_home_page_polls_the_canonical_part(client):
    assert 'hx-get="/progress/pkwkk/6409/live.html"' in client.get("/").text


def test_a_complete_area_stops_polling(client):
    publish_all_but()
    assert "100,00%" in client.get(PPU + "?part=live").text
    assert "hx-trigger" not in client.get(PPU).text
    assert "hx-trigger" not in client.get(PPU + "?part=live").text


# --- The home page


def test_the_home_page_is_the_public_progress_of_the_home_area_itself(client):
    publish_all_but(*babulu_tps(3))
    home = client.get("/")
    assert home.status_code == 200
    assert "98,97%" in text(home)
    assert "Kabupaten PENAJAM PASER UTARA" in text(home)
    assert 'href="/dashboard/"' in home.text  # the staff's way in


def test_the_home_page_follows_the_configured_home_area(client, settings):
    settings.DASHBOARD_CONTEST = "pkwkp"
    settings.DASHBOARD_AREA = BABULU
    assert "Kecamatan BABULU" in text(client.get("/"))
    assert 'hx-get="/progress/pkwkp/640903/live.html"' in client.get("/").text


@pytest.mark.parametrize(
    "url",
    [
        "/progress/pkwkk/9999/",  # no such area
        "/progress/pkwkk/64.09/",  # not a code
        "/progress/ppwp/6409/",  # no such contest there
        "/progress/pkwkk/6409999999001/",  # no such TPS
        PPU + "?part=nonsense",
        f"/progress/pkwkk/{LABANGKA}/?part=timeline",  # a desa has no timeline
        f"/progress/pkwkk/{LABANGKA_TPS}/?part=timeline",
    ],
)
def test_a_page_that_does_not_exist_answers_404(client, url):
    assert client.get(url).status_code == 404


# --- Cost


def queries_of(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_every_page_is_built_once_for_a_fixed_number_of_queries_then_read_with_none(
    client, kpu_staff
):
    for tps in babulu_tps(5):
        move(tps, Status.RETRYING)
        upload = Upload.objects.get(tps_id=tps, contest__kind="pkwkk")
        upload_mark_stuck(upload_id=upload.pk, reason=StuckReason.NETWORK)
    for tps, pages in [("6409011006001", 1), (LABANGKA_TPS, 3), ("6409032002002", 2)]:
        files = [page_file() for _ in range(pages)]
        upload_receive(tps_code=tps, kind="pkwkk", files=files, user=kpu_staff)
        move(tps, Status.PUBLISHED)
    progress_fold()
    timeline_point_take()
    client.force_login(kpu_staff)  # no session or user is read: the cost is the same
    # The contests, the counts, the public site's figure, the stuck list, the timeline; and
    # for an area its ancestors; at a desa its TPS and their pages instead of the timeline.
    assert queries_of(client, "/progress/pkwkk/") == 5
    areas = [PPU, "/progress/pkwkk/640901/", f"/progress/pkwkk/{BABULU}/"]
    assert {url: queries_of(client, url) for url in areas} == dict.fromkeys(areas, 6)
    # The live part leaves the timeline out; the timeline part is built from the whole page_data.
    assert queries_of(client, PPU + "?part=live") == 5
    assert queries_of(client, PPU + "?part=timeline") == 6
    desas = ["/progress/pkwkk/6409011006/", f"/progress/pkwkk/{LABANGKA}/"]
    assert {url: queries_of(client, url) for url in desas} == dict.fromkeys(desas, 7)
    # A TPS: its desa with ancestors, the contests, its upload, its pages.
    tps = [f"/progress/pkwkk/{LABANGKA_TPS}/", "/progress/pkwkk/6409032002002/"]
    assert {url: queries_of(client, url) for url in tps} == dict.fromkeys(tps, 4)
    # The home page: which area is home, then that area's page.
    assert queries_of(client, "/") == 7
    every = ["/progress/pkwkk/", *areas, PPU + "?part=live", *desas, *tps, "/"]
    assert {url: queries_of(client, url) for url in every} == dict.fromkeys(every, 0)


# --- Security headers


def test_pages_carry_a_strict_content_security_policy_and_referrer_policy(client):
    response = client.get(PPU)
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in response["Content-Security-Policy"].split(";")
    )
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"


def test_no_template_holds_an_inline_script_or_style():
    templates = [
        path
        for path in PROJECT_DIR.rglob("*.html")
        if not {".venv", ".var", "test-artifacts"} & set(path.relative_to(PROJECT_DIR).parts)
    ]
    assert len(templates) > 5
    for path in templates:
        html = path.read_text()
        assert not re.search(r"\sstyle=", html), path
        assert "<style" not in html, path
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), path
        assert not re.search(r"\son[a-z]+=", html), path


def production_env() -> dict:
    """The production template (.env.example) with real secrets and the test's services."""
    lines = (PROJECT_DIR / ".env.example").read_text().splitlines()
    settings = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    settings["SECRET_KEY"] = secrets.token_urlsafe(50)
    settings["METRICS_TOKEN"] = secrets.token_urlsafe(32)
    for name in ("DATABASE_URL", "REDIS_URL", "CACHE_URL", "POSTGRES_PASSWORD"):
        settings.pop(name)
    env = child_env(**settings)
    # Set by the test run for Playwright's sake; never in a deployment.
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return env


def test_the_production_settings_pass_the_deployment_checks():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=PROJECT_DIR,
        env=production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
