"""Roles and scope, the PPK work queue and its actions (page, HTMX and API), and the audit: what
a PPK operator of Babulu and the KPU staff above them do on the night."""

import csv
import html
import io
import re
import threading
from collections import Counter

import pytest
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.utils import timezone

from accounts.models import AccessEvent, AccessKind
from accounts.services import api_token_create
from tests.documents import page_bytes, page_file
from tests.world import (
    BABULU,
    LABANGKA,
    LABANGKA_TPS,
    PPU,
    SEPAKU,
    SEPAKU_TPS,
    log_in,
    move,
    person,
    text,
    text_of,
)
from uploads.models import Action, Status, StuckReason, Upload, UploadEvent
from uploads.services.actions import ActionConflict, upload_act
from uploads.services.intake import upload_receive
from uploads.services.stuck import upload_mark_stuck
from uploads.services.transitions import upload_transition_many

TPS_PAGE = f"/en/dashboard/pkwkk/{LABANGKA_TPS}/"
ACT = f"/en/dashboard/pkwkk/{LABANGKA_TPS}/aksi/"


@pytest.fixture
def people(ppu):
    """One user of each role, each with a token: national admin, staff of the provinsi and of
    the kabupaten, the PPK operators of Babulu and Sepaku, the KPPS of the Labangka TPS."""
    made = {
        "admin": person("admin", "admin"),
        "staff-64": person("staff-64", "staff", "64"),
        "staff-ppu": person("staff-ppu", "staff", PPU),
        "ppk-babulu": person("ppk-babulu", "ppk", BABULU),
        "ppk-sepaku": person("ppk-sepaku", "ppk", SEPAKU),
        "kpps-labangka": person("kpps-labangka", "kpps", LABANGKA_TPS),
    }
    return made


def logged_in(user) -> Client:
    """A client logged in as the user; an admin's session has given its second factor too."""
    client = Client()
    log_in(client, user)
    return client


def upload_of(tps: str = LABANGKA_TPS, kind: str = "pkwkk") -> Upload:
    return Upload.objects.select_related("taken_by").get(tps_id=tps, contest__kind=kind)


def stuck() -> Upload:
    """The Labangka TPS uploaded by its KPPS, then flagged stuck by the system ("server queue"),
    as the night had it."""
    kpps = get_user_model().objects.filter(username="kpps-labangka").first()
    kpps = kpps or person("kpps-labangka", "kpps", LABANGKA_TPS)
    upload_receive(tps_code=LABANGKA_TPS, kind="pkwkk", files=[page_file()], user=kpps)
    move(LABANGKA_TPS, Status.DELIVERED)
    assert upload_mark_stuck(upload_id=upload_of().pk, reason=StuckReason.SERVER_QUEUE)
    return upload_of()


# --- Who may see and do what: every role, in and out of its region


def outcomes(user) -> dict[str, int]:
    """What each page and action answers the user (HTTP status, redirects not followed)."""
    client = logged_in(user)
    token = {"Authorization": f"Token {api_token_create(username=user.username)}"}
    page = upload_of().document.pages.first() if upload_of().document else None
    return {
        "dashboard Babulu": client.get(f"/dashboard/pkwkk/{BABULU}/").status_code,
        "dashboard Sepaku": client.get(f"/dashboard/pkwkk/{SEPAKU}/").status_code,
        "TPS Labangka": client.get(f"/dashboard/pkwkk/{LABANGKA_TPS}/").status_code,
        "TPS Sepaku": client.get(f"/dashboard/pkwkk/{SEPAKU_TPS}/").status_code,
        "page of Labangka": client.get(f"/dokumen/halaman/{page.pk}/").status_code,
        "work queue": client.get("/ppk/").status_code,
        "work queue Sepaku": client.get(f"/ppk/{SEPAKU}/").status_code,
        "note Labangka": client.post(
            f"/dashboard/pkwkk/{LABANGKA_TPS}/aksi/", {"action": "note", "note": "cek"}
        ).status_code,
        "note Sepaku": client.post(
            f"/dashboard/pkwkk/{SEPAKU_TPS}/aksi/", {"action": "note", "note": "cek"}
        ).status_code,
        "API note Labangka": client.post(
            f"/api/uploads/pkwkk/{LABANGKA_TPS}/actions/",
            {"action": "note", "note": "cek"},
            content_type="application/json",
            headers=token,
        ).status_code,
        "API note Sepaku": client.post(
            f"/api/uploads/pkwkk/{SEPAKU_TPS}/actions/",
            {"action": "note", "note": "cek"},
            content_type="application/json",
            headers=token,
        ).status_code,
        "upload form": client.get("/unggah/").status_code,
        "upload Labangka": client.post(
            "/api/uploads/",
            {"tps": LABANGKA_TPS, "contest": "pkwkp", "file": [page_file()]},
            headers=token,
        ).status_code,
        "upload Sepaku": client.post(
            "/api/uploads/",
            {"tps": SEPAKU_TPS, "contest": "pkwkp", "file": [page_file()]},
            headers=token,
        ).status_code,
        "audit": client.get("/audit/").status_code,
        "audit CSV": client.get("/audit/csv").status_code,
        "system": client.get("/dashboard/sistem/").status_code,
    }


