"""The open data API: the KPU's public JSON shape, region lists, CSV, page images, and how it
behaves towards browsers and caches (no cookies, CORS, ETag, errors as JSON)."""

import csv
import io
import json
import re
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from regions.models import Area, Level
from simulator.publication.catalog import catalog_load
from simulator.publication.site import PublicationSite, SiteConfig
from tests.documents import PNG_HEAD, page_bytes, page_file, sha256
from tests.world import BABULU, LABANGKA, LABANGKA_TPS, babulu_tps, move, publish_all_but, refresh
from uploads.models import Status, Upload
from uploads.progress.services import progress_fold
from uploads.services.intake import upload_receive
from uploads.services.publication import upload_mark_published
from uploads.services.stuck import upload_mark_stuck

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ppu")]

PPU_FILE = "/api/hhcw/pkwkk/64/6409.json"
TPS_FILE = f"/api/hhcw/pkwkk/64/6409/{BABULU}/{LABANGKA}/{LABANGKA_TPS}.json"
WIB_TS = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


def receive(staff, tps: str = LABANGKA_TPS, *pages: bytes):
    files = [page_file(data) for data in pages or [page_bytes()]]
    return upload_receive(tps_code=tps, kind="pkwkk", files=files, user=staff)


def body(response) -> dict | list:
    return json.loads(response.content)


# --- A client written the way clients of the KPU's files are


def kpu_client_walk(fetch, kind: str, tps: str) -> dict:
    """Reads as clients of the KPU's files do: from the national file down the table keys that
    lead to the TPS (at a desa the keys are TPS codes), ending at the TPS file, which has no
    table; every field read with .get(), null or missing tolerated. fetch(path under the data
    root) -> bytes, or None on an HTTP error. Returns what such a client shows."""
    levels, path = [], f"pilkada/hhcw/{kind}"
    while True:
        data = json.loads(fetch(f"{path}.json") or b"{}")
        tungsura = data.get("tungsura") or {}
        table = tungsura.get("table")
        if table is None:
            return {"levels": levels, "images": data.get("images") or [], "published": tungsura}
        progres = (tungsura.get("chart") or {}).get("progres") or {}
        where = path.removeprefix(f"pilkada/hhcw/{kind}").lstrip("/")
        levels.append((where, progres.get("progres"), progres.get("total"), progres.get("persen")))
        below = [code for code in table if tps.startswith(code)]
        if not below:
            return {"levels": levels, "images": [], "published": None}
        path = f"{path}/{below[0]}"


def our_files(client):
    def fetch(path: str) -> bytes | None:
        response = client.get(f"/api/{path}")
        return response.content if response.status_code == 200 else None

    return fetch


def stand_in_files(site: PublicationSite):
    def fetch(path: str) -> bytes | None:
        resource = site.data_get(f"/data/{path}", "http://stand-in")
        return resource.body if resource else None

    return fetch


def stand_in_publish(site: PublicationSite, tps: str, data: bytes, kind: str = "pkwkk") -> None:
    boundary = uuid.uuid4().hex
    multipart = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="c.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    status, _ = site.document_put(
        path=f"/documents/{kind}/{tps}",
        key=f"{tps}:{uuid.uuid4()}",
        content_type=f"multipart/form-data; boundary={boundary}",
        body=multipart,
    )
    assert status == 201


# --- The KPU's shape and our numbers


def test_the_kabupaten_file_says_290_of_293_published_at_98_97_percent(client):
    publish_all_but(*babulu_tps(3))
    response = client.get(PPU_FILE)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert b'"persen":98.97' in response.content  # a JSON number, cut (the KPU rounds: 98.98)
    data = body(response)
    assert data["mode"] == "hhcw"
    assert data["psu"] == "Reguler"
    assert data["progres"] == {"total": 293, "progres": 290}
    assert data["tungsura"]["chart"] == {"progres": {"total": 293, "persen": 98.97, "progres": 290}}
    assert WIB_TS.fullmatch(data["ts"])
    assert list(data["tungsura"]["table"]) == ["640901", "640902", BABULU, "640904"]
    assert data["tungsura"]["table"][BABULU] == {
        "psu": "Reguler",
        "progres": {"total": 61, "persen": 95.08, "progres": 58},
        "status_progress": True,
    }
    assert data["tungsura"]["table"]["640901"]["progres"]["persen"] == 100.0


