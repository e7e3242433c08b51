"""Intake under abuse: replacement floods, rate limits, and what a token outside its region learns.

One in-region token could post alternating documents to one TPS without end, each stored and
delivered again; an out-of-region token was told "not a JPEG" before 403, and unknown codes apart
from existing ones.
"""

import pytest
from django.test import override_settings

from accounts.services import api_token_create
from tests.documents import page_bytes, page_file
from tests.nginx import free_port
from tests.world import LABANGKA_TPS, person
from uploads import limits
from uploads.models import Document, Status, Upload, UploadEvent

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("small_world")]

PENAJAM_TPS = "6409011011001"


@pytest.fixture
def staff_token():
    person("kpu", "staff")
    return api_token_create(username="kpu")


@pytest.fixture
def babulu_token():
    person("ppk-babulu", "ppk", "640903")
    return api_token_create(username="ppk-babulu")


def post(client, token, data: bytes | None = None, tps=LABANGKA_TPS, **headers):
    files = [page_file(data if data is not None else page_bytes())]
    return client.post(
        "/api/uploads/",
        {"tps": tps, "contest": "pkwkk", "file": files},
        headers={"Authorization": f"Token {token}", **headers},
    )


def documents_of(tps=LABANGKA_TPS) -> int:
    return Document.objects.filter(upload__tps_id=tps).count()


# --- Replacement floods


def test_versions_beyond_the_cap_are_refused_and_the_last_one_stays(
    client, staff_token, settings, django_capture_on_commit_callbacks
):
    settings.UPLOAD_MAX_DOCUMENTS = 3
    sent = [post(client, staff_token).json()["sha256"] for _ in range(3)]
    with django_capture_on_commit_callbacks() as tasks_sent:
        refused = post(client, staff_token)
    assert refused.status_code == 409
    assert refused.json()["error"] == (
        f"TPS {LABANGKA_TPS} pkwkk already has 3 versions of its document, the most allowed; "
        "the current one stays and is delivered"
    )
    upload = Upload.objects.get(tps_id=LABANGKA_TPS, contest__kind="pkwkk")
    assert documents_of() == 3 and upload.document.sha256 == sent[-1] and tasks_sent == []
    # The current one sent again is still the same answer as ever.
    assert post(client, staff_token, upload.document.pages.get().file.read()).status_code == 200


def test_an_earlier_version_sent_again_stores_and_delivers_nothing_and_says_why(
    client, staff_token, django_capture_on_commit_callbacks
):
    first, second = page_bytes(), page_bytes()
    a = post(client, staff_token, first).json()["sha256"]
    b = post(client, staff_token, second).json()["sha256"]
    with django_capture_on_commit_callbacks() as tasks_sent:
        again = post(client, staff_token, first)
    assert again.status_code == 409
    assert again.json()["error"] == (
        f"this document (SHA-256 {a}) was sent for TPS {LABANGKA_TPS} pkwkk before and was "
        f"replaced by another one (SHA-256 {b}), which stays the current one; an earlier "
        "version cannot be made current again"
    )
    upload = Upload.objects.get(tps_id=LABANGKA_TPS, contest__kind="pkwkk")
    assert upload.document.sha256 == b and documents_of() == 2 and tasks_sent == []
    assert list(upload.events.values_list("action", flat=True)) == ["received", "replaced"]


def test_a_retried_request_for_an_earlier_version_gets_its_own_answer_again(client, staff_token):
    first = page_bytes()
    original = post(client, staff_token, first, **{"Idempotency-Key": "kpps-1"})
    post(client, staff_token)
    retried = post(client, staff_token, first, **{"Idempotency-Key": "kpps-1"})
    assert retried.status_code == 200
    assert retried.json()["sha256"] == original.json()["sha256"]
    assert documents_of() == 2


# --- Rate limits


