"""Requests refused before any view, and the intake API answering JSON whatever the body.

A POST to /masuk/ with a made-up csrftoken cookie made Django write a 300 MB body to disk before
the CSRF check failed; a NUL in an area code was a 500 with a traceback; Django's HTML 400
answered a broken multipart body on the JSON API; a long Idempotency-Key was silently cut.
"""

import pytest
from django.contrib.auth import get_user_model
from django.db import OperationalError
from django.test import Client

from accounts.services import api_token_create
from tests.documents import page_bytes, page_file
from tests.world import LABANGKA_TPS, person
from uploads.models import Document

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("small_world")]

HUGE = str(300 * 1024 * 1024)
FORGED_CSRF = {"HTTP_COOKIE": "csrftoken=" + "a" * 32}


@pytest.fixture
def token():
    person("kpu", "staff")
    return api_token_create(username="kpu")


# What the refusal page says, in each language (the JSON of the API is in English).
SAID = {
    "too large": (
        "The request body of 314572800 bytes is larger than the 65536 allowed.",
        "Isi permintaan sebesar 314572800 bita melebihi batas 65536 bita yang diizinkan.",
    ),
    "no length": (
        "Send the body with a Content-Length header.",
        "Kirim isi permintaan dengan header Content-Length.",
    ),
    "nul": ("The address contains a NUL character.", "Alamat ini berisi karakter NUL."),
}


def says(response, what: str) -> bool:
    english, indonesian = SAID[what]
    return (english if response["Content-Language"] == "en" else indonesian) in response.text


def multipart(client, path: str, length: str, **extra):
    return client.post(path, {"username": "x", "file": page_file()}, CONTENT_LENGTH=length, **extra)


# --- Request bodies


@pytest.mark.parametrize("path", ["/masuk/", "/en/masuk/", "/keluar/", "/admin/login/"])
def test_a_large_anonymous_body_is_refused_413_before_the_csrf_check_reads_it(path):
    response = multipart(Client(enforce_csrf_checks=True), path, HUGE, **FORGED_CSRF)
    assert response.status_code == 413
    assert says(response, "too large")


def test_a_large_body_to_the_open_data_is_refused_in_json(client):
    response = multipart(client, "/api/hhcw/pkwkk.json", HUGE)
    assert response.status_code == 413
    assert response.json() == {
        "error": "The request body of 314572800 bytes is larger than the 65536 allowed."
    }


def test_a_body_within_the_limit_reaches_the_csrf_check_as_before():
    client = Client(enforce_csrf_checks=True)
    response = client.post("/masuk/", {"username": "x", "password": "y"}, **FORGED_CSRF)
    assert response.status_code == 403


@pytest.mark.parametrize("path", ["/api/uploads/", "/unggah/", "/en/unggah/"])
def test_where_documents_arrive_a_whole_document_fits_and_more_does_not(client, settings, path):
    document = settings.UPLOAD_MAX_PAGES * settings.UPLOAD_MAX_PAGE_BYTES
    fits = multipart(client, path, str(document))
    too_large = multipart(client, path, str(document + settings.REQUEST_BODY_MAX_BYTES + 1))
    assert fits.status_code != 413 and too_large.status_code == 413


def test_a_real_document_larger_than_the_small_limit_is_taken(client, token):
    data = page_bytes(size=200_000)
    response = client.post(
        "/api/uploads/",
        {"tps": LABANGKA_TPS, "contest": "pkwkk", "file": [page_file(data)]},
        headers={"Authorization": f"Token {token}"},
    )
    assert response.status_code == 201


def test_a_body_of_unknown_length_is_refused_rather_than_taken_as_empty(client):
    response = client.post(
        "/masuk/",
        b"",
        content_type="text/plain",
        CONTENT_LENGTH="",
        HTTP_TRANSFER_ENCODING="chunked",
    )
    assert response.status_code == 411
    assert says(response, "no length")


# --- NUL characters in addresses


@pytest.mark.parametrize(
    "url",
    [
        "/wilayah/%00/",
        "/en/wilayah/64%00/",
        "/dashboard/pkwkk/6%00/",
        "/progress/pkwkk/6409%00/",
        "/dokumen/halaman/1%00/",
        "/admin/regions/area/6409%00/change/",
        "/admin/regions/area/?q=%00",
        "/progress/pkwkk/6409/?sort=%00",
        "/masuk/?next=/%00",
    ],
)
def test_a_nul_in_an_address_is_a_400_page_for_anyone(client, url):
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.test"))
    response = client.get(url)
    assert response.status_code == 400
    assert says(response, "nul")


def test_a_nul_in_an_open_data_address_is_a_json_400(client):
    response = client.get("/api/hhcw/pkwkk/6%00.json")
    assert response.status_code == 400
    assert response.json() == {"error": "The address contains a NUL character."}


# --- The intake API answers JSON


