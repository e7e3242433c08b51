"""The poller against a real HTTP server on loopback serving a folder of the KPU's public JSON."""

import hashlib
import json
import logging
import re
import signal
import socket
import sys
import threading
import time
from collections import Counter, defaultdict
from decimal import ROUND_HALF_UP, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core.management import CommandError, call_command
from structlog.testing import capture_logs

from regions import codes
from regions.models import Area, Contest, Level
from sirekap_tracker.health import redis_client
from tests.conftest import PROJECT_DIR, child_env, wait_until
from uploads import kpu, poller, selectors, tasks
from uploads.models import PublicAreaProgress, Source, Status, Upload, UploadEvent
from uploads.progress.selectors import progress_of_area
from uploads.progress.services import progress_fold, progress_recount
from uploads.services.contests import contest_open
from uploads.services.publication import upload_mark_published
from uploads.services.transitions import upload_transition

pytestmark = pytest.mark.django_db

TS = "2024-11-28 06:00:00"
KAB = "pilkada/hhcw/pkwkk/64/6409.json"
BABULU = "pilkada/hhcw/pkwkk/64/6409/640903.json"
LABANGKA = "pilkada/hhcw/pkwkk/64/6409/640903/6409032002.json"


class Site:
    """A folder of JSON files under a data root, as the public site serves them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.hits: Counter[str] = Counter()
        self.failing: set[str] = set()
        self.slow: set[str] = set()
        # Answered with a redirect to the other path.
        self.moved: dict[str, str] = {}
        self.lock = threading.Lock()

    def write(self, path: str, data) -> None:
        self.write_text(path, json.dumps(data))

    def write_text(self, path: str, text: str) -> None:
        file = self.folder / path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text)

    def read(self, path: str):
        return json.loads((self.folder / path).read_text())

    def remove(self, path: str) -> None:
        (self.folder / path).unlink()


def handler_for(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            path = urlsplit(self.path).path.removeprefix("/data/")
            with site.lock:
                site.hits[path] += 1
            if path in site.slow:
                time.sleep(1)
            file = site.folder / path
            if path in site.moved:
                self.send_response(301)
                self.send_header("Location", f"/data/{site.moved[path]}")
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif path in site.failing:
                self.answer(500, b"internal error")
            elif not file.is_file():
                self.answer(404, b"not found")
            else:
                self.answer_file(file.read_bytes())

        def answer_file(self, body: bytes) -> None:
            etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            self.answer(200, body, etag)

        def answer(self, status: int, body: bytes, etag: str = "") -> None:
            self.send_response(status)
            if etag:
                self.send_header("ETag", etag)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    return Handler


@pytest.fixture(autouse=True)
def world(ppu):
    """Every test here reads the PPU demo's public site."""


@pytest.fixture
def site(tmp_path, settings):
    site = Site(tmp_path / "site")
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(site))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.SIREKAP_DATA_URL = f"http://127.0.0.1:{server.server_port}/data"
    settings.POLL_BACKOFF_SECONDS = 0
    settings.POLL_RETRIES = 2
    settings.POLL_TIMEOUT_SECONDS = 5
    settings.POLL_CONCURRENCY = 4
    yield site
    server.shutdown()
    server.server_close()


# --- Writing a site as the KPU would


def images_of(tps: str) -> list[str]:
    return [f"https://images.example/{tps}-20241127-151203--{page}.jpg" for page in ("a", "b")]


