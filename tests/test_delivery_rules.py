"""The delivery rules, by calling the services directly: leases, fencing, backoff, the sweeper."""

import datetime

import httpx
import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from tests.documents import page_file
from tests.world import LABANGKA_TPS, SEPAKU_TPS, person
from uploads import delivery as delivery_http
from uploads.models import Source, Status, StuckReason, Upload
from uploads.progress.models import COUNTED, ProgressChange
from uploads.services import delivery, intake, publication, stuck, sweeper, transitions

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ppu")]


@pytest.fixture
def queued(django_capture_on_commit_callbacks) -> Upload:
    user = person("kpps", "kpps", LABANGKA_TPS)
    with django_capture_on_commit_callbacks():
        receipt = intake.upload_receive(
            tps_code=LABANGKA_TPS, kind="pkwkk", files=[page_file()], user=user
        )
    return receipt.upload


def reload(upload: Upload) -> Upload:
    return Upload.objects.get(pk=upload.pk)


def transient(reason="HTTP 503: overloaded", **kwargs) -> delivery_http.Outcome:
    return delivery_http.Outcome("transient", reason, **kwargs)


def test_only_one_of_two_claims_on_the_same_upload_wins(queued):
    first = delivery.upload_claim(upload_id=queued.pk)
    second = delivery.upload_claim(upload_id=queued.pk)
    assert first is not None and second is None
    upload = reload(queued)
    assert upload.status == Status.SENDING and upload.attempts == 1
    assert first.idempotency_key == f"{queued.pk}:{upload.document.sha256}"


def test_a_lease_holds_the_current_documents_pages_in_order_and_its_upload(queued):
    """The lease's SQL is built once (delivery._lease_sql): the second lease, of another upload
    and a document of two pages, must be read with its own id, not the first one's."""
    first = delivery.upload_claim(upload_id=queued.pk)
    user = person("kpps-sepaku", "kpps", SEPAKU_TPS)
    pages = [page_file(), page_file(name="c-hasil-2.jpg")]
    other = intake.upload_receive(tps_code=SEPAKU_TPS, kind="pkwkk", files=pages, user=user)
    lease = delivery.upload_claim(upload_id=other.upload.pk)
    assert first is not None and lease is not None
    upload = reload(other.upload)
    expected = list(upload.document.pages.order_by("number").values_list("file", "content_type"))
    assert [(page.name, page.content_type) for page in lease.pages] == expected
    assert len(expected) == 2 and first.pages[0].name not in [name for name, _ in expected]
    assert (lease.upload_id, lease.kind, lease.tps_code, lease.sha256, lease.attempt) == (
        upload.pk,
        "pkwkk",
        SEPAKU_TPS,
        upload.document.sha256,
        1,
    )


def test_a_transition_writes_its_event_and_its_count_change_with_the_upload(queued):
    upload = reload(queued)
    event = upload.events.get()
    assert (event.action, event.old_status, event.new_status) == (
        "received",
        Status.MISSING,
        Status.QUEUED,
    )
    assert (event.actor.username, event.source) == ("kpps", Source.KPPS)
    assert event.reason == f"SHA-256 {upload.document.sha256}"
    assert event.created_at == upload.status_since
    change = ProgressChange.objects.values(*COUNTED).get()
    assert change == {**dict.fromkeys(COUNTED, 0), "missing": -1, "queued": 1}


def test_a_claim_that_loses_the_race_writes_no_event_and_no_count_change(queued):
    assert delivery.upload_claim(upload_id=queued.pk) is not None
    before = reload(queued)
    assert delivery.upload_claim(upload_id=queued.pk) is None
    after = reload(queued)
    assert (after.status_since, after.attempts) == (before.status_since, 1)
    assert list(queued.events.values_list("action", flat=True)) == ["received", "claimed"]
    assert ProgressChange.objects.count() == 2


def test_a_transition_to_the_status_it_has_writes_its_event_but_no_count_change(queued):
    since = reload(queued).status_since
    old = transitions.upload_transition(
        upload_id=queued.pk, expected=(Status.QUEUED,), new=Status.QUEUED, action="again"
    )
    assert old == Status.QUEUED
    assert reload(queued).status_since == since
    event = queued.events.get(action="again")
    assert (event.old_status, event.new_status, event.source) == (
        Status.QUEUED,
        Status.QUEUED,
        Source.SYSTEM,
    )
    assert ProgressChange.objects.count() == 1