def test_our_own_counts_and_names_sit_under_tracker_beside_the_kpus_keys(client):
    first, second, third = babulu_tps(3)
    publish_all_but(first, second, third)
    move(second, Status.DELIVERED)
    move(third, Status.SENDING)
    upload_mark_stuck(
        upload_id=Upload.objects.get(tps_id=second, contest__kind="pkwkk").pk,
        reason="server_queue",
    )
    tracker = body(client.get(PPU_FILE))["tracker"]
    assert tracker["kode"] == "6409"
    assert tracker["nama"] == "PENAJAM PASER UTARA"
    assert tracker["tingkat"] == 2
    assert tracker["table"][BABULU] == {
        "nama": "BABULU",
        "total": 61,
        "published": 58,
        "delivered": 1,
        "queued": 1,  # sending is counted as queued
        "retrying": 0,
        "rejected": 0,
        "missing": 1,
        "stuck": 1,
    }


def test_the_national_file_lists_the_provinsi_and_is_the_same_once_folded(client):
    publish_all_but(*babulu_tps(3))
    before = body(client.get("/api/hhcw/pkwkk.json"))
    assert before["tracker"]["kode"] is None
    assert before["tracker"]["tingkat"] == 0
    assert before["tungsura"]["table"]["64"]["progres"] == {
        "total": 293,
        "persen": 98.97,
        "progres": 290,
    }
    progress_fold()
    after = body(client.get("/api/hhcw/pkwkk.json"))
    assert {**after, "ts": None} == {**before, "ts": None}


def test_a_kpu_style_client_walks_from_the_nation_down_to_a_tps(client, kpu_staff):
    data = page_bytes()
    receive(kpu_staff, LABANGKA_TPS, data)
    move(LABANGKA_TPS, Status.PUBLISHED)
    shown = kpu_client_walk(our_files(client), "pkwkk", LABANGKA_TPS)
    labangka = Area.objects.filter(level=Level.TPS, code__startswith=LABANGKA).count()
    assert shown["levels"] == [
        ("", 1, 293, 0.34),
        ("64", 1, 293, 0.34),
        ("64/6409", 1, 293, 0.34),
        (f"64/6409/{BABULU}", 1, 61, 1.63),
        (f"64/6409/{BABULU}/{LABANGKA}", 1, labangka, shown["levels"][-1][3]),
    ]
    assert shown["published"]
    [image] = shown["images"]
    assert client.get(image).getvalue() == data


def test_the_same_client_reads_the_stand_ins_files_alike_but_with_rounded_percents(
    client, kpu_staff
):
    site = PublicationSite(SiteConfig(), catalog_load())
    for tps in Upload.objects.filter(contest__kind="pkwkk").exclude(tps_id__in=babulu_tps(3)):
        stand_in_publish(site, tps.tps_id, page_bytes(PNG_HEAD))
    last = babulu_tps(61)[-1]
    receive(kpu_staff, last)
    publish_all_but(*babulu_tps(3))
    ours = kpu_client_walk(our_files(client), "pkwkk", last)
    theirs = kpu_client_walk(stand_in_files(site), "pkwkk", last)
    assert len(ours["levels"]) == 5
    assert [level[:3] for level in ours["levels"]] == [level[:3] for level in theirs["levels"]]
    assert ours["levels"][2] == ("64/6409", 290, 293, 98.97)
    assert theirs["levels"][2] == ("64/6409", 290, 293, 98.98)  # the KPU rounds half-up
    assert ours["published"] and theirs["published"]
    assert ours["images"][0].startswith("http://testserver/api/dokumen/")
    assert theirs["images"][0].startswith("http://stand-in/images/pkwkk/")


def test_the_kpus_own_paths_under_the_api_root_give_the_same_files(client):
    assert client.get("/api/pilkada/hhcw/pkwkk/64/6409.json").content.startswith(b'{"mode":"hhcw"')
    assert body(client.get("/api/wilayah/pilkada/pkwkk/64.json")) == body(
        client.get("/api/wilayah/pkwkk/64.json")
    )
    assert client.get("/api/pilkada/hhcw/ppwp.json").status_code == 404


# --- One TPS


