"""The publication server stand-in: delivery with idempotency and faults, and the public JSON.

Most tests run the real server process (manage.py run_publication_server) and talk HTTP to it;
the ones at the end check the state logic in-process. Tests that need regions load the PPU demo
in a committed transaction, since the server reads the database over its own connection.
"""

import hashlib
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from io import StringIO

import httpx
import pytest
from django.core.management import call_command

from regions.models import Area, Contest, ContestKind, Level
from simulator.publication.documents import DocumentError, multipart_parse
from simulator.publication.kpu_files import area_file, data_target, percent_half_up, tree_build
from simulator.publication.site import PublicationSite, SiteConfig
from tests.conftest import wait_until
from uploads.kpu import hhcw_path

needs_regions = pytest.mark.django_db(transaction=True)

JPEG = b"\xff\xd8\xff\xe0" + b"a page of C.Hasil\r\n--looks-like-a-boundary\r\n" * 20
PNG = b"\x89PNG\r\n\x1a\n" + b"second page" * 10
PDF = b"%PDF-1.7\n" + b"third page" * 10
BABULU_TPS = "6409032002001"  # Labangka, Kecamatan Babulu
BABULU_PATH = f"/documents/pkwkk/{BABULU_TPS}"
LINEAGE = ["64", "6409", "640903", "6409032002"]
WIB_TS = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


def with_options(**options):
    """Starts the publication_server fixture with these command-line options."""
    ids = [" ".join(f"{name}={value}" for name, value in options.items())]
    return pytest.mark.parametrize("publication_server", [options], indirect=True, ids=ids)


@pytest.fixture
def ppu():
    """The PPU demo (293 TPS, pkwkp and pkwkk); request it before publication_server."""
    call_command("load_demo", stdout=StringIO())


def put(server, tps=BABULU_TPS, key="1:abc", pages=(("image/jpeg", JPEG),), contest="pkwkk"):
    files = [("file", (f"page-{n}", data, ctype)) for n, (ctype, data) in enumerate(pages)]
    return server.client.put(
        f"/documents/{contest}/{tps}", files=files, headers={"Idempotency-Key": key}
    )


def hhcw(server, *codes, contest="pkwkk", election="pilkada"):
    path = "/".join([f"{election}/hhcw/{contest}", *codes])
    response = server.client.get(f"/data/{path}.json")
    assert response.status_code == 200, response.text
    return response.json()


def tps_path(tps=BABULU_TPS):
    return "/".join([tps[:2], tps[:4], tps[:6], tps[:10], tps])


# --- Delivery.


@needs_regions
def test_a_new_document_is_accepted_with_201_and_the_same_key_again_gets_200_and_the_same_body(
    ppu, publication_server
):
    first = put(publication_server)
    again = put(publication_server)

    assert first.status_code == 201
    body = first.json()
    assert body["status"] == "accepted" and body["key"] == "1:abc"
    assert re.fullmatch(r"[0-9a-f-]{36}", body["receipt"])
    assert datetime.fromisoformat(body["publish_at"]).tzinfo is not None
    assert again.status_code == 200 and again.json() == body
    stats = publication_server.stats()
    assert (stats["puts"], stats["keys"], stats["writes"]) == (2, 1, 1)


@needs_regions
@with_options(latency_ms=300)
def test_concurrent_identical_puts_make_exactly_one_write(ppu, publication_server):
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda _: put(publication_server), range(8)))

    assert sorted(response.status_code for response in responses) == [200] * 7 + [201]
    assert len({response.json()["receipt"] for response in responses}) == 1
    stats = publication_server.stats()
    assert (stats["puts"], stats["keys"], stats["writes"]) == (8, 1, 1)


@needs_regions
def test_a_lost_response_still_records_the_write_so_the_retry_with_the_same_key_gets_200(
    ppu, publication_server
):
    publication_server.script(BABULU_PATH, [{"status": "accept-drop"}])

    with pytest.raises(httpx.TransportError):
        put(publication_server)
    assert publication_server.stats()["writes"] == 1
    retry = put(publication_server)

    assert retry.status_code == 200 and retry.json()["status"] == "accepted"
    assert publication_server.stats()["writes"] == 1