# Reads out of the region answer 404 and say nothing of what is there; actions out of it 403.
# The plain-form actions answer with a redirect to the TPS page (302); uploads 201 (new).
EVERYWHERE = {
    "dashboard Babulu": 200, "dashboard Sepaku": 200, "TPS Labangka": 200, "TPS Sepaku": 200,
    "page of Labangka": 200, "work queue": 200, "work queue Sepaku": 200,
    "note Labangka": 302, "note Sepaku": 302, "API note Labangka": 200, "API note Sepaku": 200,
    "upload form": 200, "upload Labangka": 201, "upload Sepaku": 201,
    "audit": 200, "audit CSV": 200, "system": 200,
}  # fmt: skip
PPK_BABULU = EVERYWHERE | {
    "dashboard Sepaku": 404, "TPS Sepaku": 404, "work queue Sepaku": 404,
    "note Sepaku": 403, "API note Sepaku": 403, "upload Sepaku": 403,
    "audit": 403, "audit CSV": 403, "system": 403,
}  # fmt: skip
PPK_SEPAKU = EVERYWHERE | {
    "dashboard Babulu": 404, "TPS Labangka": 404, "page of Labangka": 404,
    "note Labangka": 403, "API note Labangka": 403, "upload Labangka": 403,
    "audit": 403, "audit CSV": 403, "system": 403,
}  # fmt: skip
# A KPPS uploads for their TPS; the form is theirs, nothing else.
KPPS = dict.fromkeys(EVERYWHERE, 403) | {"upload form": 200, "upload Labangka": 201}


@pytest.mark.parametrize(
    "role, expected",
    [
        ("admin", EVERYWHERE),
        ("staff-64", EVERYWHERE),
        ("staff-ppu", EVERYWHERE),
        ("ppk-babulu", PPK_BABULU),
        ("ppk-sepaku", PPK_SEPAKU),
        ("kpps-labangka", KPPS),
    ],
)
def test_each_role_sees_and_does_what_its_region_allows(people, role, expected):
    upload_receive(
        tps_code=LABANGKA_TPS, kind="pkwkk", files=[page_file()], user=people["kpps-labangka"]
    )
    assert outcomes(people[role]) == expected


def test_staff_of_another_kabupaten_see_nothing_of_ppu_and_each_refusal_is_recorded(people):
    from regions.importers import AreaRow
    from regions.services import areas_import

    areas_import(rows=[AreaRow("6408", "PASER", 2, "test")])
    other = person("staff-paser", "staff", "6408")
    client = logged_in(other)
    assert client.get(f"/dashboard/pkwkk/{BABULU}/").status_code == 404
    assert client.post(ACT, {"action": "note", "note": "x"}).status_code == 403
    assert client.get("/audit/").status_code == 200
    assert f"/dashboard/pkwkk/{BABULU}/" not in client.get("/dashboard/").text
    refusals = AccessEvent.objects.filter(user=other).exclude(kind=AccessKind.LOGIN).order_by("id")
    assert [(event.kind, event.path, event.area_code) for event in refusals] == [
        (AccessKind.NOT_VISIBLE, f"/dashboard/pkwkk/{BABULU}/", BABULU),
        (AccessKind.NOT_ALLOWED, ACT, LABANGKA_TPS),
    ]
    assert all(event.ip == "127.0.0.1" and event.role == "staff" for event in refusals)


