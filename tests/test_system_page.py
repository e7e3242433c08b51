"""The system page: every part with its light and threshold, for staff, live, at a fixed cost;
red when the worker stops and green when it returns (real processes)."""

import datetime
import os
import re
import signal
import sys
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from sirekap_tracker.celery import app
from sirekap_tracker.health import BEAT_KEY, record_worker_heartbeat, redis_client
from tests.conftest import child_env, wait_until
from tests.documents import page_file
from tests.world import babulu_tps, text
from uploads import counters
from uploads.services.intake import upload_receive

SYSTEM = "/dashboard/sistem/"


@pytest.fixture
def staff_client(client, kpu_staff):
    client.force_login(kpu_staff)
    return client


def rows(response) -> dict[str, tuple[str, str, str]]:
    """Each row as a person reads it: what -> (value, light, threshold)."""
    found = re.findall(
        r'<tr class="row-\w+">\s*<th scope="row">(.*?)</th>\s*<td>(.*?)</td>\s*'
        r'<td><span class="light light-\w+">(.*?)</span></td>\s*<td class="muted">(.*?)</td>',
        response.content.decode(),
        flags=re.S,
    )
    return {
        what.strip(): (value.strip(), light, threshold) for what, value, light, threshold in found
    }


# --- Who may see it


def test_a_visitor_is_sent_to_log_in_and_a_user_who_is_not_staff_is_refused(client, db):
    response = client.get(SYSTEM)
    assert response.status_code == 302 and response["Location"].startswith("/masuk/?next=")
    client.force_login(get_user_model().objects.create_user("kpps", password="x"))
    assert client.get(SYSTEM).status_code == 403


# --- What it says, in Indonesian first


def test_without_worker_and_beat_the_page_is_red_and_says_why_in_indonesian(staff_client, db):
    page = rows(staff_client.get(SYSTEM))
    assert page["Antrean celery: pekerja yang mengambilnya"] == (
        "0 pekerja",
        "merah",
        "merah bila tidak ada",
    )
    assert page["Beat (penjadwal)"] == (
        "belum pernah berjalan",
        "merah",
        "kuning ≥ 15 dtk, merah ≥ 30 dtk",
    )
    assert "Ada yang salah: lihat baris merah." in text(staff_client.get(SYSTEM))
    english = rows(staff_client.get("/en" + SYSTEM))
    assert english["Queue celery: workers taking it"] == ("0 workers", "red", "red when none")
    assert english["Beat (the scheduler)"][1:] == ("red", "amber ≥ 15 s, red ≥ 30 s")


def test_each_value_is_judged_against_the_threshold_written_beside_it(
    staff_client, ppu, kpu_staff, time_machine
):
    now = timezone.now()
    time_machine.move_to(now - datetime.timedelta(minutes=3), tick=False)
    upload_receive(tps_code=babulu_tps(1)[0], kind="pkwkk", files=[page_file()], user=kpu_staff)
    time_machine.move_to(now, tick=False)
    record_worker_heartbeat("celery@web-1", ["celery", "snapshot"])
    redis_client().set(BEAT_KEY, now.timestamp() - 20)
    # 1,200 task messages in the broker's queue: one sent, and 1,199 copies of it.
    app.send_task("sirekap_tracker.health.beat_heartbeat")
    message = redis_client().lindex("celery", 0)
    redis_client().rpush("celery", *[message] * 1_199)
    for outcome in ["accepted"] * 3 + ["transient"]:
        counters.delivery_count(outcome=outcome)
    page = rows(staff_client.get("/en" + SYSTEM))
    assert page["Queue celery: workers taking it"] == (
        "1 worker: celery@web-1",
        "green",
        "red when none",
    )
    assert page["Beat (the scheduler)"] == (
        "heartbeat 20 s ago",
        "amber",
        "amber ≥ 15 s, red ≥ 30 s",
    )
    assert page["Queue celery: messages waiting"] == (
        "1,200",
        "amber",
        "amber ≥ 1,000, red ≥ 10,000",
    )
    assert page["Oldest queued upload"] == ("3 min", "amber", "amber ≥ 60 s, red ≥ 5 min")
    assert page["Oldest retrying upload"] == ("none", "green", "amber ≥ 15 min, red ≥ 30 min")
    assert page["Failed deliveries, last 5 minutes"] == (
        "1 of 4 attempts failed (25.0%)",
        "amber",
        "amber ≥ 10.0%, red ≥ 50.0%",
    )
    assert page["Delivered, last 60 minutes"][1] == "green"
    # In Indonesian, with its decimal comma and thousands dot.
    indonesian = rows(staff_client.get(SYSTEM))
    assert indonesian["Antrean celery: pesan menunggu"][0] == "1.200"
    assert indonesian["Pengiriman gagal, 5 menit terakhir"][0] == "1 dari 4 percobaan gagal (25,0%)"


