"""Writes to the progress counts: record a change, count a contest's new uploads, fold, recount;
and the points of the counts over time that the timeline draws: take, compact.

Recording a change takes no lock at all: it is an insert. Whatever writes AreaProgress (the
folder, a contest opening, a repair) holds FOLD_LOCK, a transaction-scoped advisory lock, so the
counts have one writer at a time and no change is added twice or lost between two of them.
"""

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from regions import codes
from uploads.progress.models import COLUMNS, COUNTED, POINT_COLUMNS, TIMELINE_MAX_CODE_LENGTH

# Any constant the rest of the project does not use as an advisory lock key.
FOLD_LOCK = 0x70726F67  # "prog"
# Changes moved per transaction by the folder: a backlog (the folder was down) is folded in
# short transactions rather than one long one.
FOLD_BATCH = 100_000


def progress_record_sql(*, changes: str) -> str:
    """Records uploads' changes of status or stuck flag, as SQL to put in the statement that
    makes them (uploads.services.transitions.upload_transition): the count then commits, or
    rolls back, with the change. An insert: it takes no lock.

    `changes` names a relation of that statement (a CTE over UPDATE ... RETURNING) with columns
    contest_id, tps_id, old_status, new_status, was_stuck and is_stuck. A row that changes
    neither status nor flag records nothing.
    """
    statuses = ", ".join(
        f"(new_status = '{status}')::int - (old_status = '{status}')::int"
        for status in COUNTED[:-1]
    )
    return f"""
        INSERT INTO progress_progresschange (contest_id, desa, {", ".join(COUNTED)})
        SELECT contest_id, left(tps_id, {codes.DESA_LENGTH}), {statuses},
            is_stuck::int - was_stuck::int
        FROM {changes}
        WHERE old_status <> new_status OR was_stuck <> is_stuck
    """


def _ancestry(desa: str) -> str:
    """Each area a desa counts in, with its parent: the desa, its kecamatan, kabupaten, provinsi
    and the nation (code "", no parent), as a VALUES list of (code, parent)."""
    above = [f"left({desa}, {length})" for length in reversed(codes.LENGTHS[:-2])]
    chain = [desa, *above, "''", "NULL"]
    rows = ", ".join(f"({code}, {parent})" for code, parent in itertools.pairwise(chain))
    return f"(VALUES {rows}) AS area(code, parent)"


_ANCESTRY = _ancestry("per_desa.desa")


def _each(template: str, columns=COLUMNS) -> str:
    return ", ".join(template.format(c=column) for column in columns)


# Adds per_desa(contest_id, desa, total, missing, ..., stuck) to the counts of every level.
_ADD_UP = f"""
    INSERT INTO progress_areaprogress (contest_id, area_code, parent_code, {_each("{c}")})
    SELECT per_desa.contest_id, area.code, area.parent, {_each("sum(per_desa.{c})")}
    FROM per_desa CROSS JOIN LATERAL {_ANCESTRY}
    GROUP BY per_desa.contest_id, area.code, area.parent
    ON CONFLICT (contest_id, area_code) DO UPDATE
    SET {_each("{c} = progress_areaprogress.{c} + EXCLUDED.{c}")}
"""

_FOLD = f"""
    WITH moved AS (
        DELETE FROM progress_progresschange
        WHERE id IN (SELECT id FROM progress_progresschange LIMIT %s)
        RETURNING contest_id, desa, {_each("{c}", COUNTED)}
    ), per_desa AS (
        SELECT contest_id, desa, 0 AS total, {_each("sum({c}) AS {c}", COUNTED)}
        FROM moved GROUP BY contest_id, desa
    ), added AS ({_ADD_UP} RETURNING 1)
    SELECT count(*) FROM moved
"""


def progress_fold(*, batch: int = FOLD_BATCH) -> int:
    """Moves the pending changes into the counts and returns how many it moved: none while
    another folder, a recount or a contest opening holds the counts (that one, or the next run,
    folds them). Idempotent: a change is deleted in the transaction that adds it up."""
    folded = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [FOLD_LOCK])
            if not cursor.fetchone()[0]:
                return folded
            cursor.execute(_FOLD, [batch])
            moved = cursor.fetchone()[0]
        folded += moved
        if moved < batch:
            return folded