def test_a_published_tps_lists_its_page_images_and_their_sha256(client, kpu_staff):
    first, second = page_bytes(), page_bytes(PNG_HEAD)
    receive(kpu_staff, LABANGKA_TPS, first, second)
    move(LABANGKA_TPS, Status.DELIVERED)
    # The poller finds it on the public site: our own copies of the pages are listed.
    upload_mark_published(
        upload_id=Upload.objects.get(tps_id=LABANGKA_TPS, contest__kind="pkwkk").pk,
        images=["https://sirekap.example/6409032002001-20241127-151203--abc.jpg"],
    )
    data = body(client.get(TPS_FILE))
    assert data["tungsura"] == {"chart": {}, "administrasi": None}  # no vote numbers
    assert data["status_suara"] is True
    assert len(data["images"]) == 2
    assert data["images"][0].endswith(".jpg") and data["images"][1].endswith(".png")
    tracker = data["tracker"]
    assert tracker["kode"] == LABANGKA_TPS
    assert tracker["nama"] == "TPS 001"
    assert tracker["status"] == "published"
    assert tracker["sha256"] == sha256(first, second)
    assert [page["sha256"] for page in tracker["pages"]] == [sha256(first), sha256(second)]
    assert [page["url"] for page in tracker["pages"]] == data["images"]
    assert tracker["published_at"].endswith("+07:00")
    assert client.get(data["images"][0]).getvalue() == first
    page = client.get(data["images"][1])
    assert page["Content-Type"] == "image/png"
    assert page["Cache-Control"] == "public, max-age=31536000, immutable"
    assert page.getvalue() == second


def test_a_missing_tps_has_no_images_and_no_tungsura(client):
    data = body(client.get(TPS_FILE))
    assert data["images"] == []
    assert data["tungsura"] is None
    assert data["status_suara"] is False
    assert data["tracker"]["status"] == "missing"
    assert data["tracker"]["sha256"] is None
    assert data["tracker"]["pages"] == []


def test_a_client_tells_published_tps_by_images_and_status_suara_and_finds_no_votes(
    client, kpu_staff
):
    """As docs/api.md tells clients: `images` non-empty (and `status_suara` true) is published;
    `tungsura.chart` never holds anything, published or not, since we carry no vote numbers."""
    labangka = Area.objects.filter(level=Level.TPS, parent_id=LABANGKA).order_by("code")
    ours, from_the_site, delivered = labangka.values_list("code", flat=True)[:3]
    receive(kpu_staff, ours)
    move(ours, Status.PUBLISHED)
    upload_mark_published(
        upload_id=Upload.objects.get(tps_id=from_the_site, contest__kind="pkwkk").pk,
        images=[f"https://sirekap.example/{from_the_site}-20241127-151203--abc.jpg"],
    )
    receive(kpu_staff, delivered)
    move(delivered, Status.DELIVERED)
    desa = f"/api/hhcw/pkwkk/64/6409/{BABULU}/{LABANGKA}"
    every_tps = list(body(client.get(f"{desa}.json"))["tungsura"]["table"])
    files = {tps: body(client.get(f"{desa}/{tps}.json")) for tps in every_tps}
    published = {tps for tps, data in files.items() if data["images"]}
    assert published == {ours, from_the_site}
    assert {tps for tps, data in files.items() if data["status_suara"]} == published
    assert body(client.get(f"{desa}.json"))["progres"]["progres"] == len(published)
    for tps, data in files.items():
        if tps in published:
            assert data["tungsura"] == {"chart": {}, "administrasi": None}
        else:
            assert data["tungsura"] is None and data["images"] == []


def test_a_tps_published_straight_from_the_sirekap_app_lists_the_sites_images(client):
    images = ["https://sirekap.example/6409032002001-20241127-151203--abc.jpg"]
    upload_mark_published(
        upload_id=Upload.objects.get(tps_id=LABANGKA_TPS, contest__kind="pkwkk").pk,
        images=images,
    )
    data = body(client.get(TPS_FILE))
    assert data["images"] == images
    assert data["tracker"]["sha256"] is None


def test_a_page_of_an_upload_not_yet_published_is_not_served(client, kpu_staff):
    receipt = receive(kpu_staff)
    move(LABANGKA_TPS, Status.DELIVERED)
    page = receipt.document.pages.get()
    data = body(client.get(TPS_FILE))
    assert data["images"] == []
    assert data["tracker"]["status"] == "delivered"
    response = client.get(f"/api/dokumen/{page.pk}.jpg")
    assert response.status_code == 404
    assert body(response) == {"error": f"no published page {page.pk}.jpg"}


def test_a_page_of_a_replaced_document_is_not_served_once_the_new_one_is_published(
    client, kpu_staff
):
    old = receive(kpu_staff).document.pages.get()
    new = receive(kpu_staff).document.pages.get()
    move(LABANGKA_TPS, Status.PUBLISHED)
    assert client.get(f"/api/dokumen/{old.pk}.jpg").status_code == 404
    assert client.get(f"/api/dokumen/{new.pk}.jpg").status_code == 200
    assert client.get(f"/api/dokumen/{new.pk}.png").status_code == 404


