"""The public snapshot (public/snapshots.py): public pages and open data answered from files the
workers refresh, built once on a first request, still served (marked stale) when PostgreSQL or
Redis is down."""

import math
import os
import threading
import time

import httpx
import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections, transaction

from public import snapshots
from public.services import REFRESH_LOCK, snapshot_kinds_due, snapshot_refresh, snapshot_sweep
from regions.selectors import area_codes_down_to
from tests.conftest import child_env, wait_until
from tests.test_pipeline import manage, start_beat, start_web, start_worker
from tests.world import BABULU, LABANGKA, LABANGKA_TPS, SEPAKU, babulu_tps, move, refresh, text
from uploads.models import Status, UploadEvent
from uploads.progress.selectors import progress_home

pytestmark = pytest.mark.usefixtures("ppu")
KIND = "pkwkk"
PAGES = {
    "nation": "/en/progress/pkwkk/",
    "ppu": "/en/progress/pkwkk/6409/",
    "babulu": f"/en/progress/pkwkk/{BABULU}/",
    "sepaku": f"/en/progress/pkwkk/{SEPAKU}/",
    "labangka": f"/en/progress/pkwkk/{LABANGKA}/",
    "tps": f"/en/progress/pkwkk/{LABANGKA_TPS}/",
}
PPU_FILE = "/api/hhcw/pkwkk/64/6409.json"
GOVERNOR_PAGE = "/en/progress/pkwkp/64/"  # Kalimantan Timur's governor, the other contest
TPS_FILE = f"/api/hhcw/pkwkk/64/6409/{BABULU}/{LABANGKA}/{LABANGKA_TPS}.json"
STALE_BANNER = "These figures may be out of date"
PUBLISHED_TPS = '<span class="status status-published">published</span>'


def etags(client, urls: dict[str, str]) -> dict[str, str]:
    return {name: client.get(url)["ETag"] for name, url in urls.items()}


def test_a_refresh_rebuilds_the_areas_whose_data_changed_and_those_above_them_only(client):
    etags(client, PAGES)
    refresh()  # beat's, every few seconds since the workers started
    before = etags(client, PAGES)
    move(LABANGKA_TPS, Status.PUBLISHED)
    # Until the workers refresh, everyone is answered the snapshot as it was.
    assert etags(client, PAGES) == before
    result = snapshot_refresh(KIND, budget_seconds=60)
    # The TPS, its desa, kecamatan, kabupaten, provinsi and the nation changed; of those, five
    # have entries (nobody asked for the provinsi).
    assert (result.changed, result.rebuilt, result.left) == (6, 5, 0)
    after = etags(client, PAGES)
    assert {name for name in PAGES if after[name] != before[name]} == set(PAGES) - {"sepaku"}
    assert PUBLISHED_TPS in client.get(PAGES["tps"]).text
    assert "/api/dokumen/" not in client.get(PAGES["tps"]).text  # published without pages


def test_a_refresh_that_finds_nothing_changed_rewrites_nothing(client, snapshot_root):
    for url in PAGES.values():
        client.get(url)
    refresh()
    written = {path: path.stat().st_mtime_ns for path in snapshot_root.rglob("*.html")}
    result = snapshot_refresh(KIND, budget_seconds=60)
    assert (result.changed, result.rebuilt) == (0, 0)
    assert {path: path.stat().st_mtime_ns for path in written} == written