def test_marking_an_upload_stuck_twice_writes_one_event_and_counts_it_once(queued):
    assert stuck.upload_mark_stuck(upload_id=queued.pk, reason=StuckReason.DEVICE, note="HP")
    assert not stuck.upload_mark_stuck(upload_id=queued.pk, reason=StuckReason.NETWORK)
    upload = reload(queued)
    assert (upload.status, upload.stuck, upload.stuck_reason) == (
        Status.QUEUED,
        True,
        StuckReason.DEVICE,
    )
    event = upload.events.get(action="stuck")
    assert (event.old_status, event.new_status, event.stuck_reason, event.reason) == (
        Status.QUEUED,
        Status.QUEUED,
        StuckReason.DEVICE,
        "HP",
    )
    assert sum(ProgressChange.objects.values_list("stuck", flat=True)) == 1


def test_a_published_upload_is_not_marked_stuck(queued):
    assert publication.upload_mark_published(upload_id=queued.pk, images=["https://x.test/1.jpg"])
    assert not stuck.upload_mark_stuck(upload_id=queued.pk, reason=StuckReason.OTHER)
    assert not reload(queued).stuck


def test_publication_keeps_the_source_of_a_document_received_here(queued):
    assert publication.upload_mark_published(upload_id=queued.pk, images=["https://x.test/1.jpg"])
    assert not publication.upload_mark_published(upload_id=queued.pk, images=["again"])
    upload = reload(queued)
    assert upload.source == Source.KPPS
    assert upload.events.get(action="published").source == Source.PUBLIC_SITE


# Committed: the connection is closed mid-test, and the new one must prepare its statements.
@pytest.mark.django_db(transaction=True)
def test_transitions_go_on_after_the_database_connection_is_replaced(queued):
    def again() -> str | None:
        return transitions.upload_transition(
            upload_id=queued.pk, expected=(Status.QUEUED,), new=Status.QUEUED, action="again"
        )

    assert again() == Status.QUEUED
    connection.close()
    assert again() == Status.QUEUED
    assert queued.events.filter(action="again").count() == 2


def test_an_upload_waiting_out_its_backoff_is_not_sent_early(queued):
    lease = delivery.upload_claim(upload_id=queued.pk)
    delivery.upload_record_outcome(lease=lease, outcome=transient(retry_after=60))
    assert delivery.upload_claim(upload_id=queued.pk) is None
    with time_machine.travel(timezone.now() + datetime.timedelta(seconds=61)):
        assert delivery.upload_claim(upload_id=queued.pk) is not None


def test_accepted_means_delivered_and_the_lease_is_released(queued):
    lease = delivery.upload_claim(upload_id=queued.pk)
    assert delivery.upload_record_outcome(lease=lease, outcome=delivery_http.Outcome("accepted"))
    upload = reload(queued)
    assert upload.status == Status.DELIVERED and upload.lease_token is None
    assert upload.delivered_at is not None


def test_a_worker_whose_lease_expired_cannot_overwrite_the_newer_state(queued, settings):
    settings.DELIVERY_LEASE_SECONDS = 30
    stale = delivery.upload_claim(upload_id=queued.pk)
    with time_machine.travel(timezone.now() + datetime.timedelta(seconds=31)):
        assert sweeper.uploads_sweep().leases_expired == 1
        fresh = delivery.upload_claim(upload_id=queued.pk)
        delivery.upload_record_outcome(lease=fresh, outcome=delivery_http.Outcome("accepted"))
    late = delivery.upload_record_outcome(
        lease=stale, outcome=delivery_http.Outcome("permanent", "x")
    )
    assert late is False
    assert reload(queued).status == Status.DELIVERED


def test_a_permanent_refusal_is_rejected_with_the_servers_reason_and_not_retried(queued):
    lease = delivery.upload_claim(upload_id=queued.pk)
    outcome = delivery_http.Outcome("permanent", "HTTP 422: halaman tidak terbaca")
    delivery.upload_record_outcome(lease=lease, outcome=outcome)
    upload = reload(queued)
    assert upload.status == Status.REJECTED and upload.next_attempt_at is None
    assert upload.last_error == "HTTP 422: halaman tidak terbaca"
    assert sweeper.uploads_sweep().enqueued == 0