def persen(published: int, total: int) -> float | None:
    if not total:
        return None
    exact = Decimal(100 * published) / Decimal(total)
    return float(exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def row(published: int, total: int, pemilu: bool) -> dict:
    if pemilu:  # Pemilu rows carry persen directly, and no counts
        return {"psu": "Reguler", "100025": 7, "persen": persen(published, total)}
    progres = {"total": total, "persen": persen(published, total), "progres": published}
    return {"psu": "Reguler", "1001084": 7, "progres": progres, "status_progress": True}


def area_file(table: dict, total: int, published: int, pemilu: bool) -> dict:
    progres = {"total": total, "progres": published}
    if pemilu:
        chart = {"100025": 70, "persen": persen(published, total)}
        return {"mode": "hhcw", "chart": chart, "table": table, "progres": progres, "ts": TS}
    chart = {"1001084": 70, "progres": {**progres, "persen": persen(published, total)}}
    tungsura = {"chart": chart, "table": table}
    return {"mode": "hhcw", "tungsura": tungsura, "psu": "Reguler", "progres": progres, "ts": TS}


def tps_file(images: list[str] | None) -> dict:
    return {
        "mode": "hhcw",
        "tungsura": {"chart": {"1001084": 120}, "administrasi": {"suara_sah": 120}},
        "images": images,
        "psu": "Reguler",
        "ts": TS,
    }


def build(site: Site, kind: str, published: set[str], root: str, extra: dict | None = None):
    """Writes every hhcw file of `kind` from `root` down, the `published` TPS counted and listing
    their images. `extra`: rows of areas we do not track, added to the root's table."""
    pemilu = kind not in codes.PILKADA_KINDS
    areas = list(
        Area.objects.filter(code__startswith=root).values_list("code", "level", "parent_id")
    )
    tps = [code for code, level, _ in areas if level == Level.TPS]
    children = defaultdict(list)
    for code, _, parent in areas:
        children[parent].append(code)

    def counts(code: str) -> tuple[int, int]:
        under = [t for t in tps if t.startswith(code)]
        return sum(t in published for t in under), len(under)

    for code, level, _ in areas:
        if level == Level.TPS:
            continue
        table = {child: row(*counts(child), pemilu) for child in children[code]}
        if code == root:
            table.update(extra or {})
        done, total = counts(code)
        site.write(kpu.hhcw_path(kind, code), area_file(table, total, done, pemilu))
    for code in published:
        site.write(kpu.hhcw_path(kind, code), tps_file(images_of(code)))


def tps(desa: str, number: int) -> str:
    return f"{desa}{number:03d}"


def path(code: str) -> str:
    return kpu.hhcw_path("pkwkk", code)


def published_tps(kind: str) -> set[str]:
    uploads = Upload.objects.filter(contest__kind=kind, status=Status.PUBLISHED)
    return set(uploads.values_list("tps_id", flat=True))


# --- Tests


def test_the_path_of_an_area_is_the_chain_of_its_ancestors_codes():
    assert kpu.hhcw_path("pkwkk", "640903") == "pilkada/hhcw/pkwkk/64/6409/640903.json"
    assert (
        kpu.hhcw_path("pkwkk", "6409032002001")
        == "pilkada/hhcw/pkwkk/64/6409/640903/6409032002/6409032002001.json"
    )
    assert kpu.hhcw_path("pkwkk", "") == "pilkada/hhcw/pkwkk.json"
    assert kpu.hhcw_path("ppwp", "64") == "pemilu/hhcw/ppwp/64.json"


# --- A messy site: one fault at a time. Each breaks one file; the poll marks every TPS it can
# still read, marks nothing below the fault, and says what and where.

# Published on the site: a TPS of Penajam (fine whatever breaks elsewhere), and the victim.
FINE = tps("6409011001", 1)
BABULU_DARAT = "6409032001"


def _row_without_progres(site):
    kab = site.read(KAB)
    kab["tungsura"]["table"]["640902"] = {"psu": "Reguler"}
    site.write(KAB, kab)


def _count_null(site):
    babulu = site.read(BABULU)
    babulu["tungsura"]["table"]["6409032002"]["progres"]["progres"] = None
    site.write(BABULU, babulu)


FAULTS = {
    # fault: (the TPS it hides, what breaks its way, what the log says, as an error or not)
    "an area row without its progres": (
        tps("6409021003", 1),
        _row_without_progres,
        f"{KAB}: table row 640902 has neither progres nor a persen",
    ),
    "a null count": (
        tps("6409032002", 1),
        _count_null,
        f"{BABULU}: table row 6409032002 progres.progres is missing or null, not a count",
    ),
    "an area file answering 500": (
        tps("6409032003", 1),
        lambda site: site.failing.add(path("6409032003")),
        f"{path('6409032003')}: HTTP 500 (3 attempts)",
    ),
    "an area file that is not JSON": (
        tps("6409041005", 1),
        lambda site: site.write_text(path("640904"), "<html>Service Unavailable</html>"),
        f"{path('640904')}: invalid JSON",
    ),
    "a TPS file without images": (
        tps(BABULU_DARAT, 2),
        lambda site: site.write(path(tps(BABULU_DARAT, 2)), tps_file(None)),
        f"{path(tps(BABULU_DARAT, 2))}: no images yet",
    ),
    "a TPS file without tungsura": (
        tps(BABULU_DARAT, 3),
        lambda site: site.write(path(tps(BABULU_DARAT, 3)), {"mode": "hhcw", "tungsura": None}),
        f"{path(tps(BABULU_DARAT, 3))}: no images yet",
    ),
    "a TPS file missing": (
        tps(BABULU_DARAT, 4),
        lambda site: site.remove(path(tps(BABULU_DARAT, 4))),
        f"{path(tps(BABULU_DARAT, 4))}: HTTP 404",
    ),
    "a TPS file answering 500": (
        tps(BABULU_DARAT, 5),
        lambda site: site.failing.add(path(tps(BABULU_DARAT, 5))),
        f"{path(tps(BABULU_DARAT, 5))}: HTTP 500 (3 attempts)",
    ),
    "images that are not URLs": (
        tps(BABULU_DARAT, 6),
        lambda site: site.write(path(tps(BABULU_DARAT, 6)), tps_file([123, None])),
        "images is list [123, null], not a list of URLs",
    ),
    "a TPS file cut short": (
        tps(BABULU_DARAT, 7),
        lambda site: site.write_text(path(tps(BABULU_DARAT, 7)), '{"images": ["truncated'),
        f"{path(tps(BABULU_DARAT, 7))}: invalid JSON",
    ),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_fault_in_one_file_hides_what_is_below_it_and_says_where(site, settings, caplog, fault):
    hidden, break_it, said = FAULTS[fault]
    build(site, "pkwkk", {FINE, hidden}, root="6409")
    break_it(site)
    with caplog.at_level(logging.INFO, logger="uploads.poller"):
        summary = poller.poll()
    assert published_tps("pkwkk") == {FINE}
    assert said in caplog.text
    if "no images yet" not in said:
        assert summary.errors >= 1
    upload = Upload.objects.get(tps_id=FINE, contest__kind="pkwkk")
    assert (upload.source, upload.public_images) == (Source.PUBLIC_SITE, images_of(FINE))
    event = UploadEvent.objects.get(upload=upload, action="published")
    assert (event.old_status, event.new_status, event.source) == (
        Status.MISSING,
        Status.PUBLISHED,
        Source.PUBLIC_SITE,
    )


def test_a_poll_publishing_all_over_the_kabupaten_at_once_writes_one_event_each_and_exact_counts(
    site, settings
):
    """Replies are read together, whatever their number; each upload is still marked once, with
    its event, and the counts agree with a recount, folded or not."""
    settings.POLL_CONCURRENCY = 8
    desas = Area.objects.filter(level=Level.DESA, code__startswith="6409").order_by("code")
    published = {tps(desa, 1) for desa in desas.values_list("code", flat=True)[::2]}
    published |= {tps("6409011003", number) for number in range(1, 8)}
    for kind in ("pkwkk", "pkwkp"):
        build(site, kind, published, root="6409" if kind == "pkwkk" else "64")

    summary = poller.poll()

    assert summary.published == 2 * len(published)
    assert (published_tps("pkwkk"), published_tps("pkwkp")) == (published, published)
    events = UploadEvent.objects.filter(action="published").values_list("upload_id", flat=True)
    assert sorted(Counter(events).values()) == [1] * summary.published
    assert progress_recount().drifts == []
    progress_fold()
    assert progress_recount().drifts == []
    site.hits.clear()
    assert poller.poll().requests == 2


@pytest.mark.parametrize("folded", [False, True], ids=["pending", "folded"])
def test_our_counts_of_many_areas_at_once_are_each_areas_own(folded):
    """What the poller compares with the site: read for a whole level at once, each area's
    children as the pages count them (progress_of_area), folded or still pending."""
    for code in ("6409011001001", "6409011003002", "6409032002001", "6409041005001"):
        upload = Upload.objects.get(tps_id=code, contest__kind="pkwkk")
        upload_transition(
            upload_id=upload.pk,
            expected=Status.UNPUBLISHED,
            new=Status.PUBLISHED,
            action="published",
        )
    if folded:
        progress_fold()
    contest_ids = list(Contest.objects.filter(kind="pkwkk").values_list("pk", flat=True))
    levels = [Area.objects.filter(level=level) for level in Level if level != Level.TPS]
    for area_codes in [[""], *([area.code for area in areas] for areas in levels)]:
        together = selectors.upload_counts_per_child(kind="pkwkk", area_codes=area_codes)
        for code in area_codes:
            one = progress_of_area(contest_ids=contest_ids, area_code=code).children
            assert [(c.code, c.total, c.published, c.missing) for c in one] == [
                (c.code, c.total, c.published, c.missing) for c in together[code].values()
            ]
    assert selectors.upload_counts_per_child(kind="ppwp", area_codes=["6409"]) == {"6409": {}}


def test_a_file_the_site_does_not_count_yet_is_not_read(site):
    """Images in a TPS file the site's own counts do not include yet: not ours to read."""
    early = tps(BABULU_DARAT, 8)
    build(site, "pkwkk", {FINE}, root="6409")
    site.write(path(early), tps_file(images_of(early)))
    poller.poll()
    assert site.hits[path(early)] == 0
    assert published_tps("pkwkk") == {FINE}
    assert site.hits["pilkada/hhcw/pkwkp/64.json"] == 1  # the other contest, never published


def test_a_second_run_with_nothing_changed_costs_one_request_per_contest(site):
    build(site, "pkwkk", {tps("6409032002", 1)}, root="6409")
    untracked = {"6401": row(500, 900, pemilu=False)}  # a kabupaten we do not track
    build(site, "pkwkp", {tps("6409011001", 1), tps("6409032002", 1)}, root="64", extra=untracked)
    first = poller.poll()
    assert first.published == 3
    assert not [path for path in site.hits if "/6401" in path]

    site.hits.clear()
    second = poller.poll()

    assert site.hits == {"pilkada/hhcw/pkwkp/64.json": 1, KAB: 1}
    assert (second.requests, second.not_modified, second.published, second.errors) == (2, 2, 0, 0)


def test_a_change_in_one_desa_is_followed_down_that_branch_only(site):
    build(site, "pkwkk", {tps("6409011001", 1), tps("6409032001", 1)}, root="6409")
    poller.poll(kind="pkwkk")
    new = tps("6409032002", 4)
    build(site, "pkwkk", {tps("6409011001", 1), tps("6409032001", 1), new}, root="6409")
    site.hits.clear()

    summary = poller.poll(kind="pkwkk")

    assert site.hits == {KAB: 1, BABULU: 1, LABANGKA: 1, path(new): 1}
    assert summary.published == 1
    assert new in published_tps("pkwkk")


def test_a_branch_that_failed_is_tried_again_though_the_files_above_it_are_unchanged(site):
    labangka_1 = tps("6409032002", 1)
    build(site, "pkwkk", {labangka_1}, root="6409")
    site.failing.add(path(labangka_1))
    assert poller.poll(kind="pkwkk").errors == 1
    site.failing.clear()
    site.hits.clear()

    summary = poller.poll(kind="pkwkk")

    assert site.hits == {KAB: 1, BABULU: 1, LABANGKA: 1, path(labangka_1): 1}
    assert (summary.not_modified, summary.published) == (3, 1)


def test_the_public_figures_of_the_areas_read_are_stored(site):
    build(site, "pkwkk", {tps("6409032002", 1), tps("6409032002", 2)}, root="6409")

    poller.poll(kind="pkwkk")

    kab = PublicAreaProgress.objects.get(kind="pkwkk", area_code="6409")
    assert (kab.total, kab.published, kab.site_ts) == (293, 2, TS)
    assert kab.children == {"640901": 0, "640902": 0, "640903": 2, "640904": 0}
    assert kab.etag
    labangka = PublicAreaProgress.objects.get(kind="pkwkk", area_code="6409032002")
    assert (labangka.total, labangka.published) == (6, 2)
    assert labangka.children[tps("6409032002", 1)] == 1
    assert labangka.children[tps("6409032002", 3)] == 0
    read = set(PublicAreaProgress.objects.values_list("area_code", flat=True))
    assert read == {"6409", "640903", "6409032002"}


def test_pemilu_shaped_files_work_for_a_ppwp_contest(site):
    contest_open(kind="ppwp", region_code="6409")
    published = {tps("6409011003", number) for number in range(1, 8)} | {tps("6409032002", 1)}
    build(site, "ppwp", published, root="6409")
    assert "tungsura" not in site.read("pemilu/hhcw/ppwp/64/6409.json")

    summary = poller.poll(kind="ppwp")

    assert published_tps("ppwp") == published
    assert published_tps("pkwkk") == set()
    assert summary.errors == 0
    kab = PublicAreaProgress.objects.get(kind="ppwp", area_code="6409")
    assert kab.children == {"640901": 7, "640902": 0, "640903": 1, "640904": 0}
    site.hits.clear()
    assert poller.poll(kind="ppwp").requests == 1


def test_a_region_limits_the_walk_to_that_area(site):
    build(site, "pkwkk", {tps("6409032002", 1), tps("6409011001", 1)}, root="6409")

    poller.poll(kind="pkwkk", region="640903")

    assert KAB not in site.hits
    assert published_tps("pkwkk") == {tps("6409032002", 1)}


def test_a_slow_file_times_out_and_the_rest_of_the_run_proceeds(site, settings, caplog):
    settings.POLL_TIMEOUT_SECONDS = 0.2
    settings.POLL_RETRIES = 1
    build(site, "pkwkk", {tps("6409011001", 1), tps("6409032002", 1)}, root="6409")
    penajam = path("640901")
    site.slow.add(penajam)

    with caplog.at_level(logging.WARNING, logger="uploads.poller"):
        summary = poller.poll(kind="pkwkk")

    assert published_tps("pkwkk") == {tps("6409032002", 1)}
    assert summary.errors == 1
    assert f"{penajam}: timeout (2 attempts)" in caplog.text


def test_a_file_moved_elsewhere_is_followed_with_its_conditional_headers(site, settings):
    labangka = tps("6409032002", 1)
    build(site, "pkwkk", {labangka}, root="6409")
    desa = path("6409032002")
    site.moved[desa] = "elsewhere.json"
    site.write("elsewhere.json", site.read(desa))

    assert poller.poll(kind="pkwkk").published == 1
    assert site.hits["elsewhere.json"] == 1
    etag = PublicAreaProgress.objects.get(kind="pkwkk", area_code="6409032002").etag
    url, headers = f"{settings.SIREKAP_DATA_URL}/{desa}", {"If-None-Match": etag}
    with poller._client() as client:
        reply = poller._fetch(client, url, headers, retries=0, backoff=0)
    assert (reply.status, reply.etag, reply.requests) == (304, etag, 1)


def test_a_site_that_refuses_connections_is_logged_with_the_error_and_the_attempts(
    site, settings, caplog
):
    settings.POLL_RETRIES = 1
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        settings.SIREKAP_DATA_URL = f"http://127.0.0.1:{closed.getsockname()[1]}/data"
    with caplog.at_level(logging.WARNING, logger="uploads.poller"):
        summary = poller.poll(kind="pkwkk")
    assert (summary.errors, summary.requests, summary.succeeded) == (1, 2, False)
    assert re.search(r"6409\.json: \w+Error: .*[Cc]onnection refused.* \(2 attempts\)", caplog.text)


def test_a_site_that_keeps_failing_stops_the_run_early(site, settings):
    settings.POLL_CONCURRENCY = 1
    settings.POLL_GIVE_UP_AFTER_FAILURES = 2
    desas = ("6409011001", "6409021003", "6409032001", "6409041005")
    build(site, "pkwkk", {tps(desa, 1) for desa in desas}, root="6409")
    kecamatan = [path(code) for code in ("640901", "640902", "640903", "640904")]
    site.failing.update(kecamatan)

    summary = poller.poll(kind="pkwkk")

    assert summary.gave_up
    assert str(summary).endswith("stopped early: the site kept failing")
    # The third kecamatan may already be on its way when the second fails; the fourth is not.
    assert site.hits[kecamatan[-1]] == 0
    assert summary.requests <= 1 + 3 * 3


def test_the_command_prints_one_summary_line(site):
    build(site, "pkwkk", {tps("6409032002", 1)}, root="6409")
    out = StringIO()

    call_command("poll_public_site", "--once", "--contest", "pkwkk", stdout=out)

    assert out.getvalue() == "poll: 4 requests, 0 not modified, 1 published, 0 errors\n"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--contest", "pilpres"], "--contest: unknown 'pilpres'; one of pkwkp, pkwkk, ppwp"),
        (["--contest", "ppwp"], "--contest: no ppwp contest is open"),
        (["--region", "6401"], "--region: no area with code '6401'"),
        (["--region", "65"], "--region: 65 lies outside every open contest's region"),
        (["--contest", "pkwkk", "--region", "64"], "--region: 64 lies outside every open"),
    ],
)
def test_a_bad_contest_or_region_is_a_command_error_saying_what_is_wrong(site, arguments, message):
    Area.objects.create(code="65", name="KALIMANTAN UTARA", level=Level.PROVINSI)
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("poll_public_site", "--once", *arguments, stdout=StringIO())
    assert not site.hits


