"""The staff dashboard: what KPU staff read, its live fragment, its validators and its cost."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.signals import template_rendered
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from regions.models import Area, Contest, Level
from regions.zones import in_zone_text, zone_of_area
from tests.documents import PNG_HEAD, page_bytes, page_file
from tests.world import (
    BABULU,
    LABANGKA,
    LABANGKA_TPS,
    SEPAKU,
    babulu_tps,
    log_in,
    move,
    person,
    publish_all_but,
    text,
    text_of,
)
from uploads.delivery import Outcome
from uploads.models import PublicAreaProgress, Status, StuckReason, Upload
from uploads.progress.services import progress_fold, timeline_point_take
from uploads.selectors import uploads_stuck_under, uploads_stuck_under_areas
from uploads.services.delivery import upload_claim, upload_record_outcome
from uploads.services.intake import upload_receive
from uploads.services.stuck import upload_mark_stuck

PPU = "/dashboard/pkwkk/6409/"


@pytest.fixture
def staff(kpu_staff):
    return kpu_staff


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


# --- Who may see it


def test_a_visitor_who_is_not_logged_in_is_sent_to_log_in(client, ppu):
    response = client.get(PPU)
    assert response.status_code == 302
    assert response["Location"].startswith("/masuk/?next=")


def test_a_logged_in_user_who_is_not_staff_is_refused(client, ppu):
    user = get_user_model().objects.create_user("kpps", password="x")
    client.force_login(user)
    assert client.get(PPU).status_code == 403


def test_staff_log_in_with_the_form_and_land_on_the_home_area(client, ppu, staff):
    response = client.post("/masuk/", {"username": "kpu", "password": "rahasia-sekali"})
    assert response.status_code == 302
    assert client.get(response["Location"]).url == PPU


# --- Where /dashboard/ goes


def test_the_dashboard_opens_the_demo_kabupaten_for_its_regent_contest(staff_client, ppu):
    assert staff_client.get("/dashboard/").url == PPU


def test_the_dashboard_opens_the_configured_home_area(staff_client, ppu, settings):
    settings.DASHBOARD_CONTEST = "pkwkp"
    settings.DASHBOARD_AREA = BABULU
    assert staff_client.get("/dashboard/").url == f"/dashboard/pkwkp/{BABULU}/"
    settings.DASHBOARD_AREA = ""
    assert staff_client.get("/dashboard/").url == "/dashboard/pkwkp/"


def test_without_any_contest_the_dashboard_says_how_to_open_one(staff_client, db):
    response = staff_client.get("/dashboard/")
    assert response.status_code == 200
    assert "open_contest" in text(response)


@pytest.mark.parametrize(
    "url",
    [
        "/dashboard/pkwkk/9999/",  # no such area
        "/dashboard/pkwkk/64.09/",  # not a code
        "/dashboard/pkwkk/6409032002999/",  # no such TPS
        "/dashboard/ppwp/6409/",  # no such contest there
        "/dashboard/pkwkk/6401/",  # outside every pkwkk contest
    ],
)
def test_a_page_that_does_not_exist_answers_404(staff_client, ppu, url):
    Area.objects.create(code="6401", name="PASER", level=Level.KABUPATEN, parent_id="64")
    assert staff_client.get(url).status_code == 404


# --- What the page says


def test_290_of_293_reads_98_97_percent_in_indonesian_and_98_97_in_english(staff_client, ppu):
    publish_all_but(*babulu_tps(3))
    page = text(staff_client.get(PPU))
    assert "98,97%" in page
    assert "290 dari 293 TPS terpublikasi" in page
    english = text(staff_client.get("/en" + PPU))
    assert "98.97%" in english
    assert "290 of 293 TPS published" in english


def test_the_counts_by_status_and_stuck_are_listed(staff_client, ppu):
    first, second, third, fourth = babulu_tps(4)
    move(first, Status.PUBLISHED)
    move(second, Status.DELIVERED)
    move(third, Status.RETRYING)
    move(fourth, Status.REJECTED)
    upload_mark_stuck(
        upload_id=Upload.objects.get(tps_id=third, contest__kind="pkwkk").pk,
        reason=StuckReason.NETWORK,
    )
    response = staff_client.get("/en" + PPU)
    counts = dict(re.findall(r'status-(\w+)"><span class="count">(\d+)</span>', response.text))
    # Each TPS in one status: the counts add up to the total ...
    assert counts == {
        "published": "1",
        "delivered": "1",
        "sending": "0",
        "queued": "0",
        "retrying": "1",
        "rejected": "1",
        "missing": "289",
    }
    assert sum(map(int, counts.values())) == 293
    # ... and stuck is a flag across them, said apart.
    assert "1 of these TPS is flagged stuck" in text(response)


def test_children_are_listed_by_code_and_lowest_progress_first_is_one_click(staff_client, ppu):
    publish_all_but(*babulu_tps(61))  # every TPS of Babulu left
    by_code = staff_client.get("/en" + PPU)
    rows = re.findall(r'<tr id="area-(\d+)">', by_code.text)
    assert rows == ["640901", "640902", "640903", "640904"]
    assert 'href="/en/dashboard/pkwkk/6409/?sort=progress"' in by_code.text
    lowest_first = staff_client.get("/en" + PPU + "?sort=progress")
    assert re.findall(r'<tr id="area-(\d+)">', lowest_first.text)[0] == BABULU
    babulu_row = re.search(r'<tr id="area-640903">.*?</tr>', lowest_first.text, re.S).group()
    assert "0.00%" in babulu_row
    assert "0/61" in babulu_row
    assert f'href="/en/dashboard/pkwkk/{BABULU}/"' in babulu_row


def test_the_public_sites_figure_is_shown_beside_ours(staff_client, ppu):
    publish_all_but(*babulu_tps(4))
    PublicAreaProgress.objects.create(
        kind="pkwkk",
        area_code="6409",
        total=293,
        published=290,
        site_ts="2024-11-28 06:10:00",
        children={BABULU: 57},
    )
    page = text(staff_client.get("/en" + PPU))
    # The site's time is WIB; PPU's pages speak WITA, an hour later.
    assert "KPU public site: 290/293 (as of 28 Nov 07:10 WITA)" in page
    assert "here: 289/293" in page
    assert "KPU public site" in page.split("Areas below")[1]


def test_a_desa_lists_its_tps_with_status_attempts_pages_and_sha256(staff_client, ppu, staff):
    png = page_bytes(PNG_HEAD)
    receipt = upload_receive(
        tps_code=LABANGKA_TPS,
        kind="pkwkk",
        files=[page_file(page_bytes()), page_file(png, "p2.png", "image/png")],
        user=staff,
    )
    response = staff_client.get(f"/en/dashboard/pkwkk/{LABANGKA}/")
    row = re.search(rf'<tr id="tps-{LABANGKA_TPS}">.*?</tr>', response.text, re.S).group()
    assert "TPS 001" in row
    assert "queued" in row
    assert receipt.document.sha256 in row
    assert "WITA" in row  # PPU keeps central Indonesian time
    pages = re.findall(r'<img src="([^"]+)"', row)
    assert len(pages) == 2
    assert staff_client.get(pages[1]).getvalue() == png
    assert (
        len(re.findall(r'<tr id="tps-', response.text))
        == Upload.objects.filter(tps__code__startswith=LABANGKA, contest__kind="pkwkk").count()
    )


def test_the_page_files_are_for_staff_only(client, ppu, staff):
    receipt = upload_receive(tps_code=LABANGKA_TPS, kind="pkwkk", files=[page_file()], user=staff)
    url = f"/dokumen/halaman/{receipt.document.pages.get().pk}/"
    assert client.get(url).status_code == 302
    client.force_login(get_user_model().objects.create_user("kpps", password="x"))
    assert client.get(url).status_code == 403


def test_the_stuck_list_gives_reason_age_and_last_event(staff_client, ppu):
    tps = babulu_tps(1)[0]
    upload = Upload.objects.get(tps_id=tps, contest__kind="pkwkk")
    move(tps, Status.DELIVERED)
    upload_mark_stuck(upload_id=upload.pk, reason=StuckReason.SERVER_QUEUE, note="antre lama")
    response = staff_client.get("/en" + PPU)
    section = text(response).split("Stuck TPS")[1]
    assert tps in section
    assert "server queue" in section
    assert "antre lama" in section
    assert "in the server queue" in section


def test_names_and_notes_with_html_characters_read_as_written_in_both_tables(staff_client, ppu):
    # The rows of the areas below and of the stuck list are built in Python
    # (uploads.progress.templatetags.progress): what an import or an operator wrote is text.
    Area.objects.filter(code=BABULU).update(name='BABULU <b>DARAT</b> & "LAUT"')
    tps = babulu_tps(1)[0]
    Area.objects.filter(code=tps).update(name="TPS <001>")
    upload = Upload.objects.get(tps_id=tps, contest__kind="pkwkk")
    note = "<script>alert('macet')</script>"
    upload_mark_stuck(upload_id=upload.pk, reason=StuckReason.NETWORK, note=note)
    page = staff_client.get(PPU).text
    children = re.search(r'<table class="board children">.*?</table>', page, re.S).group()
    stuck = re.search(r'<table class="board stuck">.*?</table>', page, re.S).group()
    written = "BABULU &lt;b&gt;DARAT&lt;/b&gt; &amp; &quot;LAUT&quot;"
    assert f">{written}</a>" in children and f'aria-label="{written}"' in children
    assert f"{written}</span>" in stuck and "TPS &lt;001&gt;</a>" in stuck
    assert "&lt;script&gt;alert(&#x27;macet&#x27;)&lt;/script&gt;" in stuck
    assert "<script>" not in children + stuck and "<b>" not in children + stuck


def test_the_stuck_lists_times_read_in_the_pages_language_and_the_areas_zone(
    staff_client, ppu, staff, time_machine
):
    # 1 December 2024, 00:10 UTC: 08:10 in Penajam Paser Utara (WITA).
    time_machine.move_to(datetime(2024, 12, 1, 0, 10, tzinfo=UTC), tick=False)
    upload = Upload.objects.get(tps_id=babulu_tps(1)[0], contest__kind="pkwkk")
    upload_mark_stuck(upload_id=upload.pk, reason=StuckReason.NETWORK)
    staff_client.force_login(staff)
    for prefix, day in (("", "1 Des 08:10 WITA"), ("/en", "1 Dec 08:10 WITA")):
        page = staff_client.get(prefix + PPU).text
        stuck = text_of(re.search(r'<table class="board stuck">.*?</table>', page, re.S).group())
        assert stuck.count(day) == 2  # in trouble since, and the last event (the flag)


@pytest.fixture
def two_staff(ppu, staff):
    """Staff of the nation and of the kabupaten, logged in, and the names of the templates
    rendered from then on."""
    rendered: list[str] = []

    def count(**kwargs):
        rendered.append(kwargs["template"].name)

    template_rendered.connect(count)
    national, local = Client(), Client()
    national.force_login(staff)
    local.force_login(person("staff-ppu", "staff", "6409"))
    yield rendered, national, local
    template_rendered.disconnect(count)


def test_the_live_part_is_rendered_once_for_everyone_polling_the_same_state(two_staff):
    # Two staff members of different regions poll the kabupaten: the second gets the first's
    # bytes without a template rendered; a change renders it again, with the new figure.
    rendered, national, local = two_staff
    poll = {"HX-Request": "true"}
    first = national.get("/en" + PPU, headers=poll)
    assert rendered and "0 of 293 TPS published" in text(first)
    rendered.clear()
    second = local.get("/en" + PPU, headers=poll)
    assert rendered == []
    assert second.content == first.content and second["ETag"] == first["ETag"]
    move(babulu_tps(1)[0], Status.PUBLISHED)
    third = local.get("/en" + PPU, headers=poll)
    assert rendered and "1 of 293 TPS published" in text(third)
    rendered.clear()
    by_progress = local.get("/en" + PPU + "?sort=progress", headers=poll)
    assert rendered  # another sort is another part
    assert by_progress.content != third.content


def test_a_page_opened_on_a_state_someone_polls_holds_the_same_live_part_rendered_once(
    two_staff,
):
    # Staff of the nation poll the kabupaten; a local staff member opens its page: the page's
    # live part is the poll's bytes, not rendered again. Then a change: the page renders it
    # anew, with the new figure, and the next poll of that state gets the page's bytes.
    rendered, national, local = two_staff
    poll = {"HX-Request": "true"}
    polled = national.get("/en" + PPU, headers=poll).content.decode()
    rendered.clear()
    page = local.get("/en" + PPU).content.decode()
    assert polled in page and "0 of 293 TPS published" in text_of(polled)
    assert "progress/parts/area.html" not in rendered  # the live part's template
    assert "regions/parts/breadcrumb.html" in rendered  # the rest of the page is its own
    move(babulu_tps(1)[0], Status.PUBLISHED)
    rendered.clear()
    page = local.get("/en" + PPU).content.decode()
    assert "progress/parts/area.html" in rendered
    assert "1 of 293 TPS published" in text_of(page)
    rendered.clear()
    polled = national.get("/en" + PPU, headers=poll).content.decode()
    assert rendered == [] and polled in page


def test_the_stuck_list_shows_the_longest_in_trouble_first_and_counts_the_rest(
    staff_client, ppu, staff, time_machine
):
    # 30 TPS of two kecamatan flagged a minute apart, in no order of their codes: the page lists
    # the 25 flagged first, oldest first, and says 5 more are not listed; the public snapshot's
    # list of each area (many areas in one statement) is the same.
    time_machine.move_to(timezone.now(), tick=False)
    tps = babulu_tps(20) + list(
        Area.objects.filter(level=Level.TPS, code__startswith=SEPAKU)
        .order_by("code")
        .values_list("code", flat=True)[:10]
    )
    flagged = sorted(tps, key=lambda code: code[::-1])
    for code in flagged:
        upload = Upload.objects.get(tps_id=code, contest__kind="pkwkk")
        upload_mark_stuck(upload_id=upload.pk, reason=StuckReason.NETWORK)
        time_machine.shift(timedelta(minutes=1))
    staff_client.force_login(staff)  # the session idled out during the 30 minutes
    page = staff_client.get("/en" + PPU).text
    table = re.search(r'<table class="board stuck">.*?</table>', page, re.S).group()
    assert re.findall(r'<span class="code">(\d{13})</span>', table) == flagged[:25]
    assert "and 5 more stuck TPS not listed" in text_of(page)
    contest_ids = list(Contest.objects.filter(kind="pkwkk").values_list("pk", flat=True))
    lists = uploads_stuck_under_areas(
        contest_ids=contest_ids, area_codes=["6409", SEPAKU], limit=25
    )
    assert [row.code for row in lists["6409"]] == flagged[:25]
    assert [row.code for row in lists[SEPAKU]] == [
        code for code in flagged if code.startswith(SEPAKU)
    ]
    assert lists["6409"] == uploads_stuck_under(contest_ids=contest_ids, area_code="6409", limit=25)


def test_a_stuck_row_says_where_the_tps_is_and_since_when_it_has_really_been_failing(
    staff_client, ppu, staff, time_machine
):
    time_machine.move_to(timezone.now(), tick=False)
    upload = upload_receive(
        tps_code=LABANGKA_TPS, kind="pkwkk", files=[page_file()], user=staff
    ).upload
    lease = upload_claim(upload_id=upload.pk)
    first_failure = timezone.now()
    failure = Outcome("transient", "connection: Server disconnected without sending a response.")
    upload_record_outcome(lease=lease, outcome=failure)
    time_machine.shift(timedelta(minutes=40))
    upload_mark_stuck(upload_id=upload.pk, reason=StuckReason.NETWORK)
    staff_client.force_login(staff)  # the session idled out during the 40 minutes
    page = staff_client.get(PPU)  # in Indonesian
    row = text_of(re.search(r'<table class="board stuck">.*?</table>', page.text, re.S).group())
    assert "TPS 001 LABANGKA, BABULU 6409032002001" in row
    assert in_zone_text(first_failure, zone_of_area("6409")) in row  # not the flag's time
    assert "40 menit" in row
    # The last event in Indonesian, the server's own words behind a details element.
    assert "ditandai macet" in row
    english = staff_client.get("/en" + PPU).text
    assert "flagged stuck" in english


def _dropped_once(staff) -> str:
    """A document for Labangka's TPS whose first delivery lost its connection: the raw reason."""
    upload = upload_receive(tps_code=LABANGKA_TPS, kind="pkwkk", files=[page_file()], user=staff)
    lease = upload_claim(upload_id=upload.upload.pk)
    raw = "connection: Server disconnected without sending a response."
    upload_record_outcome(lease=lease, outcome=Outcome("transient", raw, network=True))
    return raw


