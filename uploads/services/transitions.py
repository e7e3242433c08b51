"""The one way an upload's status (or stuck flag) changes: `upload_transition`.

Why it looks the way it does, for a newcomer:

- A transition is a compare-and-swap. It changes the upload only if it is still in one of the
  `expected` statuses (and passes an optional `guard`, such as "this worker's lease token"), and
  returns the old status; None means someone else changed it first, and nothing was written.
  Callers treat None as "not mine any more" and do nothing.
- It is one SQL statement that does four things at once (see `_TRANSITION`): lock the row if it
  is still as expected, update it, insert its UploadEvent (the history, which the database
  refuses to edit), and insert the change to the per-area counts (uploads.progress, one small
  row per change: no hot national row). One round trip, atomic without a transaction of its own.
- The statement is prepared once per database connection and shape (which columns it sets,
  which guard lookups it has) and then only executed: PostgreSQL neither parses nor plans it
  again, about half of what a transition costs it. Values go in as parameters; an expression in
  `changes` (F("attempts") + 1) is part of the shape.
- Times come from the application's clock (timezone.now()), not PostgreSQL's now(), which stands
  still for a whole transaction (and which frozen test clocks do not move).
- `upload_transition_many` is the same statement over many uploads at once (the poller marking
  a batch published): each upload moves, or not, by the same rule and with its own event and
  progress change, as if one by one; values that differ per upload come in as arrays beside
  the ids.
"""

import datetime
import functools
import hashlib
import logging
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Required, TypedDict, Unpack

import structlog
from django.db import connection
from django.db.models import Model
from django.db.models.sql import Query
from django.utils import timezone

from accounts.scope import scope_of
from uploads.models import Action, Source, Upload
from uploads.progress.services import progress_record_sql

logger = structlog.get_logger(__name__)

# `locked` takes the row only if it is still in an expected state and passes the guard, and
# carries its old status and stuck flag out (UPDATE ... RETURNING shows only the new row before
# PostgreSQL 18). The event and the progress change (uploads/progress/models.py) read `moved`:
# when someone else won, nothing is locked and nothing is written. A NULL new status keeps the
# status (a change of the stuck flag alone). Rows are locked in id order: two statements each
# moving many uploads, some the same, wait for one another rather than deadlock.
_TRANSITION = """
    WITH locked AS (
        SELECT uploads_upload.id, status, stuck{each_columns} FROM uploads_upload{each}
        WHERE {which} AND status = ANY({expected}){guard}
        ORDER BY uploads_upload.id
        FOR UPDATE OF uploads_upload
    ), moved AS (
        UPDATE uploads_upload
        SET status = coalesce({new}, locked.status),
            status_since = CASE WHEN coalesce({new}, locked.status) = locked.status
                THEN uploads_upload.status_since ELSE {now} END{assignments}
        FROM locked WHERE uploads_upload.id = locked.id
        RETURNING uploads_upload.id AS upload_id, uploads_upload.contest_id,
            uploads_upload.tps_id, locked.status AS old_status, uploads_upload.status AS new_status,
            locked.stuck AS was_stuck, uploads_upload.stuck AS is_stuck,
            uploads_upload.stuck_reason
    ), event AS (
        INSERT INTO uploads_uploadevent (upload_id, action, old_status, new_status, stuck_reason,
            actor_id, actor_role, ip, source, reason, created_at)
        SELECT upload_id, {action}, old_status, new_status, stuck_reason,
            {actor}, {actor_role}, {ip}::inet, {source}, {reason}, {now}
        FROM moved
    ), counted AS ({count})
    SELECT moved.upload_id, moved.old_status, moved.new_status, moved.tps_id, contest.kind
    FROM moved JOIN regions_contest contest ON contest.id = moved.contest_id
"""
# Many uploads: the ids and the values that differ per upload (`each`) as arrays, one element
# per upload, side by side.
_EACH = " JOIN unnest({arrays}) AS each_upload(id{names}) ON each_upload.id = uploads_upload.id"
# Its parameters, in their $n order; those of the changes, the guard and `each` follow.
_PARAMETERS = (
    "upload_id",
    "expected",
    "new",
    "now",
    "action",
    "actor",
    "actor_role",
    "ip",
    "source",
    "reason",
)

# Django lookups a guard may use, as in filter(); `exact` as IS NOT DISTINCT FROM, so that None
# means NULL as it does in filter().
_GUARD_OPERATORS = {"exact": "IS NOT DISTINCT FROM", "lt": "<", "lte": "<="}


