"""Resumable uploads over tus 1.0 against a live server: an independent client (tuspy) for the
happy path and a resume, raw HTTP for every edge case the protocol names, the intake's checks
and refusals on the way, the state endpoint, and the expiry of what was left behind.

The pages are taken in exactly as POST /api/uploads/ takes them: the same document and SHA-256
whichever way it came, once.
"""

import base64
import hashlib
import io
import socket
import threading
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
import pytest
import time_machine
from django.utils import timezone
from tusclient.client import TusClient

from accounts.models import AccessEvent, AccessKind, Profile
from accounts.services import api_token_create
from tests.conftest import wait_until
from tests.documents import PDF_HEAD, PNG_HEAD, page_bytes, page_file, sha256
from tests.world import LABANGKA_TPS, person, text
from uploads import tus_parts
from uploads.models import Document, Status, TusDocument, TusState, TusUpload, Upload
from uploads.services.intake import upload_receive
from uploads.services.publication import upload_mark_published
from uploads.tasks import expire_tus_uploads

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("small_world")]

PENAJAM_TPS = "6409011011001"
TUS = {"Tus-Resumable": "1.0.0"}
BODY = {"Content-Type": "application/offset+octet-stream"}


@pytest.fixture
def staff_token():
    person("kpu", "staff")
    return api_token_create(username="kpu")


@pytest.fixture
def server(live_server, staff_token):
    """The live server, spoken to by KPU staff's token."""
    with httpx.Client(
        base_url=live_server.url, headers={**TUS, "Authorization": f"Token {staff_token}"}
    ) as client:
        yield client


def metadata(**values) -> str:
    return ",".join(
        f"{key} {base64.b64encode(str(v).encode()).decode()}" for key, v in values.items()
    )


def page_meta(page=1, pages=1, document="doc-1", tps=LABANGKA_TPS, contest="pkwkk", **more):
    return {
        "tps": tps,
        "contest": contest,
        "document": document,
        "page": page,
        "pages": pages,
        "filename": f"c-hasil-{page}.jpg",
        **more,
    }


def create(server, length: int, body: bytes = b"", **meta) -> httpx.Response:
    headers = {"Upload-Length": str(length), "Upload-Metadata": metadata(**page_meta(**meta))}
    if body:
        headers |= BODY
    return server.post("/api/uploads/tus/", headers=headers, content=body)


def patch(server, location: str, offset: int, body: bytes, **headers) -> httpx.Response:
    return server.patch(
        location, headers={**BODY, "Upload-Offset": str(offset), **headers}, content=body
    )


def send_page(server, data: bytes, **meta) -> httpx.Response:
    """One page created and sent in one PATCH: the PATCH's answer."""
    created = create(server, len(data), **meta)
    assert created.status_code == 201, created.text
    assert created.headers["Upload-Expires"].endswith(" GMT")
    return patch(server, created.headers["Location"], 0, data)


def tus_of(location: str) -> TusUpload:
    return TusUpload.objects.get(pk=location.rsplit("/", 1)[1])


def upload_of(tps=LABANGKA_TPS, kind="pkwkk") -> Upload:
    return Upload.objects.get(tps_id=tps, contest__kind=kind)


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


# --- What the server offers


def test_options_advertises_the_version_extensions_largest_page_and_checksums(server, settings):
    response = server.options("/api/uploads/tus/", headers={"Tus-Resumable": ""})
    assert response.status_code == 204
    assert response.headers["Tus-Version"] == "1.0.0"
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert set(response.headers["Tus-Extension"].split(",")) == {
        "creation",
        "creation-with-upload",
        "expiration",
        "checksum",
        "termination",
    }
    assert response.headers["Tus-Max-Size"] == str(settings.UPLOAD_MAX_PAGE_BYTES)
    assert {"sha1", "sha256"} <= set(response.headers["Tus-Checksum-Algorithm"].split(","))


# --- An independent client: the happy path and a resume