def test_the_last_error_reads_in_the_pages_language_with_the_raw_text_behind_details(
    staff_client, ppu, staff
):
    raw = _dropped_once(staff)
    row = re.search(
        rf'<tr id="tps-{LABANGKA_TPS}">.*?</tr>',
        staff_client.get(f"/dashboard/pkwkk/{LABANGKA}/").text,
        re.S,
    ).group()
    assert "tidak tersambung (jaringan)" in row
    details = re.search(r"<details[^>]*>(.*?)</details>", row, re.S).group(1)
    assert "detail teknis" in details and raw in details
    assert raw not in text_of(row.replace(details, ""))


def test_a_reason_reads_after_its_action_with_a_colon_and_on_its_own_without_one(
    staff_client, ppu, staff
):
    _dropped_once(staff)
    meaning = "tidak tersambung (jaringan)"
    tps_page = text_of(staff_client.get(f"/dashboard/pkwkk/{LABANGKA_TPS}/").text)
    assert f"pengiriman gagal, akan dicoba lagi: {meaning}" in tps_page  # its history
    assert f"Galat terakhir {meaning}" in tps_page  # the upload's field
    desa = text_of(staff_client.get(f"/dashboard/pkwkk/{LABANGKA}/").text)
    assert f"mencoba ulang {meaning}" in desa  # beside the status in the desa's TPS table
    audit = text_of(staff_client.get("/audit/").text)
    assert f"sedang dikirim → mencoba ulang {meaning}" in audit  # the audit's reason column
    for page in (tps_page, desa, audit):
        assert f": {meaning}" not in page.replace(f"lagi: {meaning}", "")