@pytest.mark.django_db(transaction=True)
def test_a_change_committed_after_a_refresh_read_past_it_is_rebuilt_by_the_next(client):
    early, late = "6409032002002", LABANGKA_TPS
    pages = {tps: f"/en/progress/pkwkk/{tps}/" for tps in (early, late)}
    etags(client, pages)
    refresh()
    started, release = threading.Event(), threading.Event()

    def transition_committed_late() -> None:
        with transaction.atomic():
            move(late, Status.PUBLISHED)  # takes its event id now
            started.set()
            release.wait(timeout=30)
        connections.close_all()

    thread = threading.Thread(target=transition_committed_late)
    thread.start()
    assert started.wait(timeout=30)
    move(early, Status.PUBLISHED)  # a later event id, committed first
    refresh()
    assert PUBLISHED_TPS in client.get(pages[early]).text
    assert PUBLISHED_TPS not in client.get(pages[late]).text
    release.set()
    thread.join()
    refresh()
    assert PUBLISHED_TPS in client.get(pages[late]).text
    # Each change is rebuilt once: the next run finds nothing new.
    assert snapshot_refresh(KIND, budget_seconds=60).rebuilt == 0


def test_a_refresh_over_its_budget_leaves_the_rest_for_the_next_run_the_nation_first(client):
    for url in PAGES.values():
        client.get(url)
    refresh()
    move(LABANGKA_TPS, Status.PUBLISHED)
    first = snapshot_refresh(KIND, budget_seconds=0)
    # The nation; then the provinsi, which has no entries and costs nothing; the rest waits.
    assert (first.rebuilt, first.left) == (1, 4)
    assert "1 of 293 TPS published" in text(client.get(PAGES["nation"]))
    assert "0 of 293 TPS published" in text(client.get(PAGES["ppu"]))
    for _ in range(4):
        assert snapshot_refresh(KIND, budget_seconds=0).rebuilt == 1
    assert "1 of 293 TPS published" in text(client.get(PAGES["ppu"]))
    assert PUBLISHED_TPS in client.get(PAGES["tps"]).text


def _read_long_ago(snapshot_root, name: str) -> None:
    """Nobody has read the entries of that name for an hour."""
    long_ago = time.time() - 3600
    for mark in snapshot_root.rglob(f".{name}.read"):
        os.utime(mark, (long_ago, long_ago))


def test_an_entry_nobody_read_lately_is_set_aside_and_built_again_when_asked(client, snapshot_root):
    english, file = client.get(PAGES["ppu"]), client.get(PPU_FILE)
    refresh()
    _read_long_ago(snapshot_root, "page.en.page.code.html")
    move(LABANGKA_TPS, Status.PUBLISHED)
    result = snapshot_refresh(KIND, budget_seconds=60)
    # PPU's file is rebuilt; its English page, read by nobody lately, only set aside.
    (page,) = snapshot_root.rglob(".page.en.page.code.html.outdated")
    assert page.parent.name == "6409"
    assert not page.with_name("page.en.page.code.html").exists()
    assert (result.rebuilt, result.entries) == (1, 1)
    assert client.get(PPU_FILE).json()["progres"]["progres"] == 1
    assert client.get(PPU_FILE)["ETag"] != file["ETag"]
    # Its next reader gets it built then, with the change, not as it was, and not marked stale.
    now = client.get(PAGES["ppu"])
    assert "1 of 293 TPS published" in text(now)
    assert STALE_BANNER not in text(now) and now["ETag"] != english["ETag"]
    assert not page.exists()


@pytest.mark.django_db(transaction=True)
def test_an_entry_set_aside_is_served_stale_while_the_database_cannot_answer(client, snapshot_root):
    client.get(PAGES["ppu"])
    refresh()
    _read_long_ago(snapshot_root, "page.en.page.code.html")
    move(LABANGKA_TPS, Status.PUBLISHED)
    refresh()
    # Another session holds the areas: no query of ours can read them (a real timeout).
    with (
        psycopg.connect(_url(connection.settings_dict), autocommit=True) as other,
        other.transaction(),
    ):
        other.execute("LOCK TABLE regions_area IN ACCESS EXCLUSIVE MODE")
        with connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = '300ms'")
        page = client.get(PAGES["ppu"])
        with connection.cursor() as cursor:
            cursor.execute("RESET statement_timeout")
    assert page.status_code == 200
    assert STALE_BANNER in text(page) and "0 of 293 TPS published" in text(page)
    assert page["X-Snapshot-Stale"].startswith("20")
    assert "1 of 293 TPS published" in text(client.get(PAGES["ppu"]))