@needs_regions
def test_a_script_for_one_photo_leaves_another_photo_of_the_tps_alone(ppu, publication_server):
    """The demo's bad network: a TPS's own photo is dropped, one sent on its behalf goes in."""
    publication_server.script(BABULU_PATH, [{"status": "drop"}] * 2, sha256=sha256_of(JPEG))
    with pytest.raises(httpx.TransportError):
        put(publication_server, key="1:own")
    assert put(publication_server, key="2:other", pages=[("image/png", PNG)]).status_code == 201
    with pytest.raises(httpx.TransportError):
        put(publication_server, key="1:own")
    assert put(publication_server, key="1:own").status_code == 201  # the drops are used up
    bad = publication_server.client.post(
        "/_control/script", json={"path": BABULU_PATH, "responses": [], "sha256": "abc"}
    )
    assert bad.status_code == 400 and "sha256 must be 64 hex digits" in bad.json()["error"]


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@needs_regions
def test_scripted_responses_come_in_order_before_the_document_is_accepted(ppu, publication_server):
    publication_server.script(
        BABULU_PATH,
        [
            {"status": 429, "retry_after": 3},
            {"status": 503},
            {"status": 400, "error": "bad"},
            {"status": "drop"},
        ],
    )

    throttled = put(publication_server)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "3"
    overloaded = put(publication_server)
    assert (overloaded.status_code, overloaded.json()) == (503, {"error": "overloaded"})
    assert put(publication_server).json() == {"error": "bad"}
    with pytest.raises(httpx.TransportError):
        put(publication_server)
    assert publication_server.stats()["writes"] == 0
    assert put(publication_server).status_code == 201
    assert publication_server.stats()["puts"] == 5


@needs_regions
@with_options(reject_rate=1, seed=1)
def test_a_rejected_document_gets_422_with_a_human_reason_and_nothing_is_recorded(
    ppu, publication_server
):
    response = put(publication_server)

    assert response.status_code == 422
    assert re.search(r"\(.+\)$", response.json()["error"])  # Indonesian, then English
    stats = publication_server.stats()
    assert (stats["keys"], stats["writes"]) == (0, 0)


@needs_regions
@with_options(fail_rate=1, seed=7)
def test_with_a_fail_rate_of_one_every_put_fails_transiently(ppu, publication_server):
    statuses = []
    for number in range(24):
        try:
            statuses.append(put(publication_server, key=f"{number}:abc").status_code)
        except httpx.TransportError:
            statuses.append("lost")

    assert set(statuses) == {503, 429, "lost"}
    stats = publication_server.stats()
    assert stats["puts"] == 24
    assert 0 < stats["writes"] < statuses.count("lost")  # the accepted-then-dropped ones


@needs_regions
@with_options(latency_ms=300)
def test_latency_delays_every_put(ppu, publication_server):
    started = time.monotonic()
    put(publication_server)
    assert time.monotonic() - started >= 0.3


@needs_regions
def test_malformed_puts_get_400(ppu, publication_server):
    client = publication_server.client
    no_key = client.put(BABULU_PATH, files=[("file", ("p.jpg", JPEG, "image/jpeg"))])
    no_file = client.put(
        BABULU_PATH,
        files=[("other", ("p.jpg", JPEG, "image/jpeg"))],
        headers={"Idempotency-Key": "k"},
    )
    not_multipart = client.put(
        BABULU_PATH, content=JPEG, headers={"Idempotency-Key": "k", "Content-Type": "image/jpeg"}
    )
    truncated = client.put(
        BABULU_PATH,
        content=b"--xyz\r\nContent-Disposition: form-data; name=file\r\n\r\nhalf a page",
        headers={"Idempotency-Key": "k", "Content-Type": "multipart/form-data; boundary=xyz"},
    )

    for response in (no_key, no_file, not_multipart, truncated):
        assert response.status_code == 400 and response.json()["error"]
    assert publication_server.stats()["writes"] == 0


