"""Writes to the progress counts: record a change, count a contest's new uploads, fold, recount.

Recording a change takes no lock at all: it is an insert. Whatever writes AreaProgress (the
folder, a contest opening, a repair) holds FOLD_LOCK, a transaction-scoped advisory lock, so the
counts have one writer at a time and no change is added twice or lost between two of them.
"""

from dataclasses import dataclass

from django.db import connection, transaction

from progress.models import COLUMNS, COUNTED
from regions.models import CODE_LENGTH, Level

# Any constant the rest of the project does not use as an advisory lock key.
FOLD_LOCK = 0x70726F67  # "prog"
# Changes moved per transaction by the folder: a backlog (the folder was down) is folded in
# short transactions rather than one long one.
FOLD_BATCH = 100_000


_RECORD = (
    f"INSERT INTO progress_progresschange (contest_id, desa, {', '.join(COUNTED)})"
    f" VALUES (%s, %s{', %s' * len(COUNTED)})"
)


def progress_record(
    *,
    contest_id: int,
    tps_code: str,
    old_status: str,
    new_status: str,
    was_stuck: bool,
    is_stuck: bool,
) -> None:
    """Counts one upload's change of status or stuck flag. Call it in the transaction that makes
    the change: the count then commits (or rolls back) with it."""
    if not connection.in_atomic_block:
        raise RuntimeError("progress_record must run in the transaction that changes the upload")
    change = dict.fromkeys(COUNTED, 0)
    change[old_status] -= 1
    change[new_status] += 1
    change["stuck"] += int(is_stuck) - int(was_stuck)
    if not any(change.values()):
        return
    with connection.cursor() as cursor:
        desa = tps_code[: CODE_LENGTH[Level.DESA]]
        cursor.execute(_RECORD, [contest_id, desa, *change.values()])


# Each area a desa counts in, with its parent: the desa, its kecamatan, kabupaten, provinsi and
# the nation (code "", no parent). See regions.models.CODE_LENGTH.
_ANCESTRY = """(VALUES
    (per_desa.desa, left(per_desa.desa, 6)),
    (left(per_desa.desa, 6), left(per_desa.desa, 4)),
    (left(per_desa.desa, 4), left(per_desa.desa, 2)),
    (left(per_desa.desa, 2), ''),
    ('', NULL)) AS area(code, parent)"""


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
# from one statement, so one snapshot: a pending change is exactly one the uploads already show.
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