# --- Region lists and CSV


def test_the_region_lists_give_name_id_code_and_level_of_each_child(client):
    assert body(client.get("/api/wilayah/pkwkk/0.json")) == [
        {"nama": "KALIMANTAN TIMUR", "id": 64, "kode": "64", "tingkat": 1}
    ]
    kecamatan = body(client.get("/api/wilayah/pkwkk/64/6409.json"))
    assert [row["nama"] for row in kecamatan] == ["PENAJAM", "WARU", "BABULU", "SEPAKU"]
    assert kecamatan[2] == {"nama": "BABULU", "id": 640903, "kode": BABULU, "tingkat": 3}
    tps = body(client.get(f"/api/wilayah/pkwkk/64/6409/{BABULU}/{LABANGKA}.json"))
    assert tps[0] == {"nama": "TPS 001", "id": 6409032002001, "kode": LABANGKA_TPS, "tingkat": 5}


def test_the_csv_has_a_header_and_one_row_per_child_in_utf_8(client):
    publish_all_but(*babulu_tps(3))
    response = client.get("/api/progress/pkwkk/6409.csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8"))))
    assert rows[0] == [
        "kode",
        "nama",
        "total",
        "published",
        "persen",
        "delivered",
        "queued",
        "retrying",
        "rejected",
        "missing",
        "stuck",
    ]
    assert rows[3] == [BABULU, "BABULU", "61", "58", "95.08", "0", "0", "0", "0", "3", "0"]
    assert len(rows) == 5
    national = client.get("/api/progress/pkwkk.csv").content.decode()
    assert national.splitlines()[1] == "64,KALIMANTAN TIMUR,293,290,98.97,0,0,0,0,3,0"


def test_a_name_beyond_ascii_comes_out_in_utf_8(client):
    Area.objects.filter(code=LABANGKA).update(name="Labangka Ñ")
    csv_text = client.get(f"/api/progress/pkwkk/{BABULU}.csv").content.decode("utf-8")
    assert "Labangka Ñ" in csv_text
    assert "Labangka Ñ".encode() in client.get(f"/api/wilayah/pkwkk/64/6409/{BABULU}.json").content


# --- Browsers and caches


URLS = [
    "/api/hhcw/pkwkk.json",
    PPU_FILE,
    TPS_FILE,
    "/api/wilayah/pkwkk/0.json",
    "/api/progress/pkwkk/6409.csv",
    "/api/paslon/pkwkk.json",
    "/api/hhcw/pkwkk/99.json",  # an error
]


@pytest.mark.parametrize("url", URLS)
def test_no_answer_sets_a_cookie_even_to_a_logged_in_staff_member(client, kpu_staff, url):
    assert not client.get(url).cookies
    client.force_login(kpu_staff)
    response = client.get(url)
    assert not response.cookies
    assert "Set-Cookie" not in response.headers
    assert "Cookie" not in response.get("Vary", "")


def test_a_published_page_sets_no_cookie_either(client, kpu_staff):
    page = receive(kpu_staff).document.pages.get()
    move(LABANGKA_TPS, Status.PUBLISHED)
    client.force_login(kpu_staff)
    response = client.get(f"/api/dokumen/{page.pk}.jpg")
    assert response.status_code == 200
    assert not response.cookies


@pytest.mark.parametrize("url", [URLS[0], PPU_FILE, TPS_FILE, "/api/progress/pkwkk/6409.csv"])
def test_an_unchanged_file_answers_304_to_its_etag_and_a_changed_one_200(client, url):
    first = client.get(url)
    assert first["Cache-Control"] == (
        "public, max-age=5, stale-while-revalidate=30, stale-if-error=600"
    )
    etag = first["ETag"]
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again["ETag"] == etag
    assert again["Access-Control-Allow-Origin"] == "*"
    move(LABANGKA_TPS, Status.PUBLISHED)
    refresh()
    changed = client.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed["ETag"] != etag


def test_a_region_list_answers_304_while_its_children_stay_the_same(client):
    etag = client.get("/api/wilayah/pkwkk/0.json")["ETag"]
    move(LABANGKA_TPS, Status.PUBLISHED)
    again = client.get("/api/wilayah/pkwkk/0.json", headers={"If-None-Match": etag})
    assert again.status_code == 304