def test_the_page_costs_a_fixed_number_of_queries(staff_client, ppu, kpu_staff):
    staff_client.get(SYSTEM)
    with CaptureQueriesContext(connection) as few:
        staff_client.get(SYSTEM)
    for tps in babulu_tps(20):
        upload_receive(tps_code=tps, kind="pkwkk", files=[page_file()], user=kpu_staff)
    for worker in range(20):
        record_worker_heartbeat(f"celery@host-{worker}", ["celery"])
    with CaptureQueriesContext(connection) as many:
        staff_client.get(SYSTEM)
    # The session, its user with their role, SELECT 1, the oldest waiting uploads.
    assert len(few) == len(many) == 4, [query["sql"] for query in many]


def test_the_live_part_is_polled_and_answers_304_while_nothing_changed(
    staff_client, db, time_machine
):
    page = staff_client.get(SYSTEM)
    assert 'data-live hx-get="/dashboard/sistem/"' in page.content.decode()
    assert "<html" in page.content.decode()
    part = staff_client.get(SYSTEM, headers={"HX-Request": "true"})
    assert "<html" not in part.content.decode() and 'id="live"' in part.content.decode()
    assert part["Vary"] == "HX-Request, Cookie"
    assert part["ETag"] != page["ETag"]

    # Ages are shown to the second: with the clock held, two polls find the same page however
    # long a busy machine takes to answer them.
    time_machine.move_to(timezone.now(), tick=False)

    def unchanged() -> bool:
        etag = staff_client.get(SYSTEM, headers={"HX-Request": "true"})["ETag"]
        again = staff_client.get(SYSTEM, headers={"HX-Request": "true", "If-None-Match": etag})
        return again.status_code == 304 and not again.content

    wait_until(unchanged, timeout=20)
    record_worker_heartbeat("celery@web-1", ["celery"])
    changed = staff_client.get(
        SYSTEM, headers={"HX-Request": "true", "If-None-Match": part["ETag"]}
    )
    assert changed.status_code == 200


# --- With real processes


def test_the_page_turns_red_when_the_worker_stops_and_green_when_it_returns(
    client, kpu_staff, start_process, settings
):
    settings.HEARTBEAT_STALE_AFTER_SECONDS = 3
    client.force_login(kpu_staff)
    name = f"system-{uuid.uuid4().hex[:8]}@%h"
    env = child_env(HEARTBEAT_SECONDS="1")

    def start_worker():
        return start_process(
            [sys.executable, "-m", "celery", "--app", "sirekap_tracker", "worker",
             "--queues", "celery,snapshot", "--concurrency", "1", "--hostname", name,
             "--without-mingle", "--without-gossip"],
            name="worker", env=env,
        )  # fmt: skip

    def light_of_queue(queue: str) -> str:
        return rows(client.get("/en" + SYSTEM))[f"Queue {queue}: workers taking it"][1]

    worker = start_worker()
    wait_until(lambda: light_of_queue("celery") == light_of_queue("snapshot") == "green", 60)
    # Killed: no goodbye, its heartbeat just stops.
    os.killpg(worker.process.pid, signal.SIGKILL)
    worker.process.wait()
    wait_until(lambda: light_of_queue("celery") == "red", timeout=15)
    page = rows(client.get("/en" + SYSTEM))
    gone = next(row for what, row in page.items() if what.startswith("Worker system-"))
    assert gone[1] == "red"
    worker = start_worker()
    wait_until(lambda: light_of_queue("celery") == light_of_queue("snapshot") == "green", 60)
    os.killpg(worker.process.pid, signal.SIGKILL)  # done: no warm shutdown to wait for


def test_the_dashboard_links_to_the_system_page(staff_client, ppu):
    page = staff_client.get("/dashboard/pkwkk/6409/").content.decode()
    assert '<a href="/dashboard/sistem/">Status sistem</a>' in page
    assert (
        '<a href="/en/dashboard/sistem/">System status</a>'
        in staff_client.get("/en/dashboard/pkwkk/6409/").content.decode()
    )