def test_the_command_says_when_there_is_no_site_to_poll(settings):
    settings.SIREKAP_DATA_URL = ""
    with pytest.raises(CommandError, match="SIREKAP_DATA_URL is not set"):
        call_command("poll_public_site", "--once", stdout=StringIO())


def test_the_beat_task_skips_while_another_poll_runs_and_releases_its_lock(site):
    build(site, "pkwkk", {tps("6409032002", 1)}, root="6409")
    assert redis_client().set(poller.LOCK_KEY, "running", nx=True, ex=60)

    tasks.poll_public_site()
    assert not site.hits

    redis_client().delete(poller.LOCK_KEY)
    tasks.poll_public_site()
    assert published_tps("pkwkk") == {tps("6409032002", 1)}
    assert redis_client().set(poller.LOCK_KEY, "running", nx=True, ex=60)
    redis_client().delete(poller.LOCK_KEY)


def test_a_killed_polls_lock_lapses_within_seconds_and_a_late_poll_leaves_the_next_ones_alone():
    killed = poller._PollLock()
    assert killed.acquire()
    assert 0 < redis_client().ttl(poller.LOCK_KEY) <= poller.LOCK_SECONDS
    redis_client().delete(poller.LOCK_KEY)  # as if it had lapsed, its worker killed mid-poll

    running = poller._PollLock()
    assert running.acquire()
    killed.renewed -= poller.LOCK_RENEW_SECONDS  # time for both to renew
    running.renewed -= poller.LOCK_RENEW_SECONDS
    with pytest.raises(poller.PollLockLost):
        killed.renew()
    killed.release()
    assert redis_client().get(poller.LOCK_KEY) == running.token.encode()
    redis_client().expire(poller.LOCK_KEY, 1)
    running.renew()
    assert redis_client().ttl(poller.LOCK_KEY) > 1
    running.release()
    assert not redis_client().exists(poller.LOCK_KEY)


