"""Reads for the audit list (/audit/): every upload event (each person's action and each
automatic transition) and every access event (logins, failed logins, refusals), newest first,
within the user's region and the filters. Both tables refuse edits and deletes in the database;
nothing here writes.

The two are merged by time (then table and id, a total order: events written in one statement
share their time): the page shows the newest PAGE_ROWS, and "older" asks for the rows after the
last one shown in that order; the CSV streams all of them, read the same way a chunk at a time.
Each read is the newest rows of each table after a point, an index range of (created_at, id):
a national night has tens of millions of upload events, and a read of them all, to sort or to
hold (a cursor outside a transaction is materialized whole), took a minute and more.
"""

import dataclasses
import datetime
import heapq
import itertools
from collections.abc import Iterator
from dataclasses import dataclass

from django.db.models import Q, QuerySet

from accounts.models import AccessEvent, AccessKind, Role
from accounts.scope import Scope
from uploads.models import Action, Source, Status, StuckReason, UploadEvent

PAGE_ROWS = 200
CSV_CHUNK_ROWS = 2000


# Where a row stands in the list, newest first: its time, its table ("u" upload events, then "a"
# access events at the same time) and its id.
RowKey = tuple[datetime.datetime, str, int]
UPLOAD_EVENTS, ACCESS_EVENTS = "u", "a"


@dataclass(frozen=True)
class AuditFilters:
    area: str = ""  # an area code inside the user's region; "" the whole region
    actor: str = ""  # a username, exactly
    action: str = ""  # an Action or an AccessKind value
    since: datetime.datetime | None = None
    before: datetime.datetime | None = None
    # "Older": the key of the last row shown; the rows after it in the list (those of its very
    # time too: a batch of the poller's publications is hundreds of events of one instant).
    after: RowKey | None = None


@dataclass(frozen=True)
class AuditRow:
    """One line of the audit, from either table."""

    key: RowKey
    at: datetime.datetime
    what: str  # the action or kind, as people read it
    action: str  # its stored value
    area: str  # the TPS (upload events) or the area asked for (refusals)
    contest: str
    who: str
    role: str
    ip: str
    before: str
    after: str
    reason: str  # or, for an access event, the path


def action_choices() -> list[tuple[str, str]]:
    """What the action filter offers: the upload events' actions, then the access kinds."""
    return [(value, str(label)) for value, label in (*Action.choices, *AccessKind.choices)]


def audit_rows(scope: Scope, filters: AuditFilters) -> Iterator[AuditRow]:
    """Every row in the region under the filters, newest first, read a chunk at a time."""
    while True:
        chunk = audit_page(scope, filters, rows=CSV_CHUNK_ROWS)
        yield from chunk
        if len(chunk) < CSV_CHUNK_ROWS:
            return
        filters = dataclasses.replace(filters, after=chunk[-1].key)


def audit_page(scope: Scope, filters: AuditFilters, rows: int = PAGE_ROWS) -> list[AuditRow]:
    """The newest `rows` rows in the region under the filters: as many of each table, merged."""
    # The area filter narrows the user's region, never widens it (the view refuses one outside).
    region = filters.area if scope.covers(filters.area) else scope.region
    labels, streams = _Labels.in_active_language(), []
    if not filters.action or filters.action in Action.values:
        upload_events = _upload_events(region, filters)[:rows]
        streams.append(_upload_row(event, labels) for event in upload_events)
    if not filters.action or filters.action in AccessKind.values:
        access_events = _access_events(region, filters)[:rows]
        streams.append(_access_row(event, labels) for event in access_events)
    merged = heapq.merge(*streams, key=lambda row: row.key, reverse=True)
    return list(itertools.islice(merged, rows))


def cursor_of(row: AuditRow) -> str:
    """The key of the last row shown, for "older": "<ISO time>/<table><id>"."""
    at, table, pk = row.key
    return f"{at.isoformat()}/{table}{pk}"


def key_of_cursor(cursor: str) -> RowKey:
    """A cursor_of read back. A bare ISO time (typed by a person) stands after every row of that
    time: the rows strictly older come. A time without its offset is refused (whose clock?)."""
    time, _slash, row = cursor.partition("/")
    at = datetime.datetime.fromisoformat(time)
    if at.tzinfo is None:
        raise ValueError(cursor)
    if not row:
        return at, "", 0
    if row[0] not in (UPLOAD_EVENTS, ACCESS_EVENTS) or not row[1:].isdigit():
        raise ValueError(cursor)
    return at, row[0], int(row[1:])