def test_a_lost_state_makes_the_next_refresh_rebuild_every_entry(client, snapshot_root):
    client.get(PAGES["ppu"])
    refresh()
    move(LABANGKA_TPS, Status.PUBLISHED)
    snapshots.state_path(KIND).unlink()
    refresh()
    assert "1 of 293 TPS published" in text(client.get(PAGES["ppu"]))


def test_a_snapshot_ahead_of_a_restored_database_is_rebuilt_whole(client, snapshot_root):
    client.get(PAGES["ppu"])
    refresh()
    state = snapshots.state_read(KIND)
    state["events"] = {"after": 10**9, "upto": 10**9, "count": 0}  # the database went back
    snapshots.state_write(KIND, state)
    move(LABANGKA_TPS, Status.PUBLISHED)
    refresh()
    assert "1 of 293 TPS published" in text(client.get(PAGES["ppu"]))


def test_one_refresh_of_a_kind_runs_at_a_time_while_other_kinds_go_on(client, snapshot_root):
    client.get(PAGES["ppu"])
    client.get(GOVERNOR_PAGE)
    refresh()
    move(LABANGKA_TPS, Status.PUBLISHED)
    move(LABANGKA_TPS, Status.PUBLISHED, kind="pkwkp")
    with psycopg.connect(_url(connection.settings_dict)) as other:
        other.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", [REFRESH_LOCK, KIND])
        assert snapshot_refresh(KIND) is None
        assert snapshot_refresh("pkwkp").rebuilt == 1  # Kalimantan Timur
        long_ago = time.time() - 3600
        for path in snapshot_root.rglob("*.html"):
            os.utime(path, (long_ago, long_ago))
        assert snapshot_sweep() == 1  # the governor's; the regent's waits for the next sweep
        other.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", [REFRESH_LOCK, KIND])
    assert snapshot_refresh(KIND).rebuilt == 1  # PPU
    assert "1 of 293 TPS published" in text(client.get(PAGES["ppu"]))
    assert "1 of " in text(client.get(GOVERNOR_PAGE))


def test_the_kind_refreshed_longest_ago_is_asked_for_first(client):
    client.get(PAGES["ppu"])
    client.get(GOVERNOR_PAGE)
    assert set(snapshot_kinds_due()) == {"pkwkk", "pkwkp"}
    snapshot_refresh("pkwkp")
    assert snapshot_kinds_due() == ["pkwkk", "pkwkp"]  # pkwkk never was
    time.sleep(0.01)
    snapshot_refresh("pkwkk")
    assert snapshot_kinds_due() == ["pkwkp", "pkwkk"]


def test_a_quiet_kind_keeps_up_with_the_events_of_a_busy_one(client, monkeypatch):
    """Each run reads at most EVENTS_PER_RUN event ids: a kind with none of its own among them
    still moves on past them, and finds its own event when it comes."""
    client.get(GOVERNOR_PAGE)
    refresh()
    start = snapshots.state_read("pkwkp")["events"]["upto"]
    for tps in babulu_tps(10):  # ten events of the regent's contest
        move(tps, Status.PUBLISHED)
    move(LABANGKA_TPS, Status.PUBLISHED, kind="pkwkp")  # then the governor's one
    governors = UploadEvent.objects.latest("id").id
    # Ids not taken in this test (rolled back elsewhere) leave gaps: four runs to the governor's.
    monkeypatch.setattr("public.services.EVENTS_PER_RUN", math.ceil((governors - start) / 4))
    for _ in range(3):
        snapshot_refresh("pkwkp")
    assert "0 of " in text(client.get(GOVERNOR_PAGE))
    snapshot_refresh("pkwkp")
    assert "1 of " in text(client.get(GOVERNOR_PAGE))