def test_a_user_over_the_limit_gets_429_with_retry_after_and_others_go_on(
    client, staff_token, babulu_token, settings
):
    settings.UPLOAD_RATE_PER_USER = 2
    assert [post(client, staff_token).status_code for _ in range(2)] == [201, 201]
    limited = post(client, staff_token, tps=PENAJAM_TPS)
    assert limited.status_code == 429
    assert 1 <= int(limited["Retry-After"]) <= settings.UPLOAD_RATE_WINDOW_SECONDS
    assert limited.json()["error"] == f"too many uploads; try again in {limited['Retry-After']} s"
    assert Upload.objects.get(tps_id=PENAJAM_TPS, contest__kind="pkwkk").status == Status.MISSING
    # A second token of the same user shares the limit; another user does not.
    assert post(client, api_token_create(username="kpu"), tps=PENAJAM_TPS).status_code == 429
    assert post(client, babulu_token).status_code == 201


def test_an_address_behind_the_proxy_is_counted_by_what_the_proxy_says(
    client, staff_token, settings
):
    settings.UPLOAD_RATE_PER_ADDRESS = 1
    via_proxy = {"X-Forwarded-For": "10.9.9.9, 203.0.113.7"}  # nginx appended 203.0.113.7
    assert post(client, staff_token, **via_proxy).status_code == 201
    assert post(client, staff_token, **via_proxy).status_code == 429
    other = {"X-Forwarded-For": "203.0.113.8"}
    assert post(client, staff_token, **other).status_code == 201


def test_a_client_not_behind_the_proxy_cannot_escape_its_limit_by_forging_the_header(
    client, staff_token, settings
):
    settings.UPLOAD_RATE_PER_ADDRESS = 1
    outsider = {"REMOTE_ADDR": "198.51.100.20"}
    first = client.post("/api/uploads/", {}, headers={"X-Forwarded-For": "1.1.1.1"}, **outsider)
    second = client.post("/api/uploads/", {}, headers={"X-Forwarded-For": "2.2.2.2"}, **outsider)
    # Attempts without a valid token count too.
    assert (first.status_code, second.status_code) == (401, 429)


def test_the_upload_form_is_limited_as_the_api_is(client, settings):
    settings.UPLOAD_RATE_PER_USER = 1
    client.force_login(person("kpu", "staff"))
    form = {"tps": LABANGKA_TPS, "contest": "pkwkk"}
    assert client.post("/en/unggah/", {**form, "file": [page_file()]}).status_code == 200
    limited = client.post("/en/unggah/", {**form, "file": [page_file()]})
    assert limited.status_code == 429 and int(limited["Retry-After"]) >= 1
    assert "Too many uploads from you or your network just now" in limited.text
    assert documents_of() == 1


def test_with_redis_unreachable_the_limits_fail_open_and_intake_answers_201(
    client, staff_token, settings
):
    settings.UPLOAD_RATE_PER_USER = 1
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"):
        codes = [
            post(client, staff_token, tps=tps).status_code for tps in (LABANGKA_TPS, PENAJAM_TPS)
        ]
    assert codes == [201, 201]
    assert limits.intake_rate_check(user_id=1) is None  # back on the test Redis: counting again


# --- Scope before content


def test_a_token_outside_its_region_gets_403_before_any_page_is_read(client, babulu_token):
    garbage = post(client, babulu_token, b"not a document at all", tps=PENAJAM_TPS)
    assert garbage.status_code == 403
    assert garbage.json() == {
        "error": f"TPS {PENAJAM_TPS} is outside your region",
        "pesan": f"TPS {PENAJAM_TPS} berada di luar wilayah Anda",
    }


@pytest.mark.parametrize("tps", ["6409011011999", "6401011011001", "9999999999999"])
def test_outside_its_region_an_unknown_tps_reads_as_an_existing_one(client, babulu_token, tps):
    unknown = post(client, babulu_token, tps=tps)
    existing = post(client, babulu_token, tps=PENAJAM_TPS)
    assert unknown.status_code == existing.status_code == 403
    assert unknown.json()["error"].replace(tps, "X") == existing.json()["error"].replace(
        PENAJAM_TPS, "X"
    )


def test_inside_its_region_an_unknown_tps_is_named_before_any_page_is_read(client, babulu_token):
    response = post(client, babulu_token, b"not a document", tps="6409032002999")
    assert response.status_code == 400
    assert response.json() == {
        "error": "tps: no TPS with code 6409032002999",
        "pesan": "tps: tidak ada TPS dengan kode 6409032002999",
    }
    assert not UploadEvent.objects.exists()