def test_retry_after_sets_the_next_attempt(queued):
    lease = delivery.upload_claim(upload_id=queued.pk)
    before = timezone.now()
    delivery.upload_record_outcome(lease=lease, outcome=transient("HTTP 429", retry_after=40))
    wait = (reload(queued).next_attempt_at - before).total_seconds()
    assert 39 <= wait <= 41


def test_backoff_grows_with_full_jitter_up_to_the_cap(settings):
    settings.DELIVERY_BACKOFF_BASE_SECONDS = 5
    settings.DELIVERY_BACKOFF_CAP_SECONDS = 300
    settings.STUCK_AFTER_ATTEMPTS = 100
    for attempt, ceiling in [(1, 5), (2, 10), (4, 40), (7, 300), (20, 300)]:
        delays = [delivery._retry_delay(attempt, None) for _ in range(200)]
        assert min(delays) >= 0 and max(delays) <= ceiling
        assert max(delays) > ceiling / 2  # spread over the whole range, not a fixed wait


def test_after_the_threshold_the_upload_is_stuck_and_retries_at_the_cap(queued, settings):
    settings.STUCK_AFTER_ATTEMPTS = 3
    settings.DELIVERY_BACKOFF_CAP_SECONDS = 300
    for attempt in range(1, 4):
        Upload.objects.filter(pk=queued.pk).update(next_attempt_at=timezone.now())
        lease = delivery.upload_claim(upload_id=queued.pk)
        delivery.upload_record_outcome(
            lease=lease, outcome=transient("connection: refused", network=True)
        )
        assert reload(queued).stuck is (attempt == 3)
    upload = reload(queued)
    assert upload.stuck_reason == StuckReason.NETWORK and upload.status == Status.RETRYING
    wait = (upload.next_attempt_at - timezone.now()).total_seconds()
    assert 295 <= wait <= 300
    assert upload.events.filter(action="stuck").count() == 1


def test_server_errors_past_the_deadline_flag_it_stuck_in_the_server_queue(queued, settings):
    settings.STUCK_AFTER_MINUTES = 30
    with time_machine.travel(timezone.now() + datetime.timedelta(minutes=31)):
        lease = delivery.upload_claim(upload_id=queued.pk)
        delivery.upload_record_outcome(lease=lease, outcome=transient())
    assert reload(queued).stuck_reason == StuckReason.SERVER_QUEUE


def test_the_sweeper_enqueues_a_due_upload_once_until_the_grace_passes(queued, settings):
    settings.DISPATCH_GRACE_SECONDS = 60
    Upload.objects.filter(pk=queued.pk).update(dispatched_at=None)
    assert sweeper.uploads_sweep().enqueued == 1
    assert sweeper.uploads_sweep().enqueued == 0
    with time_machine.travel(timezone.now() + datetime.timedelta(seconds=61)):
        assert sweeper.uploads_sweep().enqueued == 1


def test_a_delivery_left_in_the_server_queue_too_long_is_flagged(queued, settings):
    settings.SERVER_QUEUE_STUCK_MINUTES = 60
    lease = delivery.upload_claim(upload_id=queued.pk)
    delivery.upload_record_outcome(lease=lease, outcome=delivery_http.Outcome("accepted"))
    assert sweeper.uploads_sweep().flagged_in_server_queue == 0
    with time_machine.travel(timezone.now() + datetime.timedelta(minutes=61)):
        assert sweeper.uploads_sweep().flagged_in_server_queue == 1
    upload = reload(queued)
    assert upload.stuck and upload.stuck_reason == StuckReason.SERVER_QUEUE


def test_publication_clears_the_stuck_flag(queued):
    stuck.upload_mark_stuck(upload_id=queued.pk, reason=StuckReason.NETWORK)
    publication.upload_mark_published(upload_id=queued.pk, images=["https://x.test/1.jpg"])
    upload = reload(queued)
    assert upload.status == Status.PUBLISHED and not upload.stuck
    assert upload.public_images == ["https://x.test/1.jpg"]