def test_a_tps_has_a_staff_page_with_its_history_and_every_document(staff_client, ppu, staff):
    first = upload_receive(tps_code=LABANGKA_TPS, kind="pkwkk", files=[page_file()], user=staff)
    png = page_bytes(PNG_HEAD)
    second = upload_receive(
        tps_code=LABANGKA_TPS,
        kind="pkwkk",
        files=[page_file(), page_file(png, "p2.png", "image/png")],
        user=staff,
    )
    lease = upload_claim(upload_id=first.upload.pk)
    upload_record_outcome(lease=lease, outcome=Outcome("transient", "timeout: read", network=True))
    response = staff_client.get(f"/en/dashboard/pkwkk/{LABANGKA_TPS}/")
    assert response.status_code == 200
    page = text(response)
    assert "TPS 001" in page and "LABANGKA" in page  # the breadcrumb down to its desa
    assert "Attempts 1" in page
    history = page.split("History")[1]
    for said in ("document received", "document replaced", "sending", "sending failed, will retry"):
        assert said in history
    assert history.count("WITA") == 4  # every event, in the area's zone
    assert "Current document" in page and "Replaced document" in page
    for document in (first.document, second.document):
        assert f"SHA-256 {document.sha256}" in page
        for stored in document.pages.all():
            assert stored.sha256 in page
            assert f'href="/en/dokumen/halaman/{stored.pk}/"' in response.text
    assert staff_client.get("/dashboard/pkwkp/6409032002001/").status_code == 200