def test_a_poll_takes_its_lock_again_when_redis_lost_it():
    running = poller._PollLock()
    assert running.acquire()
    redis_client().delete(poller.LOCK_KEY)  # Redis restarted without its data
    running.renewed -= poller.LOCK_RENEW_SECONDS
    running.renew()
    assert redis_client().get(poller.LOCK_KEY) == running.token.encode()
    assert 0 < redis_client().ttl(poller.LOCK_KEY) <= poller.LOCK_SECONDS
    assert not poller._PollLock().acquire()
    running.release()


def slow_handling(monkeypatch, seconds: float, then=lambda: None) -> list[bool]:
    """Each file the walk reads takes `seconds` to handle, as on a busy night; after each,
    `then()` runs and another poll tries to start: what it got is returned, in order."""
    handle = poller._Walk._usable
    others: list[bool] = []

    def handle_slowly(walk, target, reply):
        time.sleep(seconds)
        read = handle(walk, target, reply)
        then()
        others.append(poller._PollLock().acquire())
        return read

    monkeypatch.setattr(poller._Walk, "_usable", handle_slowly)
    return others


def test_a_poll_slow_to_handle_its_files_keeps_its_lock_and_no_second_poll_starts(
    site, monkeypatch
):
    # Eight desa answer at once while the walk handles one file at a time, slower together
    # than the lease: the lease is renewed between files, not only between waits.
    desas = list(
        Area.objects.filter(parent_id="640903", level=Level.DESA).values_list("code", flat=True)[:8]
    )
    build(site, "pkwkk", {tps(desa, 1) for desa in desas}, root="6409")
    monkeypatch.setattr(poller, "LOCK_SECONDS", 1)
    monkeypatch.setattr(poller, "LOCK_RENEW_SECONDS", 0.2)
    others = slow_handling(monkeypatch, 0.3)

    tasks.poll_public_site()

    assert len(others) >= 17 and not any(others)
    assert published_tps("pkwkk") == {tps(desa, 1) for desa in desas}
    assert not redis_client().exists(poller.LOCK_KEY)


