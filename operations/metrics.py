"""/metrics in Prometheus's text format: what the web processes measured, and the state of the
parts read when Prometheus asks.

Under gunicorn each web worker is a process of its own: the request histograms live in files of
prometheus-client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set up by gunicorn.conf.py), so
that any worker answering a scrape reports every worker's requests. Everything else is read at
scrape time (operations.selectors, plus the upload counts by status from the progress counts and
the stuck uploads by reason), so it is the same whichever process answers, on whichever host.
docs/operations.md lists every metric.
"""

import math
import os
from collections.abc import Iterator

from django.db import DatabaseError
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from operations.selectors import SystemState, system_state
from uploads.counters import DELIVERY_OUTCOMES
from uploads.models import Status
from uploads.progress.selectors import progress_of_nation_by_kind
from uploads.selectors import uploads_stuck_by_reason

# From a 304 answered from memory to a slow dashboard page or a large upload.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
REQUEST_SECONDS = Histogram(
    "sirekap_http_request_duration_seconds",
    "Time to answer a request, by the name of the view that answered it.",
    ["view"],
    buckets=REQUEST_BUCKETS,
)
RESPONSES = Counter(
    "sirekap_http_responses", "Answers by view and HTTP status code.", ["view", "code"]
)


def request_observe(*, view: str, code: int, seconds: float) -> None:
    REQUEST_SECONDS.labels(view=view).observe(seconds)
    RESPONSES.labels(view=view, code=str(code)).inc()