def test_events_cannot_be_edited_or_deleted(queued):
    from django.db import DatabaseError, transaction

    event = queued.events.get()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        type(event).objects.filter(pk=event.pk).update(reason="changed")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        event.delete()


@pytest.mark.parametrize(
    ("status", "headers", "kind", "retry_after"),
    [
        (201, {}, "accepted", None),
        (202, {}, "accepted", None),
        (429, {"Retry-After": "7"}, "transient", 7.0),
        (503, {}, "transient", None),
        (422, {}, "permanent", None),
        (404, {}, "permanent", None),
    ],
)
def test_answers_are_classified_as_the_design_says(status, headers, kind, retry_after):
    response = httpx.Response(status, headers=headers, json={"error": "why"})
    outcome = delivery_http.classify(response)
    assert (outcome.kind, outcome.retry_after) == (kind, retry_after)
    if kind != "accepted":
        assert outcome.reason == f"HTTP {status}: why"


def test_retry_after_as_an_http_date_is_understood():
    when = timezone.now() + datetime.timedelta(seconds=30)
    response = httpx.Response(
        429, headers={"Retry-After": when.strftime("%a, %d %b %Y %H:%M:%S GMT")}
    )
    assert 28 <= delivery_http.retry_after_seconds(response) <= 31


# --- How long an upload has really been failing


def fail_once(upload: Upload, reason: str = "connection: Server disconnected") -> None:
    lease = delivery.upload_claim(upload_id=upload.pk)
    assert lease is not None
    delivery.upload_record_outcome(lease=lease, outcome=transient(reason, network=True))
    Upload.objects.filter(pk=upload.pk).update(next_attempt_at=timezone.now())


def test_failing_since_is_the_first_failed_attempt_whatever_the_retries_after_it(
    queued, time_machine
):
    time_machine.move_to(timezone.now() + datetime.timedelta(minutes=1), tick=False)
    fail_once(queued)
    first_failure = reload(queued).failing_since
    assert first_failure == timezone.now()
    for _ in range(3):
        time_machine.shift(datetime.timedelta(minutes=4))
        fail_once(queued)
    upload = reload(queued)
    assert upload.status == Status.RETRYING and upload.attempts == 4
    assert upload.failing_since == first_failure
    # What a page shows as "since" stays put too, where status_since moved at every retry.
    assert upload.phase_since == first_failure
    assert upload.status_since > first_failure


def test_a_delivery_or_a_new_document_ends_the_failing(queued, django_capture_on_commit_callbacks):
    fail_once(queued)
    lease = delivery.upload_claim(upload_id=queued.pk)
    delivery.upload_record_outcome(lease=lease, outcome=delivery_http.Outcome("accepted"))
    assert reload(queued).failing_since is None
    other = Upload.objects.get(tps_id="6409032002002", contest__kind="pkwkk")
    user = person("kpps-2", "kpps", other.tps_id)
    with django_capture_on_commit_callbacks():
        intake.upload_receive(tps_code=other.tps_id, kind="pkwkk", files=[page_file()], user=user)
    fail_once(other)
    with django_capture_on_commit_callbacks():
        intake.upload_receive(tps_code=other.tps_id, kind="pkwkk", files=[page_file()], user=user)
    assert reload(other).failing_since is None


def test_a_stuck_upload_has_been_in_trouble_since_its_first_failure_not_since_the_flag(
    queued, settings, time_machine
):
    settings.STUCK_AFTER_ATTEMPTS = 3
    time_machine.move_to(timezone.now() + datetime.timedelta(minutes=1), tick=False)
    fail_once(queued)
    first_failure = timezone.now()
    time_machine.shift(datetime.timedelta(minutes=10))
    fail_once(queued)
    fail_once(queued)
    upload = reload(queued)
    assert upload.stuck and upload.stuck_reason == StuckReason.NETWORK
    assert upload.stuck_since == first_failure + datetime.timedelta(minutes=10)
    assert upload.trouble_since == first_failure
    # Its event records what was flagged, and the server's words as they came.
    event = upload.events.get(action="stuck")
    assert (event.stuck_reason, event.reason) == (
        StuckReason.NETWORK,
        "connection: Server disconnected",
    )