def test_a_poll_whose_lock_another_poll_took_stops_and_leaves_that_lock_alone(
    site, monkeypatch, caplog
):
    build(site, "pkwkk", {tps("6409032002", 1)}, root="6409")
    monkeypatch.setattr(poller, "LOCK_RENEW_SECONDS", 0)
    take_over = lambda: redis_client().set(poller.LOCK_KEY, "another poll")  # noqa: E731
    slow_handling(monkeypatch, 0, then=take_over)

    with caplog.at_level(logging.WARNING, logger="uploads.poller"):
        tasks.poll_public_site()

    assert "another poll took the lock over; this one stopped" in caplog.text
    assert published_tps("pkwkk") == set()  # it stopped after the kabupaten's file
    assert redis_client().get(poller.LOCK_KEY) == b"another poll"
    redis_client().delete(poller.LOCK_KEY)


def test_the_beat_task_without_a_site_logs_once_and_does_nothing(settings, caplog):
    settings.SIREKAP_DATA_URL = ""
    poller._say_not_configured.cache_clear()  # once per process: start this test afresh
    with caplog.at_level(logging.WARNING, logger="uploads.poller"):
        tasks.poll_public_site()
        tasks.poll_public_site()
    assert caplog.text.count("SIREKAP_DATA_URL is not set") == 1
    assert not PublicAreaProgress.objects.exists()