# The new uploads of a contest are its uploads that no desa total counts yet; all are missing.
_COUNT_NEW = f"""
    WITH uploads AS (
        SELECT left(tps_id, 10) AS desa, count(*) AS total FROM uploads_upload
        WHERE contest_id = %(contest)s GROUP BY 1
    ), per_desa AS (
        SELECT %(contest)s::bigint AS contest_id, uploads.desa,
               uploads.total - coalesce(counted.total, 0) AS total,
               uploads.total - coalesce(counted.total, 0) AS missing,
               {_each("0 AS {c}", COUNTED[1:])}
        FROM uploads LEFT JOIN progress_areaprogress counted
             ON counted.contest_id = %(contest)s AND counted.area_code = uploads.desa
        WHERE uploads.total <> coalesce(counted.total, 0)
    )
    {_ADD_UP}
"""


def progress_count_new_uploads(*, contest_id: int) -> None:
    """Counts the uploads a contest opening just created (status missing), in its transaction,
    so that the totals are exact from the start. One statement over the contest's uploads."""
    if not connection.in_atomic_block:
        raise RuntimeError("progress_count_new_uploads must run in the contest_open transaction")
    with connection.cursor() as cursor:
        # Waits for a fold in progress; the lock is then held until the contest is open.
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FOLD_LOCK])
        cursor.execute(_COUNT_NEW, {"contest": contest_id})


# --- Recount


@dataclass(frozen=True)
class Drift:
    contest_id: int
    area_code: str
    # The counts as a page reads them (folded + pending), and a fresh GROUP BY over the uploads.
    counted: dict[str, int]
    actual: dict[str, int]


@dataclass(frozen=True)
class Recount:
    areas: int
    drifts: list[Drift]
    fixed: bool


_STATUS_FILTER = _each("count(*) FILTER (WHERE status = '{c}') AS {c}", COUNTED[:-1])

# Per area and contest: what the uploads say (actual_*), and the changes still pending. Both come
# from one statement, so one consistent read: a pending change is exactly one the uploads
# already show.
_EXPECTED = f"""
    CREATE TEMP TABLE progress_expected AS
    WITH fresh AS (
        SELECT contest_id, left(tps_id, 10) AS desa, count(*) AS total, {_STATUS_FILTER},
               count(*) FILTER (WHERE stuck) AS stuck
        FROM uploads_upload GROUP BY 1, 2
    ), per_desa AS (
        SELECT contest_id, desa, {_each("{c} AS actual_{c}")}, {_each("0 AS pending_{c}")}
        FROM fresh
        UNION ALL
        SELECT contest_id, desa, {_each("0")}, {_each("{c}", ("0", *COUNTED))}
        FROM progress_progresschange
    )
    SELECT per_desa.contest_id, area.code AS area_code, area.parent AS parent_code,
           {_each("sum(actual_{c}) AS actual_{c}")}, {_each("sum(pending_{c}) AS pending_{c}")}
    FROM per_desa CROSS JOIN LATERAL {_ANCESTRY}
    GROUP BY per_desa.contest_id, area.code, area.parent
"""

# The folded counts plus the pending changes, against the uploads; a row missing on one side
# counts as zeros.
_DRIFTS = f"""
    SELECT coalesce(e.contest_id, c.contest_id), coalesce(e.area_code, c.area_code),
           {_each("coalesce(c.{c}, 0) + coalesce(e.pending_{c}, 0)")},
           {_each("coalesce(e.actual_{c}, 0)")}
    FROM progress_expected e
    FULL JOIN progress_areaprogress c ON c.contest_id = e.contest_id AND c.area_code = e.area_code
    WHERE ({_each("coalesce(c.{c}, 0) + coalesce(e.pending_{c}, 0)")})
          IS DISTINCT FROM ({_each("coalesce(e.actual_{c}, 0)")})
    ORDER BY 1, 2
"""