def exposition() -> bytes:
    """The text Prometheus scrapes."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        # One process (runserver, the tests): its own metrics, kept in the default registry.
        registry.register(REGISTRY)
    registry.register(SystemCollector())
    return generate_latest(registry)


def _age(seconds: float | None) -> float:
    """An age for a gauge: +Inf for what never happened, so that `> limit` alerts fire."""
    return math.inf if seconds is None else seconds


class SystemCollector:
    """The parts' state, read at each scrape."""

    def collect(self) -> Iterator[Metric]:
        state = system_state()
        yield from self._dependencies(state)
        yield from self._workers(state)
        yield from self._queues(state)
        yield from self._pipeline(state)
        yield from self._snapshots(state)
        yield from self._mirror(state)
        if state.database["ok"]:
            yield from self._uploads()

    def _dependencies(self, state: SystemState) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "sirekap_dependency_up", "1 when the part answers, 0 when not.", labels=["part"]
        )
        latency = GaugeMetricFamily(
            "sirekap_dependency_latency_seconds",
            "Time of a trivial request to the part (SELECT 1, PING).",
            labels=["part"],
        )
        for part, check in [("database", state.database), ("redis", state.redis)]:
            up.add_metric([part], 1.0 if check["ok"] else 0.0)
            if check["ok"]:
                latency.add_metric([part], check["ms"] / 1000)
        yield up
        yield latency

    def _workers(self, state: SystemState) -> Iterator[Metric]:
        if state.workers is not None:
            age = GaugeMetricFamily(
                "sirekap_worker_heartbeat_age_seconds",
                "Seconds since each Celery worker's last heartbeat (listed until forgotten).",
                labels=["worker"],
            )
            for worker in state.workers:
                age.add_metric([worker.name], worker.age_seconds)
            yield age
        if state.beat_readable:
            yield GaugeMetricFamily(
                "sirekap_beat_heartbeat_age_seconds",
                "Seconds since beat's heartbeat task last ran (+Inf: never).",
                value=_age(state.beat_age_seconds),
            )

    def _queues(self, state: SystemState) -> Iterator[Metric]:
        if state.queues is not None:
            depth = GaugeMetricFamily(
                "sirekap_celery_queue_length",
                "Task messages waiting in each Celery queue.",
                labels=["queue"],
            )
            workers = GaugeMetricFamily(
                "sirekap_celery_queue_workers",
                "Celery workers alive that take each queue.",
                labels=["queue"],
            )
            for queue in state.queues:
                depth.add_metric([queue.name], queue.depth)
                workers.add_metric([queue.name], queue.workers)
            yield depth
            yield workers
        if state.unacked is not None:
            yield GaugeMetricFamily(
                "sirekap_celery_unacked_messages",
                "Task messages taken by a worker and not yet acknowledged.",
                value=state.unacked,
            )
        if state.waiting is not None:
            for status, oldest in [
                ("queued", state.waiting.oldest_queued),
                ("retrying", state.waiting.oldest_retrying),
            ]:
                age = 0.0 if oldest is None else max(0.0, state.at - oldest.timestamp())
                yield GaugeMetricFamily(
                    f"sirekap_oldest_{status}_age_seconds",
                    f"Seconds since the document of the oldest {status} upload came in (0: none).",
                    value=age,
                )

    def _pipeline(self, state: SystemState) -> Iterator[Metric]:
        if state.counts is None:
            return
        deliveries = CounterMetricFamily(
            "sirekap_deliveries",
            "Delivery attempts to the publication server, by outcome (accepted, transient: "
            "to be retried, permanent: rejected).",
            labels=["outcome"],
        )
        for outcome in DELIVERY_OUTCOMES:
            deliveries.add_metric([outcome], state.counts.deliveries.totals[outcome])
        yield deliveries
        poll = state.counts.poll.totals
        for field, text in [
            ("requests", "HTTP requests of the poller to the public site."),
            ("errors", "Files of the public site the poller could not use."),
            ("runs", "Runs of the poller."),
            ("gave_up", "Runs of the poller stopped early: the site kept failing."),
        ]:
            yield CounterMetricFamily(f"sirekap_poll_{field}", text, value=poll[field])
        last = state.counts.poll_last_success
        yield GaugeMetricFamily(
            "sirekap_poll_last_success_age_seconds",
            "Seconds since the last successful poll: one that read some of the site and was "
            "not stopped early (+Inf: never).",
            value=_age(None if last is None else max(0.0, state.at - last)),
        )

    def _snapshots(self, state: SystemState) -> Iterator[Metric]:
        age = GaugeMetricFamily(
            "sirekap_snapshot_age_seconds",
            "Seconds since the public snapshot of each contest kind was last refreshed.",
            labels=["kind"],
        )
        backlog = GaugeMetricFamily(
            "sirekap_snapshot_backlog_areas",
            "Areas of each contest kind whose public pages wait for a refresh.",
            labels=["kind"],
        )
        for snapshot in state.snapshots:
            age.add_metric([snapshot.kind], _age(snapshot.age_seconds))
            backlog.add_metric([snapshot.kind], snapshot.backlog)
        yield age
        yield backlog

    def _mirror(self, state: SystemState) -> Iterator[Metric]:
        mirror = state.mirror
        if mirror is None:
            return
        yield GaugeMetricFamily(
            "sirekap_mirror_pending_objects",
            "Objects of the public snapshot's mirror waiting to be put on (or deleted from) the "
            "bucket.",
            value=mirror.pending,
        )
        oldest = mirror.oldest_pending
        yield GaugeMetricFamily(
            "sirekap_mirror_oldest_pending_age_seconds",
            "Seconds since the longest waiting object of the mirror changed (0: none waits).",
            value=0.0 if oldest is None else max(0.0, state.at - oldest.timestamp()),
        )
        yield GaugeMetricFamily(
            "sirekap_mirror_failing_objects",
            "Objects of the mirror whose last put or delete failed (retried with a growing wait).",
            value=mirror.failing,
        )
        last = mirror.last_pushed
        yield GaugeMetricFamily(
            "sirekap_mirror_last_push_age_seconds",
            "Seconds since a put or delete on the bucket last worked (+Inf: never).",
            value=_age(None if last is None else max(0.0, state.at - last.timestamp())),
        )

    def _uploads(self) -> Iterator[Metric]:
        try:
            nation = progress_of_nation_by_kind()
            stuck_rows = uploads_stuck_by_reason()
        except DatabaseError:
            return
        uploads = GaugeMetricFamily(
            "sirekap_uploads",
            "Uploads (one per TPS and contest) in each status, by contest kind.",
            labels=["kind", "status"],
        )
        for kind, counts in nation.items():
            for status in Status.values:
                uploads.add_metric([kind, status], getattr(counts, status))
        yield uploads
        stuck = GaugeMetricFamily(
            "sirekap_uploads_stuck",
            "Uploads flagged stuck, by contest kind and reason.",
            labels=["kind", "reason"],
        )
        for kind, reason, count in stuck_rows:
            stuck.add_metric([kind, reason or "none"], count)
        yield stuck