class Move(TypedDict, total=False):
    """What a transition does, whichever uploads it moves: the keyword arguments of
    upload_transition and upload_transition_many beside the uploads (see upload_transition)."""

    expected: Required[tuple[str, ...]]
    new: Required[str | None]
    action: Required[str]
    source: str
    actor: Any
    ip: str
    reason: str
    guard: dict | None
    changes: dict | None
    now: datetime.datetime | None


def upload_transition(*, upload_id: int, **move: Unpack[Move]) -> str | None:
    """Moves an upload from one of `expected` to `new` (None: the status stays), applying
    `changes`, with its event and its progress change, all or nothing.

    `action` is what its event records, `source` where it came from (by default the system).
    `actor` is the user who did it (None: the system), recorded with their role then and their
    address (`ip`), and `reason` why. `guard` adds conditions, as filter() lookups (a lease
    token, a deadline). A value in `changes` may be an expression over the upload's columns
    (F("attempts") + 1). `now`: when it happens (the status's new `status_since`, the event's
    time), by default timezone.now(); a caller that keeps the upload as it left it passes its
    own.
    Returns the old status, or None when the upload was not in an expected state any more:
    someone else won, and nothing was written.
    """
    return _transition(move, upload_id, None).get(upload_id)


def upload_transition_many(
    *, upload_ids: Sequence[int], each: Mapping[str, Sequence] | None = None, **move: Unpack[Move]
) -> dict[int, str]:
    """upload_transition of each of `upload_ids` (distinct), in one statement: each moves or
    not by the same rule, with its own event and progress change, as if one by one.

    `each`: values that differ per upload, by field, one per id in the order of `upload_ids`
    (plain values, not expressions). Returns the old status of every upload that moved; one
    absent was not in an expected state any more, and nothing was written for it.
    """
    each = each or {}
    if len(set(upload_ids)) != len(upload_ids):
        raise ValueError("upload_transition_many: an upload appears twice in upload_ids")
    for name, values in each.items():
        if len(values) != len(upload_ids) or name in (move.get("changes") or {}):
            raise ValueError(f"upload_transition_many: each[{name!r}] is not one per upload")
    if not upload_ids:
        return {}
    return _transition(move, list(upload_ids), each)


def _transition(move: Move, upload_id: int | list[int], each: Mapping | None) -> dict[int, str]:
    """Runs the statement for one upload (`each` None) or many; the old status of each moved."""
    changes, guard = move.get("changes") or {}, move.get("guard") or {}
    actor, reason = move.get("actor"), move.get("reason", "")
    # An expression is part of the statement (of its shape); a value is a parameter.
    shape = tuple((name, _expression(value)) for name, value in changes.items())
    statement = _statement(shape, tuple(guard), None if each is None else tuple(each))
    values = {
        "upload_id": upload_id,
        "expected": [str(status) for status in move["expected"]],
        "new": move["new"],
        "now": move.get("now") or timezone.now(),
        "action": move["action"],
        "actor": actor.pk if actor is not None else None,
        "actor_role": scope_of(actor).role,
        "ip": move.get("ip") or None,
        "source": move.get("source", Source.SYSTEM),
        "reason": reason[:2000],
        **_values(changes, shape, guard, each or {}),
    }
    moved = {}
    for upload, old, new, tps, kind in _execute(
        statement, [values[n] for n in statement.parameters]
    ):
        _log_transition(upload, move["action"], old=old, new=new, tps=tps, kind=kind, reason=reason)
        moved[upload] = old
    return moved


# A claim is one step of a delivery whose outcome gets a line of its own.
_QUIET_ACTIONS = {Action.CLAIMED}


def _log_transition(upload_id: int, action: str, *, old, new, tps, kind, reason: str) -> None:
    """One line per change of an upload, with the upload, its TPS and its contest (and whatever
    the caller bound: a request id, a task id, the attempt)."""
    level = logging.DEBUG if action in _QUIET_ACTIONS else logging.INFO
    fields = {"upload_id": upload_id, "tps": tps, "contest": kind, "from": old, "to": new}
    logger.log(level, f"upload {action}", **fields, **({"reason": reason} if reason else {}))


def _values(changes: dict, shape: tuple, guard: dict, each: Mapping) -> dict:
    """The parameters of `changes` (its values, not its expressions), of `guard` and of `each`
    (an array per field)."""
    values = {
        f"each_{name}": [_field(name).get_db_prep_save(value, connection) for value in per_upload]
        for name, per_upload in each.items()
    }
    for name, sql in shape:
        if not sql:
            value = changes[name]
            value = value.pk if isinstance(value, Model) else value
            values[f"set_{name}"] = _field(name).get_db_prep_save(value, connection)
    for lookup, value in guard.items():
        name, _ = _lookup(lookup)
        values[f"guard_{lookup}"] = _field(name).get_db_prep_value(value, connection)
    return values