def test_tuspy_sends_a_page_and_it_is_taken_in_as_the_intake_takes_it(live_server, staff_token):
    data = page_bytes(size=150_000)
    client = TusClient(
        f"{live_server.url}/api/uploads/tus/", headers={"Authorization": f"Token {staff_token}"}
    )
    uploader = client.uploader(
        file_stream=_stream(data),
        chunk_size=64 * 1024,
        metadata={**{k: str(v) for k, v in page_meta(document="tuspy-1").items()}},
    )
    uploader.upload()

    upload = upload_of()
    assert upload.status == Status.QUEUED
    assert upload.document.sha256 == sha256(data)
    assert upload.document.idempotency_key == "tuspy-1"
    page = upload.document.pages.get()
    assert (page.number, page.size, page.content_type) == (1, len(data), "image/jpeg")
    assert list(upload.events.values_list("action", flat=True)) == ["received"]
    part = tus_of(uploader.url)
    assert (part.state, part.offset, part.received) == (TusState.TAKEN, len(data), len(data))
    # Its bytes now live with the document only.
    assert not tus_parts.part_path(part.pk).exists()


def test_an_interrupted_upload_resumes_from_the_servers_offset_and_no_byte_is_sent_twice(
    live_server, staff_token, server
):
    data = page_bytes(size=400_000)
    client = TusClient(
        f"{live_server.url}/api/uploads/tus/", headers={"Authorization": f"Token {staff_token}"}
    )
    meta = {k: str(v) for k, v in page_meta(document="resumed").items()}
    first = client.uploader(file_stream=_stream(data), chunk_size=100_000, metadata=meta)
    first.set_url(first.create_url())
    first.upload_chunk()
    first.upload_chunk()
    assert first.offset == 200_000

    # The network drops in the middle of the third chunk: the server keeps what arrived.
    _patch_cut_short(live_server.url, first.url, staff_token, data, offset=200_000, sent=70_000)
    wait_until(lambda: tus_of(first.url).offset == 270_000, timeout=10)
    head = server.head(first.url)
    assert head.status_code == 200 and head.headers["Upload-Offset"] == "270000"
    assert head.headers["Upload-Length"] == "400000"
    assert head.headers["Cache-Control"] == "no-store"

    # Later, another client resumes from the server's offset.
    resumed = client.uploader(file_stream=_stream(data), url=first.url, chunk_size=100_000)
    assert resumed.offset == 270_000
    resumed.upload()

    part = tus_of(first.url)
    assert part.received == len(data)  # every byte crossed the network once
    assert upload_of().document.sha256 == sha256(data)


def _stream(data: bytes) -> io.BytesIO:
    return io.BytesIO(data)


def _patch_cut_short(base: str, location: str, token: str, data: bytes, offset: int, sent: int):
    """A PATCH announcing the rest of the page whose connection closes after `sent` bytes."""
    url = urlsplit(base)
    path = urlsplit(location).path
    head = (
        f"PATCH {path} HTTP/1.1\r\nHost: {url.netloc}\r\nTus-Resumable: 1.0.0\r\n"
        f"Authorization: Token {token}\r\nContent-Type: application/offset+octet-stream\r\n"
        f"Upload-Offset: {offset}\r\nContent-Length: {len(data) - offset}\r\n\r\n"
    )
    with socket.create_connection((url.hostname, url.port)) as connection:
        connection.sendall(head.encode() + data[offset : offset + sent])


# --- The same document whichever way it comes


def test_tus_and_the_intake_api_give_one_upload_and_one_sha256_for_the_same_pages(
    server, staff_token, client
):
    pages = [page_bytes(), page_bytes(PNG_HEAD), page_bytes(PDF_HEAD)]
    for number, data in enumerate(pages, start=1):
        answer = send_page(server, data, page=number, pages=3, document="three-pages")
        assert answer.status_code == 204, answer.text
    upload = upload_of()
    assert upload.document.sha256 == sha256(*pages)

    # The same pages through POST /api/uploads/: the intake knows them, as it knows its own.
    api = client.post(
        "/api/uploads/",
        {"tps": LABANGKA_TPS, "contest": "pkwkk", "file": [page_file(p) for p in pages]},
        headers={"Authorization": f"Token {staff_token}"},
    )
    assert api.status_code == 200
    assert api.json() == {
        "id": upload.pk,
        "tps": LABANGKA_TPS,
        "contest": "pkwkk",
        "status": "queued",
        "sha256": sha256(*pages),
    }
    stored = list(upload.document.pages.values_list("number", "sha256", "size", "content_type"))
    assert stored == [
        (1, sha256(pages[0]), 2048, "image/jpeg"),
        (2, sha256(pages[1]), 2048, "image/png"),
        (3, sha256(pages[2]), 2048, "application/pdf"),
    ]