def _timed(rows: QuerySet, filters: AuditFilters, table: str) -> QuerySet:
    if filters.since:
        rows = rows.filter(created_at__gte=filters.since)
    if filters.before:
        rows = rows.filter(created_at__lt=filters.before)
    if filters.after:
        rows = rows.filter(_after(filters.after, table))
    return rows.order_by("-created_at", "-id")


def _after(key: RowKey, table: str) -> Q:
    """The rows of a table that come after the row of `key` in the list, newest first."""
    at, shown_table, shown_id = key
    earlier = Q(created_at__lt=at)
    if table == shown_table:
        return earlier | Q(created_at=at, id__lt=shown_id)
    # At one time the upload events ("u") come first: after one, every access event of that time.
    return earlier | Q(created_at=at) if table < shown_table else earlier


def _upload_events(region: str | None, filters: AuditFilters):
    rows = UploadEvent.objects.within(region)
    if filters.actor:
        rows = rows.filter(actor__username=filters.actor)
    if filters.action:
        rows = rows.filter(action=filters.action)
    return _timed(rows, filters, UPLOAD_EVENTS).select_related("actor", "upload__contest")


def _access_events(region: str | None, filters: AuditFilters):
    """Access events about the region: refusals of a request for an area in it, and the logins
    and refusals of its users. A national user sees all, logins with unknown names included."""
    if region is None:
        return AccessEvent.objects.none()
    rows = AccessEvent.objects.all()
    if region:
        rows = rows.filter(
            Q(area_code__startswith=region) | Q(user__profile__region__code__startswith=region)
        )
    if filters.actor:
        rows = rows.filter(username=filters.actor)
    if filters.action:
        rows = rows.filter(kind=filters.action)
    return _timed(rows, filters, ACCESS_EVENTS).select_related("user")


@dataclass(frozen=True)
class _Labels:
    """What each stored value reads as, translated once per read: Django's get_FOO_display
    translates every choice of the field at each call (most of a CSV row's cost)."""

    actions: dict[str, str]
    access_kinds: dict[str, str]
    statuses: dict[str, str]
    sources: dict[str, str]
    roles: dict[str, str]
    stuck_reasons: dict[str, str]

    @classmethod
    def in_active_language(cls) -> "_Labels":
        choices = (Action, AccessKind, Status, Source, Role, StuckReason)
        return cls(*({value: str(label) for value, label in c.choices} for c in choices))


def _upload_row(event: UploadEvent, labels: _Labels) -> AuditRow:
    return AuditRow(
        key=(event.created_at, UPLOAD_EVENTS, event.pk),
        at=event.created_at,
        what=labels.actions.get(event.action, event.action),
        action=event.action,
        area=event.upload.tps_id,
        contest=event.upload.contest.kind,
        who=(
            event.actor.get_username()
            if event.actor
            else labels.sources.get(event.source, event.source)
        ),
        role=labels.roles.get(event.actor_role, ""),
        ip=event.ip or "",
        before=labels.statuses.get(event.old_status, event.old_status),
        after=labels.statuses.get(event.new_status, event.new_status),
        reason=_with_stuck_reason(event, labels),
    )


def _access_row(event: AccessEvent, labels: _Labels) -> AuditRow:
    return AuditRow(
        key=(event.created_at, ACCESS_EVENTS, event.pk),
        at=event.created_at,
        what=labels.access_kinds.get(event.kind, event.kind),
        action=event.kind,
        area=event.area_code,
        contest="",
        who=event.username or (event.user.get_username() if event.user else ""),
        role=labels.roles.get(event.role, ""),
        ip=event.ip or "",
        before="",
        after="",
        reason=event.path,
    )


def _with_stuck_reason(event: UploadEvent, labels: _Labels) -> str:
    if event.action == Action.STUCK and event.stuck_reason:
        label = labels.stuck_reasons.get(event.stuck_reason, event.stuck_reason)
        return f"{label}: {event.reason}" if event.reason else label
    return event.reason or ""


CSV_HEADER = (
    "time_utc", "action", "what", "area", "contest", "who", "role", "ip", "from", "to", "reason"
)  # fmt: skip


def csv_values(row: AuditRow) -> list[str]:
    return [
        row.at.astimezone(datetime.UTC).isoformat(timespec="seconds"),
        row.action, row.what, row.area, row.contest, row.who, row.role, row.ip,
        row.before, row.after, row.reason,
    ]  # fmt: skip