@dataclass(frozen=True)
class _Statement:
    """The transition of one shape (the columns it sets, its expressions, the lookups of its
    guard), as a prepared statement: PostgreSQL then neither parses nor plans it again, which is
    about half of what a transition costs it."""

    name: str
    prepare: str
    execute: str
    parameters: tuple[str, ...]


@functools.lru_cache(maxsize=64)
def _statement(shape: tuple, guard: tuple[str, ...], each: tuple[str, ...] | None) -> _Statement:
    """`each` None: one upload, `upload_id` a number; else many, `upload_id` an array and a
    parameter per field of `each`, an array too."""
    parameters = (
        *_PARAMETERS,
        *(f"set_{name}" for name, sql in shape if not sql),
        *(f"guard_{lookup}" for lookup in guard),
        *(f"each_{name}" for name in each or ()),
    )
    at = {name: f"${number}" for number, name in enumerate(parameters, 1)}
    assignments = "".join(
        f", {_column(name)} = {sql or at[f'set_{name}']}" for name, sql in shape
    ) + "".join(f", {_column(name)} = locked.each_{name}" for name in each or ())
    conditions = "".join(
        f" AND {_column(name)} {_GUARD_OPERATORS[operator]} {at[f'guard_{lookup}']}"
        for lookup in guard
        for name, operator in [_lookup(lookup)]
    )
    count = progress_record_sql(changes="moved")
    sql = _TRANSITION.format(
        **at, **_which(at, each), assignments=assignments, guard=conditions, count=count
    )
    # Named by its text: the same shape built again is the statement already prepared.
    name = f"upload_transition_{hashlib.sha256(sql.encode()).hexdigest()[:16]}"
    placeholders = ", ".join(["%s"] * len(parameters))
    return _Statement(
        name, f"PREPARE {name} AS {sql}", f"EXECUTE {name}({placeholders})", parameters
    )


def _which(at: dict[str, str], each: tuple[str, ...] | None) -> dict[str, str]:
    """The uploads a statement locks: one by its id, or many joined to their `each` values."""
    if each is None:
        return {"which": f"uploads_upload.id = {at['upload_id']}", "each": "", "each_columns": ""}
    arrays = ", ".join(
        [f"{at['upload_id']}::bigint[]"]
        + [f"{at[f'each_{name}']}::{_field(name).db_type(connection)}[]" for name in each]
    )
    names = "".join(f", each_{name}" for name in each)
    return {
        "which": f"uploads_upload.id = ANY({at['upload_id']}::bigint[])",
        "each": _EACH.format(arrays=arrays, names=names),
        "each_columns": "".join(f", each_upload.each_{name}" for name in each),
    }


# The statements prepared in each database session (connection). PostgreSQL keeps a prepared
# statement until the session ends, through rollbacks; a new connection prepares its own. (So
# nothing between Django and PostgreSQL may share sessions: no pooler in transaction mode.)
_PREPARED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _execute(statement: _Statement, parameters: list) -> list[tuple]:
    with connection.cursor() as cursor:
        prepared = _PREPARED.setdefault(connection.connection, set())
        if statement.name not in prepared:
            cursor.execute(statement.prepare)
            prepared.add(statement.name)
        cursor.execute(statement.execute, parameters)
        return cursor.fetchall()


def _field(name: str):
    return Upload._meta.get_field(name)


def _column(name: str) -> str:
    return connection.ops.quote_name(_field(name).column)


def _lookup(lookup: str) -> tuple[str, str]:
    name, _, operator = lookup.partition("__")
    return name, operator or "exact"


def _expression(value) -> str:
    """An expression over the upload's columns as SQL; "" for a plain value."""
    return _expression_sql(value) if hasattr(value, "resolve_expression") else ""


@functools.lru_cache(maxsize=64)
def _expression_sql(expression) -> str:
    query = Query(Upload)
    resolved = expression.resolve_expression(query, allow_joins=False, for_save=True)
    sql, params = query.get_compiler(connection=connection).compile(resolved)
    # Its values inlined: it is part of the statement, which has parameters only for values.
    # (compose_sql is PostgreSQL's, the only database here; the stubs know the base class.)
    return connection.ops.compose_sql(sql, params)  # type: ignore[attr-defined]