def test_the_sweep_rebuilds_old_entries_down_to_the_kecamatan_not_below(client, snapshot_root):
    for url in PAGES.values():
        client.get(url)
    long_ago = time.time() - 3600
    for path in snapshot_root.rglob("*.html"):
        os.utime(path, (long_ago, long_ago))
    assert snapshot_sweep() == 4  # the nation, PPU, Babulu, Sepaku
    left_old = {
        path.parent.name
        for path in snapshot_root.rglob("*.html")
        if path.stat().st_mtime == pytest.approx(long_ago)
    }
    assert left_old == {LABANGKA, LABANGKA_TPS}


def test_the_command_rebuilds_what_changed_or_everything(client, snapshot_root):
    client.get(PAGES["ppu"])
    move(LABANGKA_TPS, Status.PUBLISHED)
    call_command("refresh_public_snapshot", "--all", stdout=(out := _Out()))
    assert out.text == "pkwkk: rebuilt the entries of 1 areas\n"
    assert "1 of 293 TPS published" in text(client.get(PAGES["ppu"]))
    call_command("refresh_public_snapshot", stdout=_Out())  # the refresher's state, once
    move("6409032002002", Status.PUBLISHED)
    call_command("refresh_public_snapshot", stdout=(out := _Out()))
    assert out.text.startswith("pkwkk: 6 areas changed; rebuilt 1 entries of 1 areas in ")
    assert "2 of 293 TPS published" in text(client.get(PAGES["ppu"]))
    with psycopg.connect(_url(connection.settings_dict)) as other:
        other.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", [REFRESH_LOCK, KIND])
        with pytest.raises(CommandError, match="another refresh of pkwkk is running"):
            call_command("refresh_public_snapshot", stdout=_Out())


def test_before_the_night_the_command_builds_what_the_public_reads_first_down_to_a_level(
    client, snapshot_root
):
    call_command("refresh_public_snapshot", "--build-down-to", "kecamatan", stdout=(out := _Out()))
    first_read = {
        f"page.{language}.{part}.code.html"
        for language in ("id", "en")
        for part in ("page", "live", "timeline")
    } | {"hhcw.json", "wilayah.json", "progress.csv"}
    areas = ["", "64", "6409", BABULU, SEPAKU]
    for kind in ("pkwkp", "pkwkk"):  # Kalimantan Timur's governor and PPU's regent
        for code in areas:
            assert first_read <= set(snapshots.entry_names(kind, code)), (kind, code)
    assert snapshots.entry_names(KIND, LABANGKA) == []  # a desa: built when first asked for
    home_kind, home_code = progress_home()
    assert {"home.id.html", "home.en.html"} <= set(snapshots.entry_names(home_kind, home_code))
    written = {
        kind: sum(len(snapshots.entry_names(kind, code)) for code in ["", *area_codes_down_to(3)])
        for kind in ("pkwkk", "pkwkp")  # by kind, as contest_kinds_held lists them
    }
    assert out.text == "".join(
        f"{kind}: built {count} entries of the areas down to the kecamatan\n"
        for kind, count in written.items()
    )
    # What a first request answers, as it is: the request builds nothing.
    key = snapshots.Key(KIND, BABULU, "page.en.page.code.html")
    built = key.path.stat().st_mtime_ns
    assert client.get(PAGES["babulu"])["ETag"] == snapshots.entry_read(key).etag
    assert key.path.stat().st_mtime_ns == built
    # Run again, it builds only what is not built yet: nothing.
    call_command("refresh_public_snapshot", "--build-down-to", "kecamatan", stdout=(out := _Out()))
    assert out.text == (
        "pkwkk: built 0 entries of the areas down to the kecamatan\n"
        "pkwkp: built 0 entries of the areas down to the kecamatan\n"
    )