def post_raw(client, token, body: bytes, content_type: str, **headers):
    return client.generic(
        "POST",
        "/api/uploads/",
        body,
        content_type=content_type,
        headers={"Authorization": f"Token {token}", **headers},
    )


def test_too_many_files_is_a_json_400(client, token, settings):
    files = [page_file() for _ in range(settings.DATA_UPLOAD_MAX_NUMBER_FILES + 1)]
    response = client.post(
        "/api/uploads/",
        {"tps": LABANGKA_TPS, "contest": "pkwkk", "file": files},
        headers={"Authorization": f"Token {token}"},
    )
    assert response.status_code == 400
    assert response.json()["error"].startswith("the body cannot be taken: The number of files")


def test_too_many_fields_is_a_json_400(client, token, settings):
    fields = "&".join(f"f{n}=1" for n in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1))
    response = post_raw(client, token, fields.encode(), "application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert response.json()["error"].startswith("the body cannot be taken: The number of GET/POST")


def test_fields_too_large_are_a_json_400(client, token, settings):
    body = b"tps=" + b"1" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    response = post_raw(client, token, body, "application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert response.json() == {
        "error": "the form fields are too large; send the pages as 'file' parts",
        "pesan": "isian formulir terlalu besar; kirim halaman sebagai bagian 'file'",
    }


def test_a_5000_character_file_name_is_a_json_400(client, token):
    # By hand: Django's test client cuts file names to 255 characters; a client need not.
    name = "c" * 5000 + ".jpg"
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="%s"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n%s\r\n--b--\r\n" % (name.encode(), page_bytes())
    )
    response = post_raw(client, token, body, "multipart/form-data; boundary=b")
    assert response.status_code == 400
    assert response.json()["error"].startswith("the body is not readable multipart/form-data: ")
    assert not Document.objects.exists()


def test_multipart_without_a_boundary_is_a_json_400(client, token):
    response = post_raw(client, token, b"--x\r\n", "multipart/form-data")
    assert response.status_code == 400
    assert response.json()["error"] == (
        "the body is not readable multipart/form-data: Invalid boundary in multipart: None"
    )


def test_an_idempotency_key_over_200_characters_is_refused_not_cut(client, token):
    key = "k" * 201
    response = client.post(
        "/api/uploads/",
        {"tps": LABANGKA_TPS, "contest": "pkwkk", "file": [page_file()]},
        headers={"Authorization": f"Token {token}", "Idempotency-Key": key},
    )
    assert response.status_code == 400
    assert response.json() == {"error": "Idempotency-Key: 201 characters, at most 200"}
    assert not Document.objects.exists()


def test_another_method_on_the_intake_api_is_a_json_405(client):
    response = client.get("/api/uploads/")
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response.json() == {"error": "method GET is not allowed; use POST"}