def test_staff_pages_say_who_is_logged_in_and_log_out_with_a_post(staff_client, ppu, staff):
    staff.first_name, staff.last_name = "Sri", "Wahyuni"
    staff.save()
    html = staff_client.get("/en" + PPU).text
    nav = re.search(r'<nav class="staff-nav".*?</nav>', html, re.S).group()
    assert "Sri Wahyuni" in nav
    assert 'href="/en/unggah/"' in nav and 'href="/admin/"' in nav
    assert re.search(r'<form method="post" action="/en/keluar/"', nav)
    assert "csrfmiddlewaretoken" in nav
    assert (
        staff_client.get("/en/keluar/").status_code == 405
    )  # never by a GET: a link can't log out
    assert staff_client.post("/en/keluar/").status_code == 302
    assert staff_client.get(PPU).status_code == 302


def test_the_admin_shows_times_in_the_areas_zone(staff_client, ppu, staff):
    staff.is_superuser = True
    staff.save()
    staff = get_user_model().objects.get(pk=staff.pk)  # read again: now an admin
    log_in(staff_client, staff)  # an admin gives their second factor
    upload_receive(tps_code=LABANGKA_TPS, kind="pkwkk", files=[page_file()], user=staff)
    upload = Upload.objects.get(tps_id=LABANGKA_TPS, contest__kind="pkwkk")
    listing = text(staff_client.get("/admin/uploads/upload/?q=6409032002001"))
    assert in_zone_text(upload.status_since, zone_of_area(LABANGKA_TPS)) in listing
    detail = text(staff_client.get(f"/admin/uploads/upload/{upload.pk}/change/"))
    assert "WITA" in detail and " WIB" not in detail