def test_each_user_s_dashboard_opens_on_their_own_area(people):
    assert logged_in(people["ppk-babulu"]).get("/dashboard/")["Location"].endswith(f"/{BABULU}/")
    assert logged_in(people["staff-ppu"]).get("/dashboard/")["Location"].endswith(f"/{PPU}/")
    assert logged_in(people["kpps-labangka"]).get("/dashboard/")["Location"].endswith("/unggah/")


# --- The work queue


def test_the_work_queue_lists_what_needs_a_person_worst_first_with_counts(people, settings):
    settings.FAILING_LONG_MINUTES = 0
    stuck()
    babulu_client = logged_in(people["ppk-babulu"])
    page = babulu_client.get("/en/ppk/")
    assert page.status_code == 200
    shown = text(page)
    assert "Work queue · BABULU" in shown
    missing = Upload.objects.within(BABULU).filter(status=Status.MISSING).count()
    assert f"1 Stuck {missing} Missing after the polls closed 0 Rejected" in shown
    # The stuck one is the worst: first in the list, and where "next" goes.
    assert f'class="button" href="/en/dashboard/pkwkk/{LABANGKA_TPS}/"' in page.text
    assert "Next: TPS 001, LABANGKA →" in shown
    assert shown.index(LABANGKA_TPS) < shown.index("missing")
    assert "stuck: server queue" in shown
    # Filtered to one category, one desa, one contest.
    only = babulu_client.get(f"/en/ppk/?kategori=stuck&wilayah={LABANGKA}&pemilihan=pkwkk")
    assert LABANGKA_TPS in text(only) and only.text.count('id="work-') == 1


def test_the_work_queue_is_live_and_answers_304_while_nothing_changed(people):
    client = logged_in(people["ppk-babulu"])
    part = client.get("/ppk/", headers={"HX-Request": "true"})
    assert part.text.lstrip().startswith('<div id="live" data-live')
    again = client.get("/ppk/", headers={"HX-Request": "true", "If-None-Match": part["ETag"]})
    assert again.status_code == 304
    stuck()
    changed = client.get("/ppk/", headers={"HX-Request": "true", "If-None-Match": part["ETag"]})
    assert changed.status_code == 200 and LABANGKA_TPS in changed.text


def test_staff_wider_than_a_kabupaten_pick_one_first(people):
    page = logged_in(people["staff-64"]).get("/en/ppk/")
    assert "Pick one" in text(page) and 'href="/en/ppk/6409/"' in page.text


# --- Actions on the TPS page


def test_an_operator_takes_marks_and_notes_a_tps_and_the_history_names_them(people):
    upload = stuck()
    client = logged_in(people["ppk-babulu"])
    htmx = {"HX-Request": "true"}
    taken = client.post(ACT, {"action": "take"}, headers=htmx)
    assert taken.status_code == 200
    assert "You are on it" in text(taken) and "On it: ppk-babulu" in text(taken)
    cleared = client.post(ACT, {"action": "clear_stuck", "note": "cek ulang"}, headers=htmx)
    assert "The stuck flag is cleared" in text(cleared)
    marked = client.post(
        ACT, {"action": "mark_stuck", "reason": "network", "note": "sinyal hilang"}, headers=htmx
    )
    assert "Flagged stuck" in text(marked)
    # Without JavaScript: the same, then back to the TPS page with the outcome as a message.
    plain = client.post(ACT, {"action": "note", "note": "menelepon KPPS"})
    assert plain.status_code == 302 and plain["Location"] == TPS_PAGE
    page = client.get(TPS_PAGE)
    assert "Note added." in text(page)
    history = [
        (event.action, event.actor.username if event.actor else None, event.actor_role)
        for event in UploadEvent.objects.filter(upload=upload).order_by("id")
    ][-4:]
    assert history == [
        (Action.TAKEN, "ppk-babulu", "ppk"),
        (Action.STUCK_CLEARED, "ppk-babulu", "ppk"),
        (Action.STUCK, "ppk-babulu", "ppk"),
        (Action.NOTE, "ppk-babulu", "ppk"),
    ]
    assert "sinyal hilang" in text(page) and "menelepon KPPS" in text(page)
    assert upload_of().stuck_reason == StuckReason.NETWORK