def summaries(output: str) -> list[str]:
    """The command's own lines, without the log lines interleaved on the same terminal."""
    return [line for line in output.splitlines() if line.startswith("poll: ")]


@pytest.mark.django_db(transaction=True)
def test_without_once_the_command_polls_every_interval_until_ctrl_c(site, settings, start_process):
    build(site, "pkwkk", {tps("6409032002", 1)}, root="6409")
    env = child_env(
        SIREKAP_DATA_URL=settings.SIREKAP_DATA_URL,
        POLL_INTERVAL_SECONDS="1",
        POLL_BACKOFF_SECONDS="0",
    )
    manage = str(PROJECT_DIR / "manage.py")
    command = [sys.executable, manage, "poll_public_site", "--contest", "pkwkk"]
    child = start_process(command, name="poll", env=env)
    wait_until(lambda: len(summaries(child.output())) >= 2, timeout=30)

    child.process.send_signal(signal.SIGINT)

    assert child.process.wait(timeout=15) == 0
    lines = summaries(child.output())
    assert lines[0] == "poll: 4 requests, 0 not modified, 1 published, 0 errors"
    assert lines[1] == "poll: 1 requests, 1 not modified, 0 published, 0 errors"
    assert lines[-1] == "poll: stopped"


def test_only_https_image_urls_or_the_sites_own_are_kept(site, settings, caplog):
    kept, dropped = tps("6409032002", 1), tps("6409032002", 2)
    build(site, "pkwkk", {kept, dropped}, root="6409")
    own = f"{settings.SIREKAP_DATA_URL}/images/{kept}-a.jpg"  # the site's origin, plain http
    hostile = ["javascript:alert(document.cookie)", "data:text/html,<script>x</script>",
               "http://elsewhere.example/a.jpg", "//elsewhere.example/b.jpg"]  # fmt: skip
    site.write(path(kept), tps_file([*hostile, "https://images.example/a.jpg", own]))
    site.write(path(dropped), tps_file(hostile))
    with caplog.at_level(logging.WARNING, logger="uploads.poller"):
        summary = poller.poll()
    upload = Upload.objects.get(tps_id=kept, contest__kind="pkwkk")
    assert upload.status == Status.PUBLISHED
    assert upload.public_images == ["https://images.example/a.jpg", own]
    assert published_tps("pkwkk") == {kept}
    assert summary.published == 1
    assert f"{path(dropped)}: no usable image URL" in caplog.text
    assert "image URL dropped, not https: or the site's: 'javascript:alert" in caplog.text