# --- Live


def test_a_poll_gets_the_fragment_with_its_trigger_and_304_while_nothing_changes(staff_client, ppu):
    first = staff_client.get(PPU, headers={"HX-Request": "true"})
    assert first.status_code == 200
    assert not first.text.lstrip().startswith("<!doctype")
    assert 'id="live"' in first.text
    assert 'hx-trigger="every 5s' in first.text
    assert "HX-Request" in first["Vary"]
    etag = first["ETag"]
    again = staff_client.get(PPU, headers={"HX-Request": "true", "If-None-Match": etag})
    assert again.status_code == 304
    move(babulu_tps(1)[0], Status.PUBLISHED)
    changed = staff_client.get(PPU, headers={"HX-Request": "true", "If-None-Match": etag})
    assert changed.status_code == 200
    assert changed["ETag"] != etag


def test_the_full_page_and_the_fragment_never_share_a_validator(staff_client, ppu):
    page = staff_client.get(PPU)
    fragment = staff_client.get(PPU, headers={"HX-Request": "true"})
    assert page["ETag"] != fragment["ETag"]
    assert page.text.lstrip().startswith("<!doctype")


def test_a_complete_area_stops_polling(staff_client, ppu):
    publish_all_but()
    fragment = staff_client.get(PPU, headers={"HX-Request": "true"})
    assert "100,00%" in fragment.text
    assert "hx-trigger" not in fragment.text
    assert "hx-trigger" not in staff_client.get(PPU).text