# Folded = actual - pending, so that adding the pending changes later gives the actual counts.
_REPAIR = f"""
    INSERT INTO progress_areaprogress (contest_id, area_code, parent_code, {_each("{c}")})
    SELECT contest_id, area_code, parent_code, {_each("actual_{c} - pending_{c}")}
    FROM progress_expected
    ON CONFLICT (contest_id, area_code) DO UPDATE
    SET parent_code = EXCLUDED.parent_code, {_each("{c} = EXCLUDED.{c}")}
    WHERE ({_each("progress_areaprogress.{c}")}) IS DISTINCT FROM ({_each("EXCLUDED.{c}")})
"""

_REMOVE_STRAYS = """
    DELETE FROM progress_areaprogress c WHERE NOT EXISTS (
        SELECT 1 FROM progress_expected e
        WHERE e.contest_id = c.contest_id AND e.area_code = c.area_code)
"""


def progress_recount(*, fix: bool = False) -> Recount:
    """Compares every area's counts with a fresh GROUP BY over the uploads; with fix, repairs the
    areas that drifted. Holds FOLD_LOCK throughout, so the folded counts stand still while they
    are compared (pages still read exact counts meanwhile: the changes pile up as pending)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FOLD_LOCK])
        cursor.execute(_EXPECTED)
        areas = cursor.rowcount
        cursor.execute("ANALYZE progress_expected")
        cursor.execute(_DRIFTS)
        drifts = [_drift(row) for row in cursor.fetchall()]
        if fix and drifts:
            cursor.execute(_REPAIR)
            cursor.execute(_REMOVE_STRAYS)
        # Dropped here rather than on commit: a caller's transaction may go on (a rollback drops
        # it too).
        cursor.execute("DROP TABLE progress_expected")
    return Recount(areas=areas, drifts=drifts, fixed=fix and bool(drifts))


def _drift(row: tuple) -> Drift:
    contest_id, area_code, *values = row
    counted = dict(zip(COLUMNS, values[: len(COLUMNS)], strict=True))
    actual = dict(zip(COLUMNS, values[len(COLUMNS) :], strict=True))
    return Drift(contest_id, area_code, counted, actual)


# --- Points over time

# The counts as a page reads them (folded + pending, from one consistent read of the database),
# of each area down to kecamatan whose counts differ from that area's latest point.
_CHANGED_SINCE_POINT = f"""
    WITH pending AS (
        SELECT contest_id, area.code AS area_code, {_each("sum({c}) AS {c}", POINT_COLUMNS[1:])}
        FROM progress_progresschange
        CROSS JOIN LATERAL (VALUES (left(desa, 6)), (left(desa, 4)), (left(desa, 2)), (''))
            AS area(code)
        GROUP BY 1, 2
    ), current AS (
        SELECT a.contest_id, a.area_code, a.total,
               {_each("a.{c} + coalesce(p.{c}, 0) AS {c}", POINT_COLUMNS[1:])}
        FROM progress_areaprogress a
        LEFT JOIN pending p ON p.contest_id = a.contest_id AND p.area_code = a.area_code
        WHERE length(a.area_code) <= {TIMELINE_MAX_CODE_LENGTH}
    )
    SELECT c.contest_id, c.area_code, {_each("c.{c}", POINT_COLUMNS)}
    FROM current c
    LEFT JOIN LATERAL (
        SELECT {_each("{c}", POINT_COLUMNS)} FROM progress_timelinepoint s
        WHERE s.contest_id = c.contest_id AND s.area_code = c.area_code
        ORDER BY s.taken_at DESC LIMIT 1
    ) latest ON true
    WHERE ({_each("c.{c}", POINT_COLUMNS)})
          IS DISTINCT FROM ({_each("latest.{c}", POINT_COLUMNS)})
"""

_POINTS_WRITE = f"""
    INSERT INTO progress_timelinepoint
        (contest_id, area_code, taken_at, {_each("{c}", POINT_COLUMNS)})
    SELECT point.contest_id, point.area_code, %(at)s, {_each("point.{c}", POINT_COLUMNS)}
    FROM unnest(%(contest_id)s::bigint[], %(area_code)s::text[],
                {_each("%({c})s::integer[]", POINT_COLUMNS)})
        AS point(contest_id, area_code, {_each("{c}", POINT_COLUMNS)})
    ON CONFLICT DO NOTHING
