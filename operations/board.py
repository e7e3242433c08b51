"""What the system page shows: each reading with its light (green, amber, red) and, beside it,
the thresholds that decide the light.

The thresholds are the alert rules' too (deploy/prometheus/alerts.yml fires at red), and several
follow the settings they watch: the heartbeat, poll and snapshot limits. docs/operations.md
lists them.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from operations.selectors import SystemState

GREEN, AMBER, RED = "green", "amber", "red"
ORDER = (GREEN, AMBER, RED)


@dataclass(frozen=True)
class Threshold:
    """Amber from `amber` up, red from `red` up (higher is worse); `unit` formats them."""

    amber: float
    red: float
    unit: str  # "seconds", "count", "percent" or "ms"

    def light(self, value: float) -> str:
        if value >= self.red:
            return RED
        return AMBER if value >= self.amber else GREEN

    def text(self) -> str:
        return _("amber ≥ %(amber)s, red ≥ %(red)s") % {
            "amber": formatted(self.amber, self.unit),
            "red": formatted(self.red, self.unit),
        }


def thresholds() -> dict[str, Threshold]:
    heartbeat = settings.HEARTBEAT_SECONDS
    return {
        # A heartbeat is due every HEARTBEAT_SECONDS; stale (gone) past the stale limit.
        "heartbeat": Threshold(1.5 * heartbeat, settings.HEARTBEAT_STALE_AFTER_SECONDS, "seconds"),
        "queue_length": Threshold(1_000, 10_000, "count"),
        "oldest_queued": Threshold(60, 300, "seconds"),
        # Past STUCK_AFTER_MINUTES an upload that still fails is flagged stuck.
        "oldest_retrying": Threshold(
            settings.STUCK_AFTER_MINUTES * 30, settings.STUCK_AFTER_MINUTES * 60, "seconds"
        ),
        "delivery_failures": Threshold(10, 50, "percent"),
        "poll_age": Threshold(
            3 * settings.POLL_INTERVAL_SECONDS, 10 * settings.POLL_INTERVAL_SECONDS, "seconds"
        ),
        "poll_errors": Threshold(5, 25, "percent"),
        # Past SNAPSHOT_STALE_AFTER_SECONDS the public pages say they are stale.
        "snapshot_age": Threshold(
            settings.SNAPSHOT_STALE_AFTER_SECONDS / 2,
            settings.SNAPSHOT_STALE_AFTER_SECONDS,
            "seconds",
        ),
        # One snapshot process rebuilds about 50 areas a second: 500 is ten seconds behind.
        "snapshot_backlog": Threshold(500, 1_500, "count"),
        # The mirror's worker puts what changed every PUBLIC_MIRROR_SECONDS: an object that
        # waits for a minute is behind what a CDN's readers should see.
        "mirror_oldest": Threshold(30, 120, "seconds"),
        "mirror_failing": Threshold(1, 100, "count"),
        "database_ms": Threshold(20, 200, "ms"),
        "redis_ms": Threshold(10, 100, "ms"),
    }


@dataclass(frozen=True)
class Row:
    label: str
    value: str
    light: str
    threshold: str


@dataclass(frozen=True)
class Section:
    title: str
    rows: list[Row]

    @property
    def light(self) -> str:
        return worst(row.light for row in self.rows)


def worst(lights: Iterable[str]) -> str:
    return max(lights, key=ORDER.index, default=GREEN)


def formatted(value: float, unit: str) -> str:
    if unit == "seconds":
        return duration(value)
    if unit == "percent":
        return f"{number_format(value, decimal_pos=1, use_l10n=True)}%"
    if unit == "ms":
        # Whole milliseconds: a tenth of one is noise, and would change the page at every poll.
        return _("< 1 ms") if value < 1 else _("%(ms)d ms") % {"ms": round(value)}
    return number_format(int(value), use_l10n=True, force_grouping=True)


def duration(seconds: float) -> str:
    """Whole seconds up to two minutes, then whole minutes up to two hours, then hours."""
    if seconds < 120:
        return _("%(seconds)d s") % {"seconds": seconds}
    if seconds < 7200:
        return _("%(minutes)d min") % {"minutes": seconds // 60}
    return _("%(hours)d h") % {"hours": seconds // 3600}


def _judged(label: str, value: float, threshold: Threshold, shown: str | None = None) -> Row:
    return Row(
        label, shown or formatted(value, threshold.unit), threshold.light(value), threshold.text()
    )


def _unknown(label: str, why: str) -> Row:
    return Row(label, why, RED, "")


def system_board(state: SystemState) -> list[Section]:
    limits = thresholds()
    return [
        Section(_("Workers and beat"), _workers(state, limits)),
        Section(_("Queues"), _queues(state, limits)),
        Section(_("Deliveries to the publication server"), _deliveries(state, limits)),
        Section(_("Poller of the public site"), _poller(state, limits)),
        Section(_("Public pages (snapshot)"), _snapshots(state, limits)),
        *_mirror_section(state, limits),
        Section(_("Database and Redis"), _dependencies(state, limits)),
    ]


def _workers(state: SystemState, limits: dict[str, Threshold]) -> list[Row]:
    if state.workers is None:
        return [_unknown(_("Workers"), _("unknown: Redis does not answer"))]
    rows = []
    for queue in state.queues or []:
        names = [
            worker.name for worker in state.workers if worker.alive and queue.name in worker.queues
        ]
        value = ngettext("%(count)d worker", "%(count)d workers", len(names)) % {
            "count": len(names)
        }
        rows.append(
            Row(
                _("Queue %(queue)s: workers taking it") % {"queue": queue.name},
                f"{value}: {', '.join(names)}" if names else value,
                GREEN if names else RED,
                _("red when none"),
            )
        )
    for worker in state.workers:
        queues = ", ".join(worker.queues) or _("none")
        shown = _("heartbeat %(age)s ago · queues %(queues)s") % {
            "age": duration(worker.age_seconds),
            "queues": queues,
        }
        label = _("Worker %(name)s") % {"name": worker.name}
        rows.append(_judged(label, worker.age_seconds, limits["heartbeat"], shown))
    rows.append(_beat(state, limits))
    return rows


def _beat(state: SystemState, limits: dict[str, Threshold]) -> Row:
    label = _("Beat (the scheduler)")
    if state.beat_age_seconds is None:
        return Row(label, _("has not run"), RED, limits["heartbeat"].text())
    shown = _("heartbeat %(age)s ago") % {"age": duration(state.beat_age_seconds)}
    return _judged(label, state.beat_age_seconds, limits["heartbeat"], shown)


def _queues(state: SystemState, limits: dict[str, Threshold]) -> list[Row]:
    rows = []
    if state.queues is None:
        rows.append(_unknown(_("Queue length"), _("unknown: Redis does not answer")))
    for queue in state.queues or []:
        label = _("Queue %(queue)s: messages waiting") % {"queue": queue.name}
        rows.append(_judged(label, queue.depth, limits["queue_length"]))
    if state.waiting is None:
        rows.append(
            _unknown(_("Oldest waiting upload"), _("unknown: the database does not answer"))
        )
        return rows
    for label, oldest, limit in [
        (_("Oldest queued upload"), state.waiting.oldest_queued, limits["oldest_queued"]),
        (_("Oldest retrying upload"), state.waiting.oldest_retrying, limits["oldest_retrying"]),
    ]:
        if oldest is None:
            rows.append(Row(label, _("none"), GREEN, limit.text()))
        else:
            rows.append(_judged(label, max(0.0, state.at - oldest.timestamp()), limit))
    return rows


def _deliveries(state: SystemState, limits: dict[str, Threshold]) -> list[Row]:
    if state.counts is None:
        return [_unknown(_("Deliveries"), _("unknown: Redis does not answer"))]
    waiting = state.waiting is not None and state.waiting.oldest_queued is not None
    rows = []
    for minutes, counted in [
        (5, state.counts.deliveries.last_5_minutes),
        (60, state.counts.deliveries.last_60_minutes),
    ]:
        attempts = sum(counted.values())
        failed = counted["transient"] + counted["permanent"]
        rate = _("%(accepted)s accepted (%(per_minute)s a minute)") % {
            "accepted": formatted(counted["accepted"], "count"),
            "per_minute": number_format(
                counted["accepted"] / minutes, decimal_pos=1, use_l10n=True
            ),
        }
        window = _("last %(minutes)d minutes") % {"minutes": minutes}
        stalled = waiting and counted["accepted"] == 0
        rows.append(
            Row(_("Delivered, %(window)s") % {"window": window}, rate, RED if stalled else GREEN,
                _("red when none while uploads are queued"))
        )  # fmt: skip
        percent = 100 * failed / attempts if attempts else 0.0
        shown = _("%(failed)s of %(attempts)s attempts failed (%(percent)s)") % {
            "failed": formatted(failed, "count"),
            "attempts": formatted(attempts, "count"),
            "percent": formatted(percent, "percent"),
        }
        label = _("Failed deliveries, %(window)s") % {"window": window}
        rows.append(_judged(label, percent, limits["delivery_failures"], shown))
    return rows


def _poller(state: SystemState, limits: dict[str, Threshold]) -> list[Row]:
    label = _("Last successful poll")
    if not settings.SIREKAP_DATA_URL:
        return [
            Row(label, _("SIREKAP_DATA_URL is not set: the public site is not polled"), AMBER, "")
        ]
    if state.counts is None:
        return [_unknown(label, _("unknown: Redis does not answer"))]
    rows = []
    last = state.counts.poll_last_success
    if last is None:
        rows.append(Row(label, _("never"), RED, limits["poll_age"].text()))
    else:
        age = max(0.0, state.at - last)
        rows.append(
            _judged(label, age, limits["poll_age"], _("%(age)s ago") % {"age": duration(age)})
        )
    for minutes, counted in [
        (5, state.counts.poll.last_5_minutes),
        (60, state.counts.poll.last_60_minutes),
    ]:
        requests, errors = counted["requests"], counted["errors"]
        percent = 100 * errors / requests if requests else 0.0
        shown = _("%(requests)s requests, %(errors)s errors (%(percent)s)") % {
            "requests": formatted(requests, "count"),
            "errors": formatted(errors, "count"),
            "percent": formatted(percent, "percent"),
        }
        label = _("Poll errors, last %(minutes)d minutes") % {"minutes": minutes}
        rows.append(_judged(label, percent, limits["poll_errors"], shown))
    return rows


def _snapshots(state: SystemState, limits: dict[str, Threshold]) -> list[Row]:
    if not state.snapshots:
        return [
            Row(
                _("Public snapshot"),
                _("nothing built yet: no public page was asked for"),
                GREEN,
                "",
            )
        ]
    rows = []
    for snapshot in state.snapshots:
        label = _("%(kind)s: last refresh") % {"kind": snapshot.kind.upper()}
        if snapshot.age_seconds is None:
            rows.append(Row(label, _("never"), RED, limits["snapshot_age"].text()))
        else:
            shown = _("%(age)s ago") % {"age": duration(snapshot.age_seconds)}
            rows.append(_judged(label, snapshot.age_seconds, limits["snapshot_age"], shown))
        label = _("%(kind)s: areas waiting for a refresh") % {"kind": snapshot.kind.upper()}
        rows.append(_judged(label, snapshot.backlog, limits["snapshot_backlog"]))
    return rows


def _mirror_section(state: SystemState, limits: dict[str, Threshold]) -> list[Section]:
    """The mirror on object storage, when PUBLIC_S3_BUCKET is set."""
    if settings.PUBLIC_S3 is None:
        return []
    title = _("Public pages on object storage (mirror)")
    mirror = state.mirror
    if mirror is None:
        return [Section(title, [_unknown(_("Mirror"), _("unknown: the database does not answer"))])]
    waiting = _("%(count)s objects") % {"count": formatted(mirror.pending, "count")}
    oldest = mirror.oldest_pending
    age = 0.0 if oldest is None else max(0.0, state.at - oldest.timestamp())
    rows = [
        _judged(_("Waiting to be put on the bucket"), age, limits["mirror_oldest"],
                _("%(objects)s, the oldest for %(age)s") % {"objects": waiting,
                                                            "age": duration(age)}),
    ]  # fmt: skip
    failing = _("%(count)s objects") % {"count": formatted(mirror.failing, "count")}
    if mirror.failing:
        failing += f": {mirror.last_error}"
    rows.append(_judged(_("Failing puts, retried"), mirror.failing, limits["mirror_failing"],
                        failing))  # fmt: skip
    return [Section(title, rows)]


def _dependencies(state: SystemState, limits: dict[str, Threshold]) -> list[Row]:
    rows = []
    for label, check, limit in [
        (_("PostgreSQL: SELECT 1"), state.database, limits["database_ms"]),
        (_("Redis: PING"), state.redis, limits["redis_ms"]),
    ]:
        if check["ok"]:
            rows.append(_judged(label, check["ms"], limit))
        else:
            rows.append(
                Row(
                    label,
                    _("does not answer: %(error)s") % {"error": check["error"]},
                    RED,
                    limit.text(),
                )
            )
    return rows