def test_a_document_sent_by_the_api_and_again_over_tus_is_one_upload(server, staff_token, client):
    pages = [page_bytes(), page_bytes()]
    api = client.post(
        "/api/uploads/",
        {"tps": LABANGKA_TPS, "contest": "pkwkk", "file": [page_file(p) for p in pages]},
        headers={"Authorization": f"Token {staff_token}"},
    )
    assert api.status_code == 201
    for number, data in enumerate(pages, start=1):
        assert send_page(server, data, page=number, pages=2).status_code == 204
    state = server.get(f"/api/uploads/pkwkk/{LABANGKA_TPS}/").json()
    assert state["sha256"] == api.json()["sha256"] == sha256(*pages)
    assert Document.objects.count() == 1
    assert upload_of().events.count() == 1


def test_the_same_document_sent_twice_over_tus_is_one_upload(server):
    data = page_bytes()
    assert send_page(server, data, document="phone-a").status_code == 204
    # Again under the same id (a phone that lost track), then under another one.
    assert send_page(server, data, document="phone-a").status_code == 204
    assert send_page(server, data, document="phone-b").status_code == 204
    assert Document.objects.count() == 1
    assert list(upload_of().events.values_list("action", flat=True)) == ["received"]


def test_one_page_sent_again_is_taken_with_the_pages_already_in_and_changes_nothing(server):
    pages = [page_bytes(), page_bytes()]
    for number, data in enumerate(pages, start=1):
        assert send_page(server, data, page=number, pages=2, document="two").status_code == 204
    # A phone that lost track of page 2 only sends it again: page 1 is read back from the
    # document it went into, and the intake finds the same document.
    assert send_page(server, pages[1], page=2, pages=2, document="two").status_code == 204
    assert Document.objects.count() == 1
    assert upload_of().document.sha256 == sha256(*pages)
    assert upload_of().events.count() == 1
    # Another photo of page 2 under the same id is another document: refused, named.
    other = send_page(server, page_bytes(), page=2, pages=2, document="two")
    assert other.status_code == 409 and other.json()["document_id"] == "two"
    assert Document.objects.count() == 1


def test_a_document_id_reused_for_other_pages_is_refused_as_an_idempotency_key_is(server):
    assert send_page(server, page_bytes(), document="phone-a").status_code == 204
    again = send_page(server, page_bytes(), document="phone-a")
    assert again.status_code == 409
    assert (
        "Idempotency-Key 'phone-a' was already used for a different document"
        in again.json()["error"]
    )
    assert Document.objects.count() == 1