def test_the_page_works_without_javascript_through_plain_links(staff_client, ppu):
    page = staff_client.get("/en" + PPU).text
    assert f'href="/en/dashboard/pkwkk/{BABULU}/"' in page
    assert 'href="/en/dashboard/pkwkp/6409/"' in page  # the contest switcher
    assert 'href="/en/dashboard/pkwkk/"' in page  # up to the nation


def test_the_timeline_draws_the_areas_progress_with_an_estimate(staff_client, ppu):
    page = text(staff_client.get("/en" + PPU))
    assert "Nothing recorded yet of this area's progress over time" in page
    timeline_point_take(at=timezone.now() - timedelta(minutes=10))
    for tps in babulu_tps(30):
        move(tps, Status.PUBLISHED)
    response = staff_client.get("/en" + PPU)
    assert '<svg class="timeline-chart" role="img"' in response.text
    assert "Published 30 of 293" in text(response)
    assert "every TPS should be published by" in text(response)
    assert "timeline" not in staff_client.get(f"/en/dashboard/pkwkk/{LABANGKA}/").text


def test_the_timeline_polls_once_a_minute_on_its_own_and_answers_304_unchanged(staff_client, ppu):
    timeline_point_take()
    with CaptureQueriesContext(connection) as captured:
        part = staff_client.get(PPU + "?part=timeline", headers={"HX-Request": "true"})
    # The session, its user with their role, the contest area, the counts, the timeline: none of
    # the lists.
    assert len(captured) == 6
    assert part.text.lstrip().startswith('<section id="timeline-part"')
    assert 'hx-trigger="every 60s' in part.text
    assert 'id="live"' not in part.text
    again = staff_client.get(
        PPU + "?part=timeline", headers={"HX-Request": "true", "If-None-Match": part["ETag"]}
    )
    assert again.status_code == 304
    live = staff_client.get(PPU, headers={"HX-Request": "true"})
    assert "timeline-part" not in live.text