@pytest.mark.parametrize("path", ["/api/", "/api/nothing.json", "/api/uploads", "/api/upload/"])
def test_an_unknown_api_path_is_a_json_404(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["error"].startswith("no such path under /api/")


# --- Every answer under /api/ is the API's JSON, readable from any origin (docs/api.md)

TPS_ACTIONS = f"/api/uploads/pkwkk/{LABANGKA_TPS}/actions"
UNKNOWN = "; the paths are in docs/api.md"


@pytest.mark.parametrize(
    ("method", "path", "status", "error"),
    [
        ("get", "/api", 404, f"no such path under /api/: '/api'{UNKNOWN}"),
        ("post", "/api", 404, f"no such path under /api/: '/api'{UNKNOWN}"),
        ("get", "/api/uploads/x", 404, f"no such path under /api/: '/api/uploads/x'{UNKNOWN}"),
        (
            "get",
            f"{TPS_ACTIONS}/x",
            404,
            f"no such path under /api/: '{TPS_ACTIONS}/x'{UNKNOWN}",
        ),
        # Without their slash: Django would redirect, and a redirected POST loses its body.
        (
            "post",
            "/api/uploads",
            404,
            "no such path under /api/: '/api/uploads'; did you mean /api/uploads/ (with a slash)?",
        ),
        (
            "post",
            TPS_ACTIONS,
            404,
            f"no such path under /api/: '{TPS_ACTIONS}'; did you mean {TPS_ACTIONS}/ "
            "(with a slash)?",
        ),
        (
            "put",
            "/api/nothing.json",
            404,
            f"no such path under /api/: '/api/nothing.json'{UNKNOWN}",
        ),
        ("options", "/api/nothing", 404, f"no such path under /api/: '/api/nothing'{UNKNOWN}"),
        (
            "get",
            "/en/api/hhcw/pkwkk.json",
            404,
            "no such path: '/en/api/hhcw/pkwkk.json'; the API has no language prefix: "
            "/api/hhcw/pkwkk.json",
        ),
        ("post", "/en/api", 404, "no such path: '/en/api'; the API has no language prefix: /api"),
        ("get", "/api/uploads/", 405, "method GET is not allowed; use POST"),
        ("delete", "/api/hhcw/pkwkk.json", 405, "method DELETE is not allowed; use GET"),
    ],
)
def test_every_error_under_api_is_json_with_cors(client, method, path, status, error):
    response = getattr(client, method)(path)
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": error}
    assert response["Access-Control-Allow-Origin"] == "*"


def test_a_head_request_to_an_unknown_api_path_gets_the_json_404s_headers(client):
    response = client.head("/en/api/wilayah/pkwkk/0.json")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response["Access-Control-Allow-Origin"] == "*"


def test_the_intake_answers_any_origin_too(client, token):
    response = client.post(
        "/api/uploads/",
        {"tps": LABANGKA_TPS, "contest": "pkwkk", "file": [page_file()]},
        headers={"Authorization": f"Token {token}"},
    )
    assert response.status_code == 201
    assert response["Access-Control-Allow-Origin"] == "*"
    refused = client.post("/api/uploads/", {}, headers={"Authorization": "Token wrong"})
    assert refused.status_code == 401
    assert refused["Access-Control-Allow-Origin"] == "*"


def test_a_body_too_large_and_a_nul_under_api_are_json_with_cors(client):
    too_large = multipart(client, "/api/hhcw/pkwkk.json", HUGE)
    nul = client.get("/en/api/hhcw/pkwkk/6%00.json")
    for response, status in [(too_large, 413), (nul, 400)]:
        assert response.status_code == status
        assert set(response.json()) == {"error"}
        assert response["Access-Control-Allow-Origin"] == "*"


def test_a_request_for_a_host_we_do_not_serve_is_a_json_400(client):
    response = client.get("/api/hhcw/pkwkk.json", headers={"host": "evil.example"})
    assert response.status_code == 400
    assert response.json() == {"error": "bad request"}
    assert response["Access-Control-Allow-Origin"] == "*"


@pytest.mark.urls("tests.later_urls")
def test_an_api_route_added_later_answers_its_refusals_and_failures_in_json():
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    not_allowed = client.get("/api/later/")
    assert not_allowed.status_code == 405
    assert not_allowed.json() == {"error": "method GET is not allowed; use POST"}
    assert not_allowed["Allow"] == "POST"
    forged = client.post("/api/later/", {"x": "1"}, **FORGED_CSRF)
    assert forged.status_code == 403
    assert forged.json() == {"error": "forbidden"}
    failed = client.get("/api/failing/")
    assert failed.status_code == 500
    assert failed.json() == {"error": "internal server error; try again later"}
    for response in (not_allowed, forged, failed):
        assert response["Access-Control-Allow-Origin"] == "*"
        assert response["X-Content-Type-Options"] == "nosniff"  # the other headers are kept
        assert int(response["Content-Length"]) == len(response.content)


def test_a_failing_open_data_view_is_a_json_500(monkeypatch):
    def broken(key):
        raise RuntimeError("a bug in the snapshot")

    monkeypatch.setattr("public.views.snapshot_entry", broken)
    response = Client(raise_request_exception=False).get("/api/hhcw/pkwkk.json")
    assert response.status_code == 500
    assert response.json() == {"error": "internal server error; try again later"}
    assert response["Access-Control-Allow-Origin"] == "*"


def _database_gone(*args, **kwargs):
    raise OperationalError("connection to server failed: server closed the connection")


def test_a_page_while_the_database_cannot_be_reached_is_a_503_to_try_again(monkeypatch):
    """PostgreSQL restarting for a few seconds: a staff page says to try again, not that
    something broke on our side, and says when (a poll keeps what it showed: static/js/live.js,
    tests/test_browser_pages.py)."""
    client = Client(raise_request_exception=False)
    client.force_login(person("kpu", "staff"))
    monkeypatch.setattr("dashboard.views.area_page", _database_gone)
    response = client.get("/dashboard/pkwkk/6409/")
    assert response.status_code == 503
    assert response["Retry-After"] == "10"
    assert "Tidak ada yang hilang" in response.content.decode()
    english = client.get("/en/dashboard/pkwkk/6409/")
    assert "Nothing was lost. Try again in a few seconds." in english.content.decode()


def test_the_api_while_the_database_cannot_be_reached_is_a_json_503(monkeypatch):
    client = Client(raise_request_exception=False)
    client.force_login(person("kpu", "staff"))
    monkeypatch.setattr("uploads.views.upload_with_pages", _database_gone)
    response = client.get(f"/api/uploads/pkwkk/{LABANGKA_TPS}/")
    assert response.status_code == 503
    assert response["Retry-After"] == "10"
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response.json() == {
        "error": "the service is unavailable for a moment; nothing was lost, try again shortly"
    }