def test_a_bad_action_is_refused_saying_why_in_the_user_s_language(people):
    stuck()
    client = logged_in(people["ppk-babulu"])
    other = client.post(
        f"/dashboard/pkwkk/{LABANGKA_TPS}/aksi/",
        {"action": "mark_stuck", "reason": "other"},
        headers={"HX-Request": "true"},
    )
    assert other.status_code == 400
    assert "perlu catatan yang menjelaskan masalahnya" in text(other)


def test_the_second_of_two_operators_is_told_who_was_first(people):
    stuck()
    first = logged_in(people["ppk-babulu"])
    second = logged_in(people["staff-ppu"])
    assert first.post(ACT, {"action": "take"}, headers={"HX-Request": "true"}).status_code == 200
    late = second.post(ACT, {"action": "take"}, headers={"HX-Request": "true"})
    assert late.status_code == 409
    assert "Nothing done: ppk-babulu was first (taken in hand," in text(late)
    assert "WITA)" in text(late)


@pytest.mark.django_db(transaction=True)
def test_two_operators_acting_at_once_cannot_both_win(ppu):
    """Two real transactions on two connections, released together."""
    a, b = person("ppk-a", "ppk", BABULU), person("ppk-b", "ppk", BABULU)
    upload = stuck_for(person("kpps-x", "kpps", LABANGKA_TPS))
    barrier = threading.Barrier(2)
    results = {}

    def clear(user):
        try:
            barrier.wait()
            upload_act(upload=upload, action="clear_stuck", actor=user, note=user.username)
            results[user.username] = "won"
        except ActionConflict as conflict:
            results[user.username] = f"lost to {conflict.event.actor.username}"
        finally:
            connection.close()

    threads = [threading.Thread(target=clear, args=(user,)) for user in (a, b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winner = next(name for name, result in results.items() if result == "won")
    loser = next(name for name in results if name != winner)
    assert results[loser] == f"lost to {winner}"
    cleared = UploadEvent.objects.filter(upload=upload, action=Action.STUCK_CLEARED)
    assert [event.actor.username for event in cleared] == [winner]


def stuck_for(kpps) -> Upload:
    upload_receive(tps_code=LABANGKA_TPS, kind="pkwkk", files=[page_file()], user=kpps)
    assert upload_mark_stuck(upload_id=upload_of().pk, reason=StuckReason.NETWORK)
    return upload_of()


def test_a_rejected_upload_is_sent_again_from_its_first_attempt(people):
    stuck()
    move(LABANGKA_TPS, Status.REJECTED)
    client = logged_in(people["ppk-babulu"])
    again = client.post(ACT, {"action": "requeue"}, headers={"HX-Request": "true"})
    assert again.status_code == 200 and "back in the queue" in text(again)
    upload = upload_of()
    assert (upload.status, upload.attempts, upload.last_error) == (Status.QUEUED, 0, "")
    twice = client.post(ACT, {"action": "requeue"}, headers={"HX-Request": "true"})
    assert twice.status_code == 409 and "ppk-babulu was first" in text(twice)


# --- The actions API


def api(user, action: str, tps: str = LABANGKA_TPS, **fields):
    token = api_token_create(username=user.username)
    return Client().post(
        f"/api/uploads/pkwkk/{tps}/actions/",
        {"action": action, **fields},
        content_type="application/json",
        headers={"Authorization": f"Token {token}"},
    )


def test_the_actions_api_answers_the_state_or_says_what_is_wrong(people):
    stuck()
    operator = people["ppk-babulu"]
    taken = api(operator, "take")
    assert taken.status_code == 200
    assert taken.json() | {"status_since": "-"} == {
        "id": upload_of().pk, "tps": LABANGKA_TPS, "contest": "pkwkk", "status": "delivered",
        "status_since": "-", "stuck": True, "stuck_reason": "server_queue", "stuck_note": "",
        "taken_by": "ppk-babulu", "attempts": 0, "last_error": "",
        "sha256": upload_of().document.sha256,
    }  # fmt: skip
    bad = api(operator, "mark_stuck", reason="hujan")
    assert bad.status_code == 400
    assert bad.json()["error"].startswith("reason: 'hujan' is not one of network, server_queue")
    assert "bukan salah satu" in bad.json()["pesan"]
    assert api(operator, "dance").status_code == 400
    assert api(operator, "note", tps=SEPAKU_TPS, note="x").status_code == 403
    late = api(people["staff-ppu"], "take")
    assert late.status_code == 409
    assert late.json()["first"]["by"] == "ppk-babulu"
    assert late.json()["upload"]["taken_by"] == "ppk-babulu"
    not_json = Client().post(
        f"/api/uploads/pkwkk/{LABANGKA_TPS}/actions/",
        "take",
        content_type="application/json",
        headers={"Authorization": f"Token {api_token_create(username='ppk-babulu')}"},
    )
    assert not_json.status_code == 400 and "not JSON" in not_json.json()["error"]
    assert Client().post(f"/api/uploads/pkwkk/{LABANGKA_TPS}/actions/").status_code == 401


# --- Uploading on a TPS's behalf


def test_an_operator_uploads_on_behalf_and_replaces_a_published_one_only_with_a_reason(people):
    operator = people["ppk-babulu"]
    client = logged_in(operator)
    form = client.get(f"/unggah/?tps={LABANGKA_TPS}&pemilihan=pkwkk")
    # The TPS of Babulu to pick from, by name or code; only the contests held there.
    assert f'<option value="{LABANGKA_TPS}">TPS 001, LABANGKA, BABULU</option>' in form.text
    assert (
        form.text.count('<option value="6409')
        == Upload.objects.within(BABULU).filter(contest__kind="pkwkk").count()
    )
    sent = client.post(
        "/en/unggah/", {"tps": LABANGKA_TPS, "contest": "pkwkk", "file": [page_file()]}
    )
    assert sent.status_code == 200 and "What happens next" in text(sent)
    upload = upload_of()
    assert (upload.source, upload.document.uploaded_by) == ("ppk", operator)
    move(LABANGKA_TPS, Status.PUBLISHED)
    again = {"tps": LABANGKA_TPS, "contest": "pkwkk"}
    refused = client.post("/unggah/", again | {"file": [page_file()]})
    assert refused.status_code == 409
    assert "sudah dipublikasikan" in text(refused)
    reason = {"reason": "foto buram, difoto ulang"}
    replaced = client.post("/unggah/", again | reason | {"file": [page_file()]})
    assert replaced.status_code == 200
    upload = upload_of()
    assert upload.status == Status.QUEUED and upload.documents.count() == 2
    event = upload.events.order_by("-id").first()
    assert event.action == Action.REPLACED and "foto buram, difoto ulang" in event.reason


def test_a_kpps_cannot_replace_a_published_document_even_with_a_reason(people):
    kpps = people["kpps-labangka"]
    upload_receive(tps_code=LABANGKA_TPS, kind="pkwkk", files=[page_file()], user=kpps)
    move(LABANGKA_TPS, Status.PUBLISHED)
    refused = logged_in(kpps).post(
        "/unggah/",
        {"tps": LABANGKA_TPS, "contest": "pkwkk", "file": [page_file()], "reason": "salah"},
    )
    assert refused.status_code == 409 and upload_of().documents.count() == 1


def test_the_same_photo_sent_for_another_tps_is_refused_naming_it(people):
    photo = page_bytes()
    labangka = "6409032002002"
    upload_receive(
        tps_code=LABANGKA_TPS, kind="pkwkk", files=[page_file(photo)], user=people["ppk-babulu"]
    )
    client = logged_in(people["ppk-babulu"])
    wrong = client.post(
        "/en/unggah/", {"tps": labangka, "contest": "pkwkk", "file": [page_file(photo)]}
    )
    assert wrong.status_code == 409
    assert f"already sent for TPS {LABANGKA_TPS} (TPS 001) pkwkk" in text(wrong)
    # A PPK operator cannot confirm it; KPU staff can, with a reason.
    confirm = {"tps": labangka, "contest": "pkwkk", "reason": "satu formulir untuk dua TPS"}
    assert client.post("/unggah/", confirm | {"file": [page_file(photo)]}).status_code == 409
    staff = logged_in(people["staff-ppu"])
    assert staff.post("/unggah/", confirm | {"file": [page_file(photo)]}).status_code == 200
    assert upload_of(labangka).status == Status.QUEUED


def test_a_document_changed_since_the_form_was_opened_is_not_replaced_unseen(people):
    client = logged_in(people["ppk-babulu"])
    upload_receive(
        tps_code=LABANGKA_TPS, kind="pkwkk", files=[page_file()], user=people["kpps-labangka"]
    )
    seen = upload_of().document.sha256
    upload_receive(
        tps_code=LABANGKA_TPS, kind="pkwkk", files=[page_file()], user=people["kpps-labangka"]
    )
    late = client.post(
        "/en/unggah/",
        {"tps": LABANGKA_TPS, "contest": "pkwkk", "file": [page_file()], "based_on": seen},
    )
    assert late.status_code == 409
    assert "got another document" in text(late) and "kpps-labangka" in text(late)


# --- The audit


def test_the_audit_lists_actions_transitions_and_refusals_of_the_region_only(people):
    upload = stuck()
    logged_in(people["ppk-babulu"]).post(ACT, {"action": "take"})
    logged_in(people["ppk-sepaku"]).post(ACT, {"action": "take"})
    staff = logged_in(people["staff-ppu"])
    page = text(staff.get("/en/audit/"))
    for line in (
        "taken in hand",
        "flagged stuck",
        "document received",
        "ppk-babulu (PPK operator)",
    ):
        assert line in page
    assert "refused: action not allowed" in page and "ppk-sepaku" in page
    only = text(staff.get("/en/audit/?pelaku=ppk-babulu&aksi=taken"))
    assert only.count("taken in hand") == 2  # the filter's option and the one row
    exported = staff.get(f"/audit/csv?wilayah={BABULU}")
    assert exported.streaming and exported["Content-Type"] == "text/csv"
    rows = list(csv.reader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert rows[0][:6] == ["time_utc", "action", "what", "area", "contest", "who"]
    actions = [row[1] for row in rows[1:]]
    assert "taken" in actions and "stuck" in actions and "received" in actions
    assert all(row[3].startswith(BABULU) or row[3] == "" for row in rows[1:])
    assert upload.pk  # the upload the rows are about


def test_older_events_and_the_csv_list_every_row_once_through_a_batch_of_one_time(
    people, time_machine, monkeypatch
):
    # The poller publishes hundreds of uploads in one statement, each event at the same time;
    # the page boundary (200 rows) and the CSV's chunks (70 rows here) fall inside such a batch,
    # with refusals at that very time too.
    monkeypatch.setattr("dashboard.audit.CSV_CHUNK_ROWS", 70)
    time_machine.move_to(timezone.now(), tick=False)
    batch = list(
        Upload.objects.filter(tps__code__startswith=PPU).select_related("contest").order_by("pk")
    )[:300]
    moved = upload_transition_many(
        upload_ids=[upload.pk for upload in batch],
        expected=(Status.MISSING,),
        new=Status.DELIVERED,
        action="delivered",
    )
    assert len(moved) == 300
    sepaku = logged_in(people["ppk-sepaku"])
    for _ in range(3):
        assert sepaku.post(ACT, {"action": "take"}).status_code == 403
    staff = logged_in(people["staff-ppu"])
    shown, url, pages = [], "/en/audit/", 0
    while url:
        page = staff.get(url).content.decode()
        shown += [_audit_line(row) for row in re.findall(r"<tr>\s*<td.*?</tr>", page, re.S)]
        older = re.search(r'<a href="(\?[^"]*)">Older events', page)
        url = "/en/audit/" + html.unescape(older[1]) if older else ""
        pages += 1
    exported = staff.get("/en/audit/csv")
    rows = list(csv.reader(io.StringIO(b"".join(exported.streaming_content).decode())))[1:]
    assert pages == 2
    assert Counter(shown) == Counter((row[2], row[3], row[4].upper()) for row in rows)
    delivered = "accepted into the server queue"
    assert Counter(line for line in shown if line[0] == delivered) == Counter(
        (delivered, upload.tps_id, upload.contest.kind.upper()) for upload in batch
    )
    assert sum(line[0].startswith("refused") for line in shown) == 3


def _audit_line(row: str) -> tuple[str, str, str]:
    """(what, where, contest) of a row of the audit page."""
    cells = [text_of(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    area, _, contest = cells[2].partition(" ")
    return cells[1], area, contest


def test_a_note_that_looks_like_a_formula_is_quoted_in_the_csv(people):
    stuck()
    api(people["ppk-babulu"], "note", note='=HYPERLINK("http://x.test")')
    exported = logged_in(people["admin"]).get("/audit/csv?aksi=note")
    rows = list(csv.reader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert rows[1][-1] == '\'=HYPERLINK("http://x.test")'


def test_a_bad_audit_filter_is_refused_saying_which(people):
    staff = logged_in(people["staff-ppu"])
    response = staff.get("/en/audit/?wilayah=6408&dari=kemarin")
    assert response.status_code == 400
    assert "Area: 6408 is not in your region." in text(response)
    assert "dari: kemarin is not a date (YYYY-MM-DD)." in text(response)
    assert staff.get("/audit/csv?aksi=hapus").status_code == 400
    for cursor in ("2026-11-27T06:00", "2026-11-27T06:00+08:00/x12", "kemarin"):
        response = staff.get("/en/audit/", {"sebelum": cursor})
        assert response.status_code == 400
        assert f"sebelum: {cursor} is not a time." in text(response)


def test_the_database_refuses_to_change_or_delete_an_event(people):
    stuck()
    logged_in(people["ppk-sepaku"]).get(f"/dashboard/pkwkk/{BABULU}/")
    upload_events = UploadEvent.objects.filter(upload__tps_id=LABANGKA_TPS)
    access_events = AccessEvent.objects.filter(user=people["ppk-sepaku"])
    for rows, change in ((upload_events, {"reason": "x"}), (access_events, {"path": "/x"})):
        assert rows.exists()
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            rows.update(**change)
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            rows.first().delete()


# --- The demo's people


def test_make_run_gives_the_demo_s_ppk_operator_and_kabupaten_staff(ppu, settings):
    from io import StringIO

    from django.core.management import call_command

    settings.SESSION_COOKIE_SECURE = False
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    out = StringIO()
    call_command("load_demo", "--accounts", stdout=out)
    lines = {line.split()[0]: line.split() for line in out.getvalue().splitlines()[-3:] if line}
    assert lines["ppk-babulu"][2:] == ["ppk", BABULU]
    assert lines["kpu-ppu"][2:] == ["staff", PPU]
    client = Client()
    logged = client.post("/masuk/", {"username": "ppk-babulu", "password": lines["ppk-babulu"][1]})
    assert logged.status_code == 302
    assert client.get("/ppk/").status_code == 200


def test_demo_accounts_are_refused_where_cookies_are_secure(ppu, settings):
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import call_command

    settings.SESSION_COOKIE_SECURE = True
    with pytest.raises(ImproperlyConfigured, match="plain-HTTP demo only"):
        call_command("load_demo", "--accounts", stdout=io.StringIO())


def test_the_admin_lists_and_deletes_no_history_outside_or_inside_the_region(people):
    from django.contrib.auth.models import Permission

    from regions.importers import AreaRow
    from regions.services import areas_import

    stuck()
    areas_import(rows=[AreaRow("6408", "PASER", 2, "test")])
    view = Permission.objects.get(codename="view_upload")
    seen = {}
    for user in (people["staff-ppu"], person("staff-paser", "staff", "6408")):
        user.user_permissions.add(view)
        listing = logged_in(user).get("/admin/uploads/upload/?q=6409032002001")
        change = f"/admin/uploads/upload/{upload_of().pk}/change/"
        seen[user.username] = listing.status_code, change in listing.text
    assert seen == {"staff-ppu": (200, True), "staff-paser": (200, False)}
    admin = logged_in(people["admin"])
    deleting = admin.post(f"/admin/uploads/upload/{upload_of().pk}/delete/", {"post": "yes"})
    assert deleting.status_code == 403 and upload_of()


def test_the_receipt_of_a_stuck_tps_says_the_flag_stays_until_it_is_published(people):
    stuck()
    sent = logged_in(people["ppk-babulu"]).post(
        "/unggah/", {"tps": LABANGKA_TPS, "contest": "pkwkk", "file": [page_file()]}
    )
    assert sent.status_code == 200
    assert "TPS ini ditandai macet (antrean server): tanda tetap ada sampai" in text(sent)
    assert upload_of().stuck and upload_of().status == Status.QUEUED