# --- Cost


def queries_of(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_every_page_costs_the_same_fixed_number_of_queries(staff_client, ppu, staff):
    for tps in babulu_tps(5):
        move(tps, Status.RETRYING)
        upload_mark_stuck(
            upload_id=Upload.objects.get(tps_id=tps, contest__kind="pkwkk").pk,
            reason=StuckReason.NETWORK,
        )
    progress_fold()
    timeline_point_take()
    # The session, its user with their role (one statement: accounts.backends), the area with
    # its ancestors (none for the nation), the contests, the counts, the public site's figure,
    # the stuck list, the timeline. PPU has four kecamatan, Penajam and Babulu 18 and 13 desa:
    # the number of children or stuck rows changes nothing.
    assert queries_of(staff_client, "/dashboard/pkwkk/") == 7
    areas = [PPU, "/dashboard/pkwkk/640901/", f"/dashboard/pkwkk/{BABULU}/"]
    assert {url: queries_of(staff_client, url) for url in areas} == dict.fromkeys(areas, 8)
    # The live part polled every 5 s leaves the timeline out.
    with CaptureQueriesContext(connection) as captured:
        staff_client.get(PPU, headers={"HX-Request": "true"})
    assert len(captured) == 7
    # A desa has no timeline (its TPS rows say it all) but its TPS and their pages, whatever
    # their number.
    for tps, pages in [("6409011006001", 1), (LABANGKA_TPS, 3), ("6409032002002", 2)]:
        files = [page_file() for _ in range(pages)]
        upload_receive(tps_code=tps, kind="pkwkk", files=files, user=staff)
    small, large = "/dashboard/pkwkk/6409011006/", f"/dashboard/pkwkk/{LABANGKA}/"
    assert queries_of(staff_client, small) == queries_of(staff_client, large) == 9