def test_two_pages_completing_at_once_take_the_document_in_once(server):
    pages = [page_bytes(size=4096), page_bytes(size=4096)]
    locations = []
    for number, data in enumerate(pages, start=1):
        created = create(server, len(data), page=number, pages=2, document="together")
        locations.append(created.headers["Location"])
        assert patch(server, locations[-1], 0, data[:-1]).status_code == 204
    start = threading.Barrier(2)
    answers = [None, None]

    def last_byte(index: int) -> None:
        start.wait()
        answers[index] = patch(server, locations[index], 4095, pages[index][-1:]).status_code

    threads = [threading.Thread(target=last_byte, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [204, 204]
    assert Document.objects.count() == 1
    assert upload_of().document.sha256 == sha256(*pages)
    assert upload_of().events.count() == 1


# --- The last PATCH when the intake refuses the document


def test_a_document_the_intake_refuses_is_answered_on_its_last_patch_and_kept_for_the_state(
    server,
):
    upload_receive(
        tps_code=LABANGKA_TPS,
        kind="pkwkk",
        files=[page_file()],
        user=person("kpps", "kpps", LABANGKA_TPS),
    )
    upload_mark_published(upload_id=upload_of().pk, images=["https://example.test/a.jpg"])
    data = page_bytes()
    created = create(server, len(data), document="too-late")
    location = created.headers["Location"]
    answer = patch(server, location, 0, data)

    message = (
        f"TPS {LABANGKA_TPS} pkwkk is already published with a different document; a "
        "replacement goes through the PPK with a reason"
    )
    assert answer.status_code == 409
    assert answer.json()["error"] == message
    assert answer.json()["document_id"] == "too-late"
    assert "sudah dipublikasikan dengan dokumen lain" in answer.json()["pesan"]
    assert answer.headers["Upload-Offset"] == str(len(data))
    # The bytes are on the server: the upload itself is complete...
    head = server.head(location)
    assert head.status_code == 200 and head.headers["Upload-Offset"] == str(len(data))
    # ...and whoever asks later learns the refusal.
    state = server.get(f"/api/uploads/pkwkk/{LABANGKA_TPS}/").json()
    assert state["status"] == "published"
    assert state["refusal"]["document_id"] == "too-late"
    assert (state["refusal"]["status"], state["refusal"]["error"]) == (409, message)
    assert Document.objects.count() == 1


def test_a_bad_page_is_refused_when_its_document_is_complete_naming_the_page(server):
    assert send_page(server, page_bytes(), page=1, pages=2).status_code == 204
    answer = send_page(server, b"TPS 001 suara sah 180", page=2, pages=2)
    assert answer.status_code == 400
    assert answer.json()["error"] == (
        "page 2 (c-hasil-2.jpg): not a JPEG, PNG or PDF file (judged by its content)"
    )
    assert upload_of().status == Status.MISSING and not Document.objects.exists()


def test_a_region_taken_away_before_the_last_byte_is_a_403_recorded_as_a_refusal(
    live_server,
):
    user = person("ppk-babulu", "ppk", "640903")
    token = api_token_create(username="ppk-babulu")
    headers = {**TUS, "Authorization": f"Token {token}"}
    with httpx.Client(base_url=live_server.url, headers=headers) as ppk:
        data = page_bytes()
        location = create(ppk, len(data)).headers["Location"]
        Profile.objects.filter(user=user).update(region_id="640901")
        answer = patch(ppk, location, 0, data)
    assert answer.status_code == 403
    assert answer.json()["error"] == f"TPS {LABANGKA_TPS} is outside your region"
    assert AccessEvent.objects.filter(kind=AccessKind.NOT_ALLOWED, user=user).exists()


# --- Edge cases, each as the protocol answers it


def test_another_protocol_version_is_412_with_the_versions_spoken(live_server, staff_token):
    with httpx.Client(
        base_url=live_server.url, headers={"Authorization": f"Token {staff_token}"}
    ) as unversioned:
        for version in ({"Tus-Resumable": "0.2.2"}, {}):
            response = unversioned.post(
                "/api/uploads/tus/", headers={"Upload-Length": "10", **version}
            )
            assert response.status_code == 412
            assert response.headers["Tus-Version"] == "1.0.0"
    assert not TusUpload.objects.exists()


def test_without_a_valid_token_or_session_the_answer_is_401(live_server):
    with httpx.Client(base_url=live_server.url, headers=TUS) as anonymous:
        for headers in ({}, {"Authorization": "Token nope"}):
            response = anonymous.post(
                "/api/uploads/tus/", headers={"Upload-Length": "10", **headers}
            )
            assert response.status_code == 401
            assert response.headers["WWW-Authenticate"].startswith("Token")


def test_a_tps_outside_the_users_region_is_403_at_creation_before_any_byte(live_server):
    user = person("ppk-babulu", "ppk", "640903")
    token = api_token_create(username="ppk-babulu")
    with httpx.Client(
        base_url=live_server.url, headers={**TUS, "Authorization": f"Token {token}"}
    ) as ppk:
        response = create(ppk, 2048, tps=PENAJAM_TPS)
    assert response.status_code == 403
    assert response.json()["error"] == f"TPS {PENAJAM_TPS} is outside your region"
    assert not TusUpload.objects.exists()
    assert AccessEvent.objects.filter(kind=AccessKind.NOT_ALLOWED, user=user).exists()


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ({"page": None}, "Upload-Metadata page: missing; every page names tps, contest, document"),
        (
            {"page": 3, "pages": 2},
            "Upload-Metadata page: expected a whole number from 1 to 2, got '3'",
        ),
        ({"pages": 21}, "Upload-Metadata pages: too many pages: 21, at most 20 per document"),
        ({"pages": "9" * 5000}, "Upload-Metadata pages: expected a whole number from 1 to"),
        ({"document": ""}, "Upload-Metadata document: expected 1 to 200 printable characters"),
        ({"original_sha256": "abc"}, "Upload-Metadata original_sha256: expected a SHA-256"),
        ({"tps": "6409032002999"}, "tps: no TPS with code 6409032002999"),
        ({"contest": "ppwp"}, "contest: ppwp is not open at TPS 6409032002001"),
    ],
)
def test_bad_metadata_is_400_naming_the_key_and_nothing_is_created(server, meta, message):
    values = {key: value for key, value in (page_meta() | meta).items() if value is not None}
    response = server.post(
        "/api/uploads/tus/",
        headers={"Upload-Length": "2048", "Upload-Metadata": metadata(**values)},
    )
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert not TusUpload.objects.exists()