def test_a_published_page_answers_304_to_its_sha256(client, kpu_staff):
    page = receive(kpu_staff).document.pages.get()
    move(LABANGKA_TPS, Status.PUBLISHED)
    response = client.get(f"/api/dokumen/{page.pk}.jpg", headers={"If-None-Match": "*"})
    assert response.status_code == 304
    assert response["ETag"] == f'"{page.sha256}"'


@pytest.mark.parametrize("url", [*URLS, "/api/dokumen/1.jpg"])
def test_any_origin_may_read_and_a_preflight_is_answered(client, url):
    assert client.get(url)["Access-Control-Allow-Origin"] == "*"
    preflight = client.options(
        url,
        headers={
            "Origin": "https://example.org",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "if-none-match",
        },
    )
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == "*"
    assert preflight["Access-Control-Allow-Methods"] == "GET, HEAD, OPTIONS"
    assert preflight["Access-Control-Allow-Headers"] == "*"


def test_a_head_request_answers_the_headers_of_the_file(client):
    response = client.head(PPU_FILE)
    assert response.status_code == 200
    assert response["ETag"] == client.get(PPU_FILE)["ETag"]


@pytest.mark.parametrize(
    ("url", "query_count"),
    [
        # The contests, the counts, the public site's figure, the stuck list; and for an area
        # its ancestors. A TPS: its desa with ancestors, the contests, its upload, its pages.
        ("/api/hhcw/pkwkk.json", 4),
        (PPU_FILE, 5),
        (TPS_FILE, 4),
        ("/api/wilayah/pkwkk/64/6409.json", 5),
        ("/api/progress/pkwkk/6409.csv", 5),
    ],
)
def test_a_file_is_built_once_for_a_fixed_number_of_queries_then_read_with_none(
    client, kpu_staff, url, query_count
):
    receive(kpu_staff)
    move(LABANGKA_TPS, Status.PUBLISHED)
    with CaptureQueriesContext(connection) as queries:
        built = client.get(url)
    assert len(queries) == query_count
    with CaptureQueriesContext(connection) as queries:
        again = client.get(url)
    assert len(queries) == 0
    assert again.content == built.content


def test_a_published_page_costs_one_query(client, kpu_staff):
    page = receive(kpu_staff).document.pages.get()
    move(LABANGKA_TPS, Status.PUBLISHED)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(f"/api/dokumen/{page.pk}.jpg").status_code == 200
    assert len(queries) == 1


# --- Errors


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/api/hhcw/pkwkx.json", 404),  # no such contest
        ("/api/hhcw/pkwkk/64/6499.json", 404),  # no such kabupaten
        ("/api/hhcw/pkwkk/64/6409/640903/6409032002/6409032002999.json", 404),  # no such TPS
        ("/api/hhcw/ppwp.json", 404),  # no contest of that kind is open
        ("/api/wilayah/pkwkk/64/6499.json", 404),
        ("/api/progress/pkwkk/6499.csv", 404),
        (f"/api/progress/pkwkk/{LABANGKA_TPS}.csv", 404),  # a TPS has no children
        ("/api/dokumen/999999.jpg", 404),
        ("/api/hhcw/pkwkk/64/6409", 400),  # no .json
        ("/api/hhcw/pkwkk/6409.json", 400),  # the provinsi left out
        ("/api/hhcw/pkwkk/64/6509.json", 400),  # not under 64
        ("/api/hhcw/pkwkk/64/64ab.json", 400),
        ("/api/hhcw/pkwkk/64/6409/", 400),
        ("/api/wilayah/pkwkk.json", 400),
        (f"/api/wilayah/pkwkk/64/6409/{BABULU}/{LABANGKA}/{LABANGKA_TPS}.json", 400),
        ("/api/progress/pkwkk/64.09.csv", 400),
        ("/api/progress/pkwkk/6409.json", 400),
        ("/api/progress/pkwkk/.csv", 400),
        ("/api/dokumen/abc.jpg", 400),
        ("/api/dokumen/12", 400),
    ],
)
def test_a_wrong_path_is_answered_in_json_with_its_status(client, url, status):
    response = client.get(url)
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert set(body(response)) == {"error"}
    assert response["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_any_method_but_get_head_and_options_is_405(client, method):
    response = getattr(client, method)(PPU_FILE)
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD, OPTIONS"
    assert body(response) == {"error": f"method {method.upper()} is not allowed; use GET"}