def test_an_entry_cut_short_by_a_crash_is_built_again(client, snapshot_root):
    client.get(PPU_FILE)
    (path,) = snapshot_root.rglob("hhcw.json")
    path.write_bytes(path.read_bytes()[:20])
    response = client.get(PPU_FILE)
    assert response.status_code == 200
    assert response.json()["progres"] == {"total": 293, "progres": 0}


def test_a_tps_file_names_its_images_at_the_host_it_was_asked_from(client, kpu_staff):
    from tests.test_open_data import receive

    receive(kpu_staff)
    move(LABANGKA_TPS, Status.PUBLISHED)
    first = client.get(TPS_FILE, headers={"host": "localhost"}).json()
    second = client.get(TPS_FILE, headers={"host": "127.0.0.1"}).json()
    assert first["images"][0].startswith("http://localhost/api/dokumen/")
    assert second["images"][0].startswith("http://127.0.0.1/api/dokumen/")


def test_without_a_refresh_for_a_while_what_is_served_is_marked_stale(client, settings):
    settings.SNAPSHOT_STALE_AFTER_SECONDS = 1
    fresh_page = client.get(PAGES["ppu"])
    fresh_file = client.get(PPU_FILE)
    client.get(PAGES["ppu"] + "?part=live")
    client.get("/api/wilayah/pkwkk/64/6409.json")
    assert STALE_BANNER not in text(fresh_page)
    assert "X-Snapshot-Stale" not in fresh_page
    assert "stale" not in fresh_file.json()["tracker"]
    time.sleep(1.2)
    page = client.get(PAGES["ppu"])
    assert STALE_BANNER in text(page)
    assert page["X-Snapshot-Stale"].startswith("20")
    assert page["ETag"] != fresh_page["ETag"]
    live = client.get(PAGES["ppu"] + "?part=live")
    assert STALE_BANNER in text(live)  # the banner comes with the polls
    stale_file = client.get(PPU_FILE)
    assert stale_file.json()["tracker"]["stale"] is True
    assert stale_file.json()["tungsura"] == fresh_file.json()["tungsura"]
    assert client.get("/api/wilayah/pkwkk/64/6409.json")["X-Snapshot-Stale"]
    refresh()
    assert STALE_BANNER not in text(client.get(PAGES["ppu"]))
    assert "stale" not in client.get(PPU_FILE).json()["tracker"]


def test_an_entry_is_stale_by_the_refreshes_of_its_own_kind(client, settings):
    settings.SNAPSHOT_STALE_AFTER_SECONDS = 1
    client.get(PAGES["ppu"])
    client.get(GOVERNOR_PAGE)
    time.sleep(1.2)
    snapshot_refresh("pkwkp")  # the regent's refresher has not run for a while
    assert STALE_BANNER not in text(client.get(GOVERNOR_PAGE))
    assert STALE_BANNER in text(client.get(PAGES["ppu"]))


# --- Outages, with real processes


FAST = {"SNAPSHOT_REFRESH_SECONDS": "1", "SNAPSHOT_STALE_AFTER_SECONDS": "4"}