def test_metadata_that_is_not_base64_is_400_naming_the_key(server):
    response = server.post(
        "/api/uploads/tus/",
        headers={"Upload-Length": "10", "Upload-Metadata": "tps !!notbase64!!"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "Upload-Metadata tps: not the Base64 of UTF-8 text"


def test_pages_of_one_document_must_agree_on_what_it_is(server):
    assert create(server, 2048, page=1, pages=2).status_code == 201
    response = create(server, 2048, page=2, pages=3)
    assert response.status_code == 400
    assert response.json()["error"].startswith(
        "Upload-Metadata pages: document 'doc-1' was begun with 2"
    )


def test_a_page_too_large_is_413_at_creation_before_any_byte(server, settings):
    response = create(server, settings.UPLOAD_MAX_PAGE_BYTES + 1)
    assert response.status_code == 413
    limit = settings.UPLOAD_MAX_PAGE_BYTES
    assert response.json()["error"] == (
        f"page 1 (c-hasil-1.jpg): {limit + 1} bytes, more than the {limit} allowed per page"
    )
    assert not TusUpload.objects.exists()


def test_an_offset_that_is_not_the_uploads_is_409_and_changes_nothing(server):
    data = page_bytes()
    location = create(server, len(data)).headers["Location"]
    assert patch(server, location, 0, data[:1000]).status_code == 204
    response = patch(server, location, 500, data[500:])
    assert response.status_code == 409
    assert response.headers["Upload-Offset"] == "1000"
    assert "document_id" not in response.json()  # the protocol's 409, not the intake's
    assert tus_of(location).offset == 1000


def test_a_checksum_mismatch_is_460_and_the_chunk_is_discarded(server):
    data = page_bytes()
    location = create(server, len(data)).headers["Location"]
    wrong = b64(hashlib.sha256(b"something else").digest())
    response = patch(server, location, 0, data[:1000], **{"Upload-Checksum": f"sha256 {wrong}"})
    assert response.status_code == 460
    assert tus_of(location).offset == 0
    assert tus_parts.part_path(tus_of(location).pk).stat().st_size == 0
    right = b64(hashlib.sha1(data[:1000]).digest())
    response = patch(server, location, 0, data[:1000], **{"Upload-Checksum": f"sha1 {right}"})
    assert response.status_code == 204 and response.headers["Upload-Offset"] == "1000"


def test_an_unsupported_checksum_algorithm_is_400(server):
    location = create(server, 2048).headers["Location"]
    response = patch(server, location, 0, b"x" * 10, **{"Upload-Checksum": "crc32 AAAAAA=="})
    assert response.status_code == 400
    assert response.json()["error"].startswith("Upload-Checksum: 'crc32' is not supported")
    assert tus_of(location).offset == 0


def test_a_body_past_the_uploads_length_is_413(server):
    location = create(server, 2048).headers["Location"]
    response = patch(server, location, 0, b"x" * 2049)
    assert response.status_code == 413
    assert tus_of(location).offset == 0


def test_a_body_larger_than_a_page_is_refused_before_it_is_read(server, settings):
    location = create(server, 2048).headers["Location"]
    settings.UPLOAD_MAX_PAGE_BYTES = 1000
    response = patch(server, location, 0, b"x" * 1001)
    assert response.status_code == 413
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert response.json()["error"] == (
        "The request body of 1001 bytes is larger than the 1000 allowed."
    )


def test_a_patch_without_the_offset_stream_type_is_415(server):
    location = create(server, 2048).headers["Location"]
    response = server.patch(
        location,
        headers={"Upload-Offset": "0", "Content-Type": "application/octet-stream"},
        content=b"x",
    )
    assert response.status_code == 415


def test_an_unknown_upload_and_another_users_are_404(server, live_server):
    assert server.head("/api/uploads/tus/" + "0" * 32).status_code == 404
    assert server.head("/api/uploads/tus/not-an-id").status_code == 404
    location = create(server, 2048).headers["Location"]
    got = server.get(location)
    assert got.status_code == 405 and got.headers["Allow"] == "OPTIONS, HEAD, PATCH, DELETE"
    person("other", "staff")
    other = api_token_create(username="other")
    with httpx.Client(
        base_url=live_server.url, headers={**TUS, "Authorization": f"Token {other}"}
    ) as c:
        assert c.head(location).status_code == 404
        assert patch(c, location, 0, b"x").status_code == 404


def test_a_terminated_upload_is_204_then_410_and_its_bytes_are_gone(server):
    location = create(server, 2048).headers["Location"]
    assert patch(server, location, 0, b"x" * 100).status_code == 204
    assert server.delete(location).status_code == 204
    assert not tus_parts.part_path(tus_of(location).pk).exists()
    assert server.head(location).status_code == 410
    assert patch(server, location, 100, b"x").status_code == 410


def test_creation_with_upload_takes_the_first_bytes_with_the_post(server):
    data = page_bytes()
    response = create(server, len(data), body=data[:1000])
    assert response.status_code == 201
    assert response.headers["Upload-Offset"] == "1000"
    assert "Upload-Expires" in response.headers
    assert patch(server, response.headers["Location"], 1000, data[1000:]).status_code == 204
    assert upload_of().document.sha256 == sha256(data)


def test_head_answers_the_metadata_as_sent_and_a_post_may_stand_for_a_patch(server):
    data = page_bytes()
    created = create(server, len(data))
    location = created.headers["Location"]
    head = server.head(location)
    assert head.headers["Upload-Metadata"] == metadata(**page_meta())
    # For clients that cannot send PATCH: X-HTTP-Method-Override on a POST.
    overridden = server.post(
        location,
        headers={**BODY, "Upload-Offset": "0", "X-HTTP-Method-Override": "PATCH"},
        content=data,
    )
    assert overridden.status_code == 204 and overridden.headers["Upload-Offset"] == str(len(data))
    assert upload_of().document.sha256 == sha256(data)


def test_creations_beyond_the_rate_limit_are_429(server, settings):
    settings.UPLOAD_RATE_PER_USER = 1
    assert create(server, 2048).status_code == 201
    refused = create(server, 2048, page=1, document="doc-2")
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1


def test_a_patch_while_another_of_the_same_upload_runs_is_409(server, live_server, staff_token):
    data = page_bytes(size=300_000)
    location = create(server, len(data)).headers["Location"]
    part = tus_parts.part_path(tus_of(location).pk)
    url = urlsplit(live_server.url)
    head = (
        f"PATCH {location} HTTP/1.1\r\nHost: {url.netloc}\r\nTus-Resumable: 1.0.0\r\n"
        f"Authorization: Token {staff_token}\r\nContent-Type: application/offset+octet-stream\r\n"
        f"Upload-Offset: 0\r\nContent-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection((url.hostname, url.port)) as slow:
        slow.sendall(head.encode() + data[:100_000])
        # The first PATCH is writing (its bytes reach the part file): it holds the upload.
        wait_until(lambda: part.stat().st_size >= 64 * 1024, timeout=10)
        second = patch(server, location, 0, data)
        assert second.status_code == 409
        assert "another request is writing to upload" in second.json()["error"]
        slow.sendall(data[100_000:])
        answer = slow.makefile("rb").readline()
    assert answer.startswith(b"HTTP/1.1 204")
    assert tus_of(location).offset == len(data)


def test_a_session_sends_with_its_csrf_token_and_not_without(live_server, client, staff_token):
    user = person("kpps-labangka", "kpps", LABANGKA_TPS)
    client.force_login(user)
    cookies = {"sessionid": client.cookies["sessionid"].value, "csrftoken": "k" * 32}
    # As a browser sends it: the page's own origin, which Django's CSRF check compares.
    same_origin = {**TUS, "Origin": live_server.url}
    with httpx.Client(base_url=live_server.url, headers=same_origin, cookies=cookies) as browser:
        data = page_bytes()
        forged = create(browser, len(data))
        assert forged.status_code == 403
        assert forged.json()["error"].startswith("CSRF check failed")
        browser.headers["X-CSRFToken"] = "k" * 32
        browser.headers["Origin"] = "https://evil.example"
        assert create(browser, len(data)).status_code == 403
        browser.headers["Origin"] = live_server.url
        location = create(browser, len(data)).headers["Location"]
        assert patch(browser, location, 0, data).status_code == 204
        assert browser.get(f"/api/uploads/pkwkk/{LABANGKA_TPS}/").json()["status"] == "queued"
    assert upload_of().document.uploaded_by == user


# --- The state of an upload


def test_the_state_tells_a_phone_what_the_server_has(server, client):
    original = "a" * 64
    data = page_bytes()
    send_page(server, data, document="phone-1", original_sha256=original)
    response = server.get(f"/api/uploads/pkwkk/{LABANGKA_TPS}/")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "private, no-store"
    state = response.json()
    upload = upload_of()
    assert state["id"] == upload.pk and state["status"] == "queued"
    assert state["status_since"] == upload.status_since.isoformat()
    assert (state["stuck"], state["stuck_reason"]) == (False, "")
    assert state["sha256"] == sha256(data)
    assert state["document_id"] == "phone-1"
    assert state["pages"] == [
        {"number": 1, "sha256": sha256(data), "size": len(data), "original_sha256": original}
    ]
    assert state["refusal"] is None
    # Staff see the original's SHA-256 beside the page.
    client.force_login(upload.document.uploaded_by)
    page = text(client.get(f"/en/dashboard/pkwkk/{LABANGKA_TPS}/"))
    assert f"original photo (before the phone shrank it) SHA-256 {original}" in page


def test_the_state_is_401_403_and_404_like_the_actions_api(live_server, server):
    with httpx.Client(base_url=live_server.url) as anonymous:
        assert anonymous.get(f"/api/uploads/pkwkk/{LABANGKA_TPS}/").status_code == 401
    person("kpps-penajam", "kpps", PENAJAM_TPS)
    token = api_token_create(username="kpps-penajam")
    with httpx.Client(base_url=live_server.url, headers={"Authorization": f"Token {token}"}) as c:
        assert c.get(f"/api/uploads/pkwkk/{LABANGKA_TPS}/").status_code == 403
        assert c.get(f"/api/uploads/pkwkk/{PENAJAM_TPS}/").json()["status"] == "missing"
    assert server.get(f"/api/uploads/ppwp/{LABANGKA_TPS}/").status_code == 404


# --- What is left behind expires


def test_an_expired_upload_loses_its_bytes_answers_410_and_is_forgotten_a_week_later(
    server, settings
):
    data = page_bytes()
    location = create(server, len(data)).headers["Location"]
    assert patch(server, location, 0, data[:1000]).status_code == 204
    part = tus_parts.part_path(tus_of(location).pk)
    expires = TusDocument.objects.get().expires_at
    assert expires > timezone.now() + timedelta(hours=settings.TUS_EXPIRY_HOURS - 1)

    # Beat runs the job that cleans up.
    assert settings.CELERY_BEAT_SCHEDULE["expire-tus-uploads"]["task"] == expire_tus_uploads.name
    with time_machine.travel(expires + timedelta(seconds=1)):
        assert server.head(location).status_code == 410
        expire_tus_uploads()
        assert not part.exists()
        assert tus_of(location).state == TusState.EXPIRED
        assert patch(server, location, 1000, data[1000:]).status_code == 410
    with time_machine.travel(expires + timedelta(days=7, seconds=2)):
        expire_tus_uploads()
        assert not TusDocument.objects.exists()
        assert server.head(location).status_code == 404


def test_a_document_still_being_sent_does_not_expire(server):
    data = page_bytes()
    location = create(server, len(data)).headers["Location"]
    expires = TusDocument.objects.get().expires_at
    with time_machine.travel(expires - timedelta(minutes=1)):
        assert patch(server, location, 0, data[:1000]).status_code == 204
    with time_machine.travel(expires + timedelta(minutes=1)):
        expire_tus_uploads()
        assert server.head(location).status_code == 200
        assert tus_parts.part_path(tus_of(location).pk).exists()