def test_a_batch_marked_published_leaves_an_upload_published_meanwhile_and_counts_exactly(
    site, monkeypatch
):
    """The TPS of a batch are marked in one statement, each upload by the same rule as alone:
    one published by someone else between the poller's read and its mark keeps what that wrote
    (no second event), a rejected and a stuck one are published, with one event each, the stuck
    flag cleared, one log line each and counts a recount agrees with."""
    labangka = [tps("6409032002", number) for number in (1, 2, 3, 4)]
    build(site, "pkwkk", set(labangka), root="6409")
    upload = {code: Upload.objects.get(tps_id=code, contest__kind="pkwkk").pk for code in labangka}
    rejected, stuck, meanwhile, missing = (upload[code] for code in labangka)
    upload_transition(upload_id=rejected, expected=Status.UNPUBLISHED, new=Status.REJECTED,
                      action="rejected")  # fmt: skip
    upload_transition(upload_id=stuck, expected=Status.UNPUBLISHED, new=None, action="stuck",
                      changes={"stuck": True, "stuck_reason": "device"})  # fmt: skip
    read = selectors.upload_ids_unpublished

    def read_then_published_meanwhile(**arguments):
        unpublished = read(**arguments)
        upload_mark_published(upload_id=meanwhile, images=["https://images.example/earlier.jpg"])
        return unpublished

    monkeypatch.setattr(selectors, "upload_ids_unpublished", read_then_published_meanwhile)
    with capture_logs() as logs:
        summary = poller.poll()

    assert summary.published == 3
    events = UploadEvent.objects.filter(action="published").order_by("upload_id")
    assert [(e.upload_id, e.old_status, e.new_status, e.source, e.actor_id) for e in events] == [
        (rejected, "rejected", "published", Source.PUBLIC_SITE, None),
        (stuck, "missing", "published", Source.PUBLIC_SITE, None),
        (meanwhile, "missing", "published", Source.PUBLIC_SITE, None),
        (missing, "missing", "published", Source.PUBLIC_SITE, None),
    ]
    kept = Upload.objects.get(pk=meanwhile)
    assert kept.public_images == ["https://images.example/earlier.jpg"]
    assert kept.status_since == events.get(upload_id=meanwhile).created_at
    for code in (labangka[0], labangka[1], labangka[3]):
        marked = Upload.objects.get(pk=upload[code])
        assert (marked.status, marked.public_images, marked.stuck, marked.stuck_reason) == (
            Status.PUBLISHED, images_of(code), False, ""
        )  # fmt: skip
    published_lines = [line for line in logs if line["event"] == "upload published"]
    assert sorted(line["upload_id"] for line in published_lines) == [
        rejected, stuck, meanwhile, missing
    ]  # fmt: skip
    contest_ids = list(Contest.objects.filter(kind="pkwkk").values_list("pk", flat=True))
    desa = progress_of_area(contest_ids=contest_ids, area_code="640903").children
    assert next(c for c in desa if c.code == "6409032002").published == 4
    assert progress_recount().drifts == []
    progress_fold()
    assert progress_recount().drifts == []