@needs_regions
def test_unknown_contests_tps_and_paths_get_404(ppu, publication_server):
    client = publication_server.client

    assert put(publication_server, tps="6409032002999").status_code == 404  # not a TPS of PPU
    assert put(publication_server, contest="ppwp").status_code == 404  # no ppwp contest opened
    assert client.put("/documents/xyz/6409032002001").status_code == 404
    for path in (
        "/data/pilkada/hhcw/ppwp.json",
        "/data/pemilu/hhcw/pkwkk.json",
        "/data/pilkada/hhcw/pkwkk/65.json",
        "/data/pilkada/hhcw/pkwkk/64/6509.json",
        "/data/wilayah/pilkada/pkwkk/64/6409/640903/6409032002/6409032002001.json",
        "/data/nothing.json",
        "/elsewhere",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.headers["Content-Type"] == "application/json" and response.json()["error"]


@needs_regions
def test_page_types_come_from_the_part_or_from_its_magic_bytes(ppu, publication_server):
    pages = (("application/octet-stream", PNG), ("image/jpeg", JPEG), ("", PDF))
    accepted = put(publication_server, pages=pages)
    refused = put(publication_server, key="2:abc", pages=(("text/plain", b"hello"),))

    assert accepted.status_code == 201
    assert refused.status_code == 422 and "JPEG, PNG or PDF" in refused.json()["error"]
    images = hhcw(publication_server, *tps_path().split("/"))["images"]
    assert [url.rsplit(".", 1)[1] for url in images] == ["png", "jpg", "pdf"]
    served = [httpx.get(url) for url in images]
    assert [response.content for response in served] == [PNG, JPEG, PDF]
    assert [response.headers["Content-Type"] for response in served] == [
        "image/png",
        "image/jpeg",
        "application/pdf",
    ]


@needs_regions
def test_a_new_key_for_the_same_tps_replaces_its_document_as_a_new_version(ppu, publication_server):
    first = put(publication_server, key="1:aaa")
    second = put(publication_server, key="1:bbb", pages=(("image/png", PNG), ("image/png", PNG)))

    assert (first.status_code, second.status_code) == (201, 201)
    assert put(publication_server, key="1:aaa").json() == first.json()
    stats = publication_server.stats()
    assert (stats["keys"], stats["writes"], stats["published"]) == (2, 2, 1)
    images = hhcw(publication_server, *tps_path().split("/"))["images"]
    assert len(images) == 2 and all(url.endswith(".png") for url in images)
    assert hhcw(publication_server, "64", "6409")["progres"] == {"total": 293, "progres": 1}


# --- The public site.


@needs_regions
@with_options(publish_delay_s=1.5)
def test_a_document_is_visible_only_after_the_publish_delay_and_then_counts_in_every_ancestor(
    ppu, publication_server
):
    accepted = datetime.now().astimezone()
    receipt = put(publication_server).json()
    publish_at = datetime.fromisoformat(receipt["publish_at"])
    assert timedelta(seconds=1) < publish_at - accepted < timedelta(seconds=3)

    waiting = hhcw(publication_server, *tps_path().split("/"))
    assert waiting["images"] == [] and waiting["tungsura"] is None
    assert waiting["status_suara"] is False
    assert hhcw(publication_server)["progres"]["progres"] == 0

    published = wait_until(
        lambda: hhcw(publication_server, *tps_path().split("/"))["images"] and True, timeout=10
    )
    assert published
    tps = hhcw(publication_server, *tps_path().split("/"))
    assert tps["tungsura"] is not None and tps["status_suara"] and tps["status_adm"]
    name = tps["images"][0].rsplit("/", 1)[1]
    assert re.fullmatch(rf"{BABULU_TPS}-\d{{8}}-\d{{6}}--[0-9a-f-]{{36}}\.jpg", name)
    assert httpx.get(tps["images"][0]).content == JPEG
    for depth in range(len(LINEAGE) + 1):
        area = hhcw(publication_server, *LINEAGE[:depth])
        child = [*LINEAGE, BABULU_TPS][depth]
        assert area["progres"]["progres"] == 1
        assert area["tungsura"]["chart"]["progres"]["progres"] == 1
        assert area["tungsura"]["table"][child]["progres"]["progres"] == 1


@needs_regions
def test_ppu_with_290_of_293_tps_published_shows_98_98_percent_as_the_kpu_rounds(
    ppu, publication_server
):
    codes = list(
        Area.objects.filter(level=Level.TPS, code__startswith="6409").values_list("code", flat=True)
    )
    left_out = [code for code in codes if code.startswith("640903")][-3:]
    for code in codes:
        if code not in left_out:
            assert put(publication_server, tps=code, key=f"{code}:abc").status_code == 201

    kabupaten = hhcw(publication_server, "64", "6409")
    assert set(kabupaten) >= {"mode", "tungsura", "psu", "progres", "ts"}
    assert kabupaten["mode"] == "hhcw" and kabupaten["psu"] == "Reguler"
    assert WIB_TS.match(kabupaten["ts"])
    assert kabupaten["progres"] == {"total": 293, "progres": 290}
    assert kabupaten["tungsura"]["chart"]["progres"] == {
        "total": 293,
        "persen": 98.98,
        "progres": 290,
    }
    table = kabupaten["tungsura"]["table"]
    assert list(table) == ["640901", "640902", "640903", "640904"]
    assert table["640903"] == {
        "psu": "Reguler",
        "progres": {"total": 61, "persen": 95.08, "progres": 58},
        "status_progress": True,
    }
    assert table["640901"]["progres"] == {"total": 141, "persen": 100.0, "progres": 141}
    national = hhcw(publication_server)
    assert national["tungsura"]["table"]["64"]["progres"]["persen"] == 98.98
    governor = hhcw(publication_server, contest="pkwkp")
    assert governor["progres"] == {"total": 293, "progres": 0}


@needs_regions
def test_region_lists_go_from_the_provinsi_down_to_the_tps(ppu, publication_server):
    def wilayah(*codes):
        path = "/".join(["pkwkk", *codes]) if codes else "pkwkk/0"
        return publication_server.client.get(f"/data/wilayah/pilkada/{path}.json").json()

    provinsi = wilayah()
    assert [(a["kode"], a["nama"], a["tingkat"]) for a in provinsi] == [
        ("64", "KALIMANTAN TIMUR", 1)
    ]
    assert [a["kode"] for a in wilayah("64")] == ["6409"]
    assert [a["nama"] for a in wilayah("64", "6409")] == ["PENAJAM", "WARU", "BABULU", "SEPAKU"]
    desa = wilayah("64", "6409", "640903")
    assert len(desa) == 12 and {a["tingkat"] for a in desa} == {4}
    tps = wilayah(*LINEAGE)
    assert tps[0] == {"nama": "TPS 001", "id": tps[0]["id"], "kode": BABULU_TPS, "tingkat": 5}
    assert isinstance(tps[0]["id"], int) and tps[0]["id"] != int(BABULU_TPS)
    assert wilayah(*LINEAGE) == tps  # ids are stable


@needs_regions
def test_data_files_answer_304_to_their_etag_or_date_until_something_is_published(
    ppu, publication_server
):
    client, path = publication_server.client, "/data/pilkada/hhcw/pkwkk/64/6409.json"
    first = client.get(path)
    etag, last_modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert first.headers["Content-Type"] == "application/json"

    by_etag = client.get(path, headers={"If-None-Match": etag})
    by_date = client.get(path, headers={"If-Modified-Since": last_modified})
    assert (by_etag.status_code, by_date.status_code) == (304, 304)
    assert by_etag.content == b"" and by_etag.headers["ETag"] == etag

    put(publication_server)
    changed = client.get(path, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert changed.json()["progres"]["progres"] == 1
    # The connection stays usable after 304s: every answer was framed by its Content-Length.
    assert client.get(path, headers={"If-None-Match": changed.headers["ETag"]}).status_code == 304


@pytest.fixture
def ppu_with_ppwp(ppu):
    Contest.objects.create(kind=ContestKind.PPWP, region_id="6409", name="Pilpres 2024, PPU")


@needs_regions
def test_a_pemilu_contest_is_served_in_the_pemilu_shape(ppu_with_ppwp, publication_server):
    assert put(publication_server, contest="ppwp").status_code == 201

    area = hhcw(publication_server, "64", "6409", contest="ppwp", election="pemilu")
    assert "tungsura" not in area
    assert area["chart"]["progres"] == {"total": 293, "persen": 0.34, "progres": 1}
    assert area["table"]["640903"] == {"psu": "Reguler", "persen": 1.64, "status_progress": True}
    assert area["progres"] == {"total": 293, "progres": 1}
    tps = hhcw(publication_server, *tps_path().split("/"), contest="ppwp", election="pemilu")
    assert tps["chart"] == {} and tps["images"] and "tungsura" not in tps
    other = hhcw(
        publication_server, *tps_path("6409032002002").split("/"), contest="ppwp", election="pemilu"
    )
    assert other["chart"] is None and other["images"] == []
    listed = publication_server.client.get("/data/wilayah/pemilu/ppwp/0.json").json()
    assert [a["kode"] for a in listed] == ["64"]
    assert publication_server.client.get("/data/wilayah/pilkada/ppwp/0.json").status_code == 404


@needs_regions
def test_a_contest_opened_after_the_server_started_appears_on_reload(ppu, publication_server):
    path = "/data/pemilu/hhcw/ppwp.json"
    assert publication_server.client.get(path).status_code == 404

    Contest.objects.create(kind=ContestKind.PPWP, region_id="6409", name="Pilpres 2024, PPU")
    reloaded = publication_server.reload()

    assert reloaded == {"contests": {"pkwkk": 293, "pkwkp": 293, "ppwp": 293}}
    assert publication_server.client.get(path).status_code == 200


@needs_regions
def test_stats_count_puts_keys_writes_published_and_gets_by_path_and_reset_clears_them(
    ppu, publication_server
):
    client = publication_server.client
    put(publication_server)
    put(publication_server)
    client.get("/data/pilkada/hhcw/pkwkk.json")
    client.get("/data/pilkada/hhcw/pkwkk.json")
    client.get("/data/missing.json")

    assert publication_server.stats() == {
        "puts": 2,
        "keys": 1,
        "writes": 1,
        "published": 1,
        "gets": 3,
        "get_paths": {"/data/pilkada/hhcw/pkwkk.json": 2, "/data/missing.json": 1},
    }
    publication_server.script(BABULU_PATH, [{"status": 503}])
    publication_server.reset()
    assert publication_server.stats() == {
        "puts": 0,
        "keys": 0,
        "writes": 0,
        "published": 0,
        "gets": 0,
        "get_paths": {},
    }
    assert put(publication_server).status_code == 201  # the script went too


def test_a_bad_script_is_refused_with_400(publication_server):
    response = publication_server.client.post(
        "/_control/script", json={"path": BABULU_PATH, "responses": [{"status": 200}]}
    )
    assert response.status_code == 400 and "status" in response.json()["error"]


def test_sigterm_stops_the_server_cleanly(publication_server):
    process = publication_server.process.process
    process.terminate()
    assert process.wait(timeout=10) == 0


# --- The state logic, in-process.

NAMES = {
    "64": "KALIMANTAN TIMUR",
    "6409": "PENAJAM PASER UTARA",
    "640903": "BABULU",
    "6409032002": "LABANGKA",
    "6409032002001": "TPS 001",
    "6409032002002": "TPS 002",
    "6409032003": "BABULU LAUT",
    "6409032003001": "TPS 001",
    "65": "KALIMANTAN UTARA",
    "6501": "MALINAU",
}


def test_percent_is_rounded_half_up_as_the_kpu_site_does():
    assert percent_half_up(290, 293) == 98.98
    assert percent_half_up(58, 61) == 95.08
    assert percent_half_up(1, 32) == 3.13  # exactly 3.125
    assert percent_half_up(2, 3) == 66.67
    assert percent_half_up(0, 0) == 0.0


def test_a_contest_tree_covers_its_region_and_the_areas_above_it_only():
    tree = tree_build({"6409"}, NAMES)

    assert tree.totals == {
        "": 3,
        "64": 3,
        "6409": 3,
        "640903": 3,
        "6409032002": 2,
        "6409032002001": 1,
        "6409032002002": 1,
        "6409032003": 1,
        "6409032003001": 1,
    }
    assert tree.children[""] == ("64",)
    assert tree.children["640903"] == ("6409032002", "6409032003")


def multipart(*pages: tuple[str, bytes]) -> dict:
    files = [("file", (f"page-{n}", data, ctype)) for n, (ctype, data) in enumerate(pages)]
    request = httpx.Request("PUT", "http://stand-in/", files=files)
    return {"content_type": request.headers["Content-Type"], "body": request.read()}


def test_a_document_is_counted_once_per_tps_when_its_publish_time_comes():
    now = [1_700_000_000.0]
    tree = tree_build({"6409"}, NAMES)
    site = PublicationSite(SiteConfig(publish_delay_s=10), {"pkwkk": tree}, clock=lambda: now[0])
    path, page = "/documents/pkwkk/6409032002001", ("image/jpeg", JPEG)

    assert site.document_put(path=path, key="1:a", **multipart(page))[0] == 201
    assert site.document_put(path=path, key="1:b", **multipart(page, page))[0] == 201
    assert site.stats()["published"] == 0
    now[0] += 10

    stats = site.stats()
    assert (stats["writes"], stats["published"]) == (2, 1)
    body = area_file(tree, site.published["pkwkk"], "640903", pemilu=False, ts="")
    assert body["tungsura"]["chart"]["progres"] == {"total": 3, "persen": 33.33, "progres": 1}
    assert body["tungsura"]["table"]["6409032002"]["progres"]["progres"] == 1
    assert len(site.visible[("pkwkk", "6409032002001")].pages) == 2


def test_multipart_bodies_are_split_into_their_parts_byte_for_byte():
    request = httpx.Request(
        "PUT",
        "http://stand-in/",
        files=[("file", ("a.jpg", JPEG, "image/jpeg")), ("file", ("b", PDF, "application/pdf"))],
        data={"note": "two pages"},
    )
    parts = multipart_parse(request.headers["Content-Type"], request.read())

    assert [(part.name, part.content_type) for part in parts] == [
        ("note", "application/octet-stream"),
        ("file", "image/jpeg"),
        ("file", "application/pdf"),
    ]
    assert parts[1].data == JPEG and parts[2].data == PDF
    with pytest.raises(DocumentError):
        multipart_parse("multipart/form-data", b"no boundary")


def test_data_paths_must_chain_their_codes_and_match_the_election():
    assert data_target("/data/pilkada/hhcw/pkwkk/64/6409.json").code == "6409"
    assert data_target("/data/pilkada/hhcw/pkwkk.json").code == ""
    assert data_target("/data/wilayah/pemilu/ppwp/0.json").view == "wilayah"
    assert data_target("/data/pilkada/hhcw/pkwkk/64/6509.json") is None
    assert data_target("/data/pemilu/hhcw/pkwkk/64.json") is None
    assert data_target("/data/pilkada/hhcw/pkwkk/6409.json") is None


def test_area_files_are_kept_rendered_until_a_publication_below_them_on_the_same_clock_tick():
    """The stand-in keeps area files rendered between polls; a publication, a reset or a new
    catalog drops exactly what it changes, even when the clock has not moved (a cache keyed on
    the modification time would serve the old counts)."""
    trees = {"pkwkk": tree_build({"6409"}, NAMES)}
    site = PublicationSite(SiteConfig(), trees, clock=lambda: 1_700_000_000.0)

    def read(code: str) -> dict:
        resource = site.data_get(f"/data/{hhcw_path('pkwkk', code)}", "http://stand-in")
        assert resource is not None
        return json.loads(resource.body)["progres"]

    def publish(key: str) -> None:
        assert site.document_put(path=BABULU_PATH, key=key, **multipart(("image/jpeg", JPEG)))[0]
        site.stats()  # shows what is due: at once, with no delay

    lineage = ["", *LINEAGE]
    sibling = site.data_get(f"/data/{hhcw_path('pkwkk', '6409032003')}", "http://stand-in")
    assert [read(code)["progres"] for code in lineage] == [0, 0, 0, 0, 0]

    publish("1:a")
    assert [read(code)["progres"] for code in lineage] == [1, 1, 1, 1, 1]
    assert site.data_get(f"/data/{hhcw_path('pkwkk', '6409032003')}", "http://stand-in") is sibling
    site.reset()
    assert read("6409032002")["progres"] == 0
    publish("1:b")
    assert read("6409032002")["progres"] == 1
    site.catalog_replace({"pkwkk": tree_build({"6409032002"}, NAMES)})
    assert read("6409") == {"total": 2, "progres": 1}