@pytest.mark.django_db(transaction=True)
def test_with_postgresql_down_the_last_snapshot_is_served_marked_stale(
    start_process, tmp_path, restartable_postgres
):
    """On a PostgreSQL of its own, so that stopping it cannot disturb the rest of the suite."""
    env = child_env(DATABASE_URL=restartable_postgres.create_database(), **FAST)
    manage(env, "migrate", "--no-input")
    manage(env, "load_demo")
    web = start_web(start_process, env)
    start_worker(start_process, env, concurrency=1)
    start_beat(start_process, env, tmp_path)
    page = httpx.get(web + PAGES["ppu"])
    data = httpx.get(web + PPU_FILE)
    assert page.status_code == data.status_code == 200
    wait_until(lambda: snapshots.heartbeat(KIND) is not None, timeout=30)

    restartable_postgres.stop()
    wait_until(lambda: "X-Snapshot-Stale" in httpx.get(web + PAGES["ppu"]).headers, timeout=15)
    down = httpx.get(web + PAGES["ppu"])
    assert down.status_code == 200
    assert STALE_BANNER in down.text
    assert "0 of 293 TPS published" in " ".join(down.text.split())
    stale = httpx.get(web + PPU_FILE).json()
    assert stale["tracker"]["stale"] is True
    assert stale["progres"] == data.json()["progres"]
    # What nobody asked for before cannot be built: said so, with when to try again.
    never_built = httpx.get(web + f"/api/hhcw/pkwkk/64/6409/{SEPAKU}.json")
    assert never_built.status_code == 503
    assert never_built.headers["Retry-After"] == "10"
    assert "cannot be read" in never_built.json()["error"]
    assert httpx.get(web + PAGES["sepaku"]).status_code == 503
    assert httpx.get(web + "/api/dokumen/1.jpg").status_code == 503

    restartable_postgres.start()
    wait_until(lambda: STALE_BANNER not in httpx.get(web + PAGES["ppu"]).text, timeout=120)
    assert httpx.get(web + PAGES["sepaku"]).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_with_redis_down_the_snapshot_is_served_marked_stale_until_it_is_back(
    start_process, tmp_path, restartable_redis
):
    env = child_env(REDIS_URL=restartable_redis.url, **FAST)
    web = start_web(start_process, env)
    start_worker(start_process, env, concurrency=1)
    start_beat(start_process, env, tmp_path)
    assert httpx.get(web + PAGES["ppu"]).status_code == 200
    wait_until(lambda: snapshots.heartbeat(KIND) is not None, timeout=60)

    restartable_redis.stop()
    wait_until(lambda: "X-Snapshot-Stale" in httpx.get(web + PAGES["ppu"]).headers, timeout=15)
    assert STALE_BANNER in httpx.get(web + PAGES["ppu"]).text
    # Pages nobody asked for before are built from PostgreSQL, which is up.
    assert httpx.get(web + PAGES["sepaku"]).status_code == 200

    restartable_redis.start()
    # The worker and beat reconnect with a back-off: as long as in the pipeline's own test.
    wait_until(lambda: STALE_BANNER not in httpx.get(web + PAGES["ppu"]).text, timeout=120)


class _Out:
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        pass


def _url(database: dict) -> str:
    from tests.conftest import database_url

    return database_url(database)


# --- Builds


def test_another_build_of_the_code_starts_a_snapshot_of_its_own(client, settings, tmp_path):
    """A deploy with a changed stylesheet (another hashed name) must not answer pages that name
    the old one: the snapshot of each build lives apart, and the old one is removed later."""
    settings.STATIC_ROOT = str(tmp_path / "static")
    manifest = tmp_path / "static" / "staticfiles.json"
    manifest.parent.mkdir()
    manifest.write_text('{"paths": {"css/app.css": "css/app.1111.css"}}')
    snapshots.build.cache_clear()
    old_build = snapshots.build()
    first = client.get(PAGES["ppu"])
    refresh()
    old_root = snapshots.root()
    assert (old_root / "state.pkwkk.json").exists()

    manifest.write_text('{"paths": {"css/app.css": "css/app.2222.css"}}')
    snapshots.build.cache_clear()
    assert snapshots.build() != old_build
    move(LABANGKA_TPS, Status.PUBLISHED)
    # The new build has no entry yet: the page is built now, with today's data, not served from
    # the old build's file (whose refresh never ran for this change).
    assert "1 of 293 TPS published" in text(client.get(PAGES["ppu"]))
    assert first["ETag"] != client.get(PAGES["ppu"])["ETag"]
    assert snapshots.root() != old_root and old_root.exists()
    assert snapshots.builds_remove(unused_for=3600) == []  # the old one may still be in use
    os.utime(old_root / "state.pkwkk.json", (time.time() - 7200, time.time() - 7200))
    assert snapshots.builds_remove(unused_for=3600) == [old_build]
    assert not old_root.exists()
    snapshots.build.cache_clear()