"""


def timeline_point_take(*, at: datetime | None = None) -> int:
    """Writes a point of each area whose counts differ from its latest point, stamped with
    `at` (default: now), and returns how many it wrote: none on a quiet night. It reads every
    area down to kecamatan but writes only what changed. A second take at the same instant
    writes nothing; two at once may both write a change (the same step twice: harmless).

    Read, then written, in two statements: as one, the lookup of each area's latest point
    scanned the very table the statement was filling whenever the planner took it for empty
    (analyzed before the night's first point), 17 s for the nation's 39,000 areas, not 1 s.
    """
    at = at or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(_CHANGED_SINCE_POINT)
        rows = cursor.fetchall()
        if not rows:
            return 0
        names = ("contest_id", "area_code", *POINT_COLUMNS)
        columns = {
            name: list(column) for name, column in zip(names, zip(*rows, strict=True), strict=True)
        }
        cursor.execute(_POINTS_WRITE, {"at": at, **columns})
        return cursor.rowcount


# How points are thinned as they age: past each age, one per bucket of that width is kept, the
# last of its bucket, so the step function keeps its value at every bucket's end. Younger than
# the first age, every point (one a minute at most) is kept.
COMPACTION_TIERS = (
    (timedelta(hours=3), timedelta(minutes=15)),
    (timedelta(days=2), timedelta(hours=1)),
)
# Each run thins only the points that aged into a tier in the last this long: a run then reads
# a few hours of each area, not its whole history. Three runs of beat's hourly schedule: two may
# be missed. Points that aged past it while compaction was down stay as they are (more points,
# the same step function).
COMPACTION_LOOKBACK = timedelta(hours=3)
# Buckets start at whole hours and quarters (UTC, and so in WIB, WITA and WIT too).
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)

# Per area and tier, the area's points within the tier's window (a range scan of the key),
# ranked in their buckets from the last; all but the last of each are deleted by row address,
# read in the same statement. Ranked inside the per-area subquery, which keeps it a range scan
# per area: as a plain join the planner may read the whole table instead.
_COMPACT = f"""
    WITH tier (starts, ends, width) AS (SELECT * FROM unnest(
        %(starts)s::timestamptz[], %(ends)s::timestamptz[], %(widths)s::interval[])
    )
    DELETE FROM progress_timelinepoint WHERE ctid = ANY(ARRAY(
        SELECT ranked.row_address
        FROM progress_areaprogress a CROSS JOIN tier
        CROSS JOIN LATERAL (
            SELECT s.ctid AS row_address, row_number() OVER (
                PARTITION BY date_bin(tier.width, s.taken_at, %(epoch)s)
                ORDER BY s.taken_at DESC) AS nth
            FROM progress_timelinepoint s
            WHERE s.contest_id = a.contest_id AND s.area_code = a.area_code
                  AND s.taken_at >= tier.starts AND s.taken_at < tier.ends
        ) ranked
        WHERE length(a.area_code) <= {TIMELINE_MAX_CODE_LENGTH} AND ranked.nth > 1
    ))
"""


def timeline_points_compact(*, now: datetime | None = None) -> int:
    """Thins the points as they age (COMPACTION_TIERS) and returns how many it deleted.
    Idempotent: a second run at the same instant deletes nothing."""
    now = now or timezone.now()
    windows = [(_bucket_start(now - age, width), width) for age, width in COMPACTION_TIERS]
    params: dict[str, Any] = {
        "starts": [ends - COMPACTION_LOOKBACK for ends, _ in windows],
        "ends": [ends for ends, _ in windows],
        "widths": [width for _, width in windows],
        "epoch": _EPOCH,
    }
    with connection.cursor() as cursor:
        cursor.execute(_COMPACT, params)
        return cursor.rowcount


def _bucket_start(moment: datetime, width: timedelta) -> datetime:
    return moment - (moment - _EPOCH) % width
