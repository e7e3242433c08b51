"""Taking documents in: the upload API, its errors, idempotency, scopes, tokens and the form."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import ApiToken
from accounts.services import api_token_create
from tests.documents import PDF_HEAD, PNG_HEAD, page_bytes, page_file, sha256
from tests.world import LABANGKA_TPS, person
from uploads.models import Document, Page, Source, Status, Upload, UploadEvent
from uploads.services.intake import Intent, _document_insert, upload_receive
from uploads.services.publication import upload_mark_published

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ppu")]

PENAJAM_TPS = "6409011011001"


@pytest.fixture
def staff_token(kpu_staff):
    return api_token_create(username=kpu_staff.username)


@pytest.fixture
def babulu_token():
    person("ppk-babulu", "ppk", "640903", password="x")
    return api_token_create(username="ppk-babulu")


def post(client, token, *files, tps=LABANGKA_TPS, contest="pkwkk", key=None):
    headers = {"Authorization": f"Token {token}"} if token else {}
    if key:
        headers["Idempotency-Key"] = key
    data = {"tps": tps, "contest": contest, "file": list(files)}
    return client.post("/api/uploads/", data, headers=headers)


def upload_of(tps=LABANGKA_TPS, kind="pkwkk") -> Upload:
    return Upload.objects.get(tps_id=tps, contest__kind=kind)


def nothing_written() -> bool:
    return (
        not Document.objects.exists()
        and not Page.objects.exists()
        and not UploadEvent.objects.exists()
        and not Upload.objects.exclude(status=Status.MISSING).exists()
    )


def test_a_new_document_is_queued_and_answered_201_with_its_sha256(
    client, django_capture_on_commit_callbacks
):
    person("kpps-labangka", "kpps", LABANGKA_TPS)
    token = api_token_create(username="kpps-labangka")
    data = page_bytes()
    with django_capture_on_commit_callbacks() as tasks_sent:
        response = post(client, token, page_file(data))
    assert response.status_code == 201
    upload = upload_of()
    assert response.json() == {
        "id": upload.pk,
        "tps": LABANGKA_TPS,
        "contest": "pkwkk",
        "status": "queued",
        "sha256": sha256(data),
    }
    assert upload.status == Status.QUEUED and upload.source == Source.KPPS
    assert len(tasks_sent) == 1
    event = upload.events.get()
    assert (event.action, event.old_status, event.new_status) == ("received", "missing", "queued")
    assert (event.actor.username, event.actor_role) == ("kpps-labangka", "kpps")


def test_a_new_document_costs_a_fixed_handful_of_queries(
    client, staff_token, django_assert_num_queries
):
    # The first prepares the transition's statement on this connection; the second is counted.
    assert post(client, staff_token, page_file(), tps=PENAJAM_TPS).status_code == 201
    # The token with its user and profile; whether the upload exists (before any page is
    # read); in the transaction (a savepoint inside the test's): the upload locked, with what
    # the checks ask of other documents, the document with its pages, and the transition. The
    # receipt's upload is the locked one as the transition left it, not read again.
    with django_assert_num_queries(7):
        assert post(client, staff_token, page_file()).status_code == 201


def assert_as_stored(receipt) -> None:
    stored = Upload.objects.select_related("tps", "contest").get(pk=receipt.upload.pk)
    columns = [field.attname for field in Upload._meta.concrete_fields]
    assert [getattr(receipt.upload, name) for name in columns] == [
        getattr(stored, name) for name in columns
    ]
    assert (receipt.upload.tps, receipt.upload.contest) == (stored.tps, stored.contest)
    assert receipt.upload.document == receipt.document == stored.document


@pytest.mark.parametrize("versions", [1, 2])
def test_the_receipts_upload_is_the_upload_as_stored(kpu_staff, versions):
    for _ in range(versions):
        receipt = upload_receive(
            tps_code=LABANGKA_TPS, kind="pkwkk", files=[page_file()], user=kpu_staff
        )
    assert_as_stored(receipt)


def test_the_receipt_of_a_published_uploads_replacement_is_the_upload_as_stored(kpu_staff):
    first = upload_receive(tps_code=LABANGKA_TPS, kind="pkwkk", files=[page_file()], user=kpu_staff)
    upload_mark_published(upload_id=first.upload.pk, images=["https://example.test/a.jpg"])
    receipt = upload_receive(
        tps_code=LABANGKA_TPS,
        kind="pkwkk",
        files=[page_file()],
        user=kpu_staff,
        intent=Intent(reason="the first photo was of the wrong sheet"),
    )
    assert receipt.upload.status == Status.QUEUED
    assert receipt.upload.public_images == ["https://example.test/a.jpg"]
    assert_as_stored(receipt)


def test_a_page_field_left_to_its_database_default_is_written_as_default(kpu_staff):
    upload = upload_of()
    document = Document(upload=upload, sha256="a" * 64, source=Source.PPK, uploaded_by=kpu_staff)
    page = Page(document=document, number=1, file="x.jpg", sha256="b" * 64, size=1)
    page.content_type = "image/jpeg"  # original_sha256 and the rest left to their db_default
    _document_insert(document, [page])
    stored = Page.objects.get(document_id=document.pk)
    assert (stored.original_sha256, stored.original_taken_at, stored.original_location) == (
        "",
        "",
        "",
    )
    assert Document.objects.get(pk=document.pk).reason == ""


def test_the_same_content_again_answers_200_with_the_same_body_and_sends_nothing(
    client, staff_token, django_capture_on_commit_callbacks
):
    data = page_bytes()
    first = post(client, staff_token, page_file(data))
    with django_capture_on_commit_callbacks() as tasks_sent:
        again = post(client, staff_token, page_file(data, name="other-name.jpg"))
    assert again.status_code == 200
    assert again.json() == first.json()
    assert Document.objects.count() == 1 and tasks_sent == []


def test_an_idempotency_key_reused_for_other_content_is_a_conflict(client, staff_token):
    post(client, staff_token, page_file(), key="kpps-42")
    response = post(client, staff_token, page_file(), key="kpps-42")
    assert response.status_code == 409
    assert "kpps-42" in response.json()["error"]
    assert Document.objects.count() == 1


def test_pages_of_several_types_make_one_document_hashed_in_page_order(client, staff_token):
    pages = [page_bytes(), page_bytes(PNG_HEAD), page_bytes(PDF_HEAD)]
    response = post(client, staff_token, *(page_file(p, name=f"p{i}") for i, p in enumerate(pages)))
    assert response.status_code == 201
    assert response.json()["sha256"] == sha256(*pages)
    stored = list(upload_of().document.pages.values_list("number", "content_type", "size"))
    assert stored == [(1, "image/jpeg", 2048), (2, "image/png", 2048), (3, "application/pdf", 2048)]


@pytest.mark.parametrize(
    ("fields", "files", "message"),
    [
        ({"tps": "6409032002999"}, "jpeg", "no TPS with code 6409032002999"),
        ({"tps": "64090320020"}, "jpeg", "expected a 13-digit TPS code"),
        ({"contest": "ppwp"}, "jpeg", "ppwp is not open at TPS 6409032002001"),
        ({"contest": "dprd"}, "jpeg", "unknown 'dprd'"),
        ({}, "none", "no file"),
        ({}, "empty", "page 1 (c-hasil.jpg): the file is empty"),
        ({}, "text", "page 1 (c-hasil.jpg): not a JPEG, PNG or PDF"),
    ],
)
def test_bad_input_is_refused_with_400_saying_what_and_nothing_is_written(
    client, staff_token, fields, files, message
):
    chosen = {
        "jpeg": [page_file()],
        "none": [],
        "empty": [page_file(b"")],
        "text": [page_file(b"TPS 001 suara sah 180")],
    }[files]
    response = post(client, staff_token, *chosen, **fields)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert nothing_written()


def test_a_page_over_the_size_limit_is_refused(client, staff_token, settings):
    settings.UPLOAD_MAX_PAGE_BYTES = 1000
    response = post(client, staff_token, page_file(page_bytes(size=1001)))
    assert response.status_code == 400
    assert "1001 bytes, more than the 1000 allowed" in response.json()["error"]
    assert nothing_written()


def test_too_many_pages_are_refused(client, staff_token, settings):
    settings.UPLOAD_MAX_PAGES = 2
    response = post(client, staff_token, page_file(), page_file(), page_file())
    assert response.status_code == 400
    assert "too many pages: 3, at most 2" in response.json()["error"]
    assert nothing_written()


def test_a_bad_second_page_refuses_the_whole_document(client, staff_token):
    response = post(client, staff_token, page_file(), page_file(b"<html>", name="p2.jpg"))
    assert response.status_code == 400
    assert "page 2 (p2.jpg)" in response.json()["error"]
    assert nothing_written()


@pytest.mark.parametrize("header", [None, "Token wrong-key", "Bearer x", "Token "])
def test_without_a_valid_token_the_answer_is_401(client, header):
    headers = {"Authorization": header} if header else {}
    response = client.post(
        "/api/uploads/", {"tps": LABANGKA_TPS, "contest": "pkwkk"}, headers=headers
    )
    assert response.status_code == 401
    assert "Token" in response.json()["error"]
    assert response["WWW-Authenticate"].startswith("Token")


def test_a_revoked_token_and_the_token_of_a_deactivated_user_are_refused_401(client):
    person("kpu", "staff")
    person("kpu-left", "staff")
    revoked, deactivated = api_token_create(username="kpu"), api_token_create(username="kpu-left")
    ApiToken.objects.filter(user__username="kpu").update(revoked_at=timezone.now())
    get_user_model().objects.filter(username="kpu-left").update(is_active=False)
    assert post(client, revoked, page_file()).status_code == 401
    assert post(client, deactivated, page_file()).status_code == 401
    assert nothing_written()


def test_the_token_of_a_user_without_a_profile_uploads_nowhere(client):
    get_user_model().objects.create_user("no-profile")
    response = post(client, api_token_create(username="no-profile"), page_file())
    assert response.status_code == 403
    assert nothing_written()


def test_the_ppk_of_babulu_uploads_in_babulu_but_not_in_penajam(client, babulu_token):
    assert post(client, babulu_token, page_file()).status_code == 201
    outside = post(client, babulu_token, page_file(), tps=PENAJAM_TPS)
    assert outside.status_code == 403
    assert "outside your region" in outside.json()["error"]
    assert upload_of(PENAJAM_TPS).status == Status.MISSING


def test_a_different_document_for_a_published_upload_is_a_conflict(client, staff_token):
    post(client, staff_token, page_file())
    upload_mark_published(upload_id=upload_of().pk, images=["https://example.test/a.jpg"])
    response = post(client, staff_token, page_file())
    assert response.status_code == 409
    assert "already published" in response.json()["error"]
    assert Document.objects.count() == 1


def test_a_replacement_before_publication_keeps_the_old_document(client, staff_token):
    first = post(client, staff_token, page_file()).json()
    second = post(client, staff_token, page_file()).json()
    upload = upload_of()
    assert second["sha256"] != first["sha256"] and upload.document.sha256 == second["sha256"]
    assert list(upload.documents.values_list("sha256", flat=True)) == [
        first["sha256"],
        second["sha256"],
    ]
    assert list(upload.events.values_list("action", flat=True)) == ["received", "replaced"]


def test_api_token_prints_a_key_that_authenticates(client):
    person("kpu", "staff")
    out = StringIO()
    call_command("api_token", "kpu", stdout=out)
    key = out.getvalue().strip()
    assert len(key) >= 40
    assert post(client, key, page_file()).status_code == 201


def test_api_token_for_an_unknown_user_says_so():
    with pytest.raises(CommandError, match="no user named 'nobody'"):
        call_command("api_token", "nobody")


def test_the_upload_form_asks_for_a_login(client):
    response = client.get("/unggah/")
    assert response.status_code == 302 and response["Location"].startswith("/masuk/?next=")


def test_the_upload_pages_service_worker_is_a_script_naming_the_pages_files(client):
    for language, path in (("id", "/unggah/sw.js"), ("en", "/en/unggah/sw.js")):
        response = client.get(path)
        assert response.status_code == 200, language
        assert response["Content-Type"] == "text/javascript; charset=utf-8"
        assert response["Cache-Control"] == "no-cache"
        assert not response.cookies
        script = response.content.decode()
        for name in ("/static/js/unggah.js", "/static/vendor/tus-js-client/tus.min.js"):
            assert f'"{name}"' in script


def test_the_page_lets_its_photos_show_from_the_phone_and_nothing_else_more(client):
    client.force_login(person("kpu", "staff", password="x"))
    policy = client.get("/unggah/")["Content-Security-Policy"]
    assert "img-src 'self' blob:" in policy
    assert "script-src 'self';" in policy and "connect-src 'self';" in policy


def test_a_person_uploads_through_the_form_and_sees_the_hash(client):
    user = person("kpu", "staff", password="x")
    client.force_login(user)
    data = page_bytes()
    response = client.post(
        "/unggah/", {"tps": "64.09.03.2002.001", "contest": "pkwkk", "file": [page_file(data)]}
    )
    assert response.status_code == 200
    assert sha256(data) in response.text
    assert upload_of().status == Status.QUEUED


def test_the_form_shows_the_reason_for_a_refusal(client):
    user = person("kpu", "staff", password="x")
    client.force_login(user)
    response = client.post(
        "/unggah/", {"tps": LABANGKA_TPS, "contest": "pkwkk", "file": [page_file(b"GIF89a")]}
    )
    assert response.status_code == 400
    # In the page's language: Indonesian by default.
    assert "bukan berkas JPEG, PNG atau PDF (dinilai dari isinya)" in response.text
