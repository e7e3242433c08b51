"""Writes to areas and contests: importing areas, saving a contest, importing a contest kind's
candidates. (Opening a contest, with the uploads it expects, is
uploads.services.contests.contest_open.)"""

import datetime
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection, transaction

from regions import codes
from regions.codes import parent_code_sql
from regions.importers import AreaRow, CandidateImportError, CandidateRow, RegionImportError
from regions.models import CONTEST_LEVEL, LEVEL_WORD, Area, Candidate, Contest, ContestKind
from regions.signals import candidates_replaced


@dataclass
class ImportSummary:
    per_level: Counter
    created: int
    renamed: int

    def __str__(self) -> str:
        counts = ", ".join(
            f"{LEVEL_WORD[level]} {self.per_level[level]}" for level in sorted(self.per_level)
        )
        return f"{counts} ({self.created} new, {self.renamed} renamed)"


@transaction.atomic
def areas_import(*, rows: Iterable[AreaRow]) -> ImportSummary:
    """Imports rows in any order, all or nothing; re-importing the same rows changes nothing.

    Rows stream into a temporary table by COPY, so memory stays flat whatever the size; parents
    and duplicates are then checked there with set queries, and the areas upserted in one go.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            'CREATE TEMP TABLE import_area (code text COLLATE "C", name text, level smallint,'
            " source text, position bigserial) ON COMMIT DROP"
        )
        _copy_rows(cursor, rows)
        _check_duplicates(cursor)
        _check_parents(cursor)
        summary = _upsert(cursor)
        cursor.execute("DROP TABLE import_area")
        return summary


def _copy_rows(cursor, rows: Iterable[AreaRow]) -> None:
    copied = 0
    # cursor.cursor is psycopg's own cursor, which speaks COPY and streams as we write.
    with cursor.cursor.copy("COPY import_area (code, name, level, source) FROM STDIN") as copy:
        for row in rows:
            copy.write_row((row.code, row.name, row.level, row.source))
            copied += 1
    if not copied:
        raise RegionImportError("no areas in the input")
    cursor.execute("CREATE INDEX ON import_area (code)")
    cursor.execute("ANALYZE import_area")


def _check_duplicates(cursor) -> None:
    cursor.execute(
        """
        SELECT later.source, later.code, earlier.name, earlier.source, later.name
        FROM import_area later
        JOIN import_area earlier ON earlier.code = later.code AND earlier.position < later.position
        WHERE earlier.name <> later.name
        ORDER BY later.position LIMIT 1
        """
    )
    clash = cursor.fetchone()
    if clash:
        source, code, first_name, first_source, name = clash
        raise RegionImportError(
            f"{source}: code {code} is named {name!r} here but {first_name!r} at {first_source}"
        )


def _check_parents(cursor) -> None:
    cursor.execute(
        f"""
        SELECT child.source, child.code, {parent_code_sql("child.code")}
        FROM import_area child
        WHERE length(child.code) > 2
          AND NOT EXISTS (SELECT 1 FROM import_area p
                          WHERE p.code = {parent_code_sql("child.code")})
          AND NOT EXISTS (SELECT 1 FROM regions_area p
                          WHERE p.code = {parent_code_sql("child.code")})
        ORDER BY child.position LIMIT 1
        """
    )
    orphan = cursor.fetchone()
    if orphan:
        source, code, parent = orphan
        raise RegionImportError(
            f"{source}: the parent {parent} of {code} is neither in the input nor in the database"
        )


def _upsert(cursor) -> ImportSummary:
    # xmax = 0 marks a freshly inserted row; the WHERE skips rows whose name is unchanged, so a
    # re-import writes nothing.
    cursor.execute(
        f"""
        INSERT INTO regions_area (code, name, level, parent_id)
        SELECT DISTINCT ON (code) code, name, level, {parent_code_sql("code")}
        FROM import_area ORDER BY code, position
        ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name
        WHERE regions_area.name IS DISTINCT FROM EXCLUDED.name
        RETURNING (xmax = 0)
        """
    )
    written = [inserted for (inserted,) in cursor.fetchall()]
    cursor.execute("SELECT level, count(DISTINCT code) FROM import_area GROUP BY level")
    per_level = Counter(dict(cursor.fetchall()))
    created = sum(written)
    return ImportSummary(per_level=per_level, created=created, renamed=len(written) - created)


def contest_save(
    *,
    kind: str,
    region_code: str,
    name: str | None = None,
    closes_at: datetime.datetime | None = None,
) -> tuple[Contest, bool]:
    """The contest of a kind over a region, created if needed (with a default name), its name
    and closing time updated when given; and whether it was created. ValueError saying what is
    wrong: an unknown kind or area, or a Pilkada contest over an area of another level."""
    if kind not in ContestKind.values:
        raise ValueError(f"unknown contest {kind!r}; one of {', '.join(ContestKind.values)}")
    region = Area.objects.filter(code=region_code).first()
    if region is None:
        raise ValueError(f"no area with code {region_code!r}; import the regions first")
    required_level = CONTEST_LEVEL.get(ContestKind(kind))
    if required_level is not None and region.level != required_level:
        raise ValueError(
            f"{kind} covers a {LEVEL_WORD[required_level]}, "
            f"but {region_code} is a {LEVEL_WORD[region.level]}"
        )
    contest, created = Contest.objects.get_or_create(
        kind=kind,
        region=region,
        defaults={"name": name or _default_name(kind, region), "closes_at": closes_at},
    )
    _update_contest(contest, name=name, closes_at=closes_at)
    return contest, created


def _default_name(kind: str, region: Area) -> str:
    return f"{ContestKind(kind).label} {region.name}"


def _update_contest(contest: Contest, *, name: str | None, closes_at) -> None:
    changed = []
    if name and contest.name != name:
        contest.name = name
        changed.append("name")
    if closes_at and contest.closes_at != closes_at:
        contest.closes_at = closes_at
        changed.append("closes_at")
    if changed:
        contest.save(update_fields=changed)


# A candidate's columns, as an import compares and writes them.
CANDIDATE_COLUMNS = ("contest_id", "area_id", "kpu_id", "name", "number", "colour", "listed_at")


@dataclass(frozen=True)
class CandidatesSummary:
    candidates: int
    areas: int
    before: int  # the kind's candidates before the import
    changed: bool

    def __str__(self) -> str:
        said = f"{_count(self.candidates, 'candidate')} in {_count(self.areas, 'area')}"
        return said + (f" (replacing {self.before})" if self.changed else " (unchanged)")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


@transaction.atomic
def candidates_import(*, kind: str, rows: Iterable[CandidateRow]) -> CandidatesSummary:
    """Replaces the contest kind's candidates with the rows, all or nothing: readers see the old
    list or the new one, never a mix. Each row's area must exist and lie in a contest of the
    kind (its region or under it), else CandidateImportError names the row's line. Importing
    the same list again changes nothing."""
    if kind not in ContestKind.values:
        raise ValueError(f"unknown contest {kind!r}; one of {', '.join(ContestKind.values)}")
    # Locks the kind's contests: two imports of a kind one after the other, not interleaved.
    contests = list(Contest.objects.select_for_update().filter(kind=kind).order_by("pk"))
    rows = list(rows)
    contest_of = _contests_of_areas(kind, contests, rows)
    wanted = {_candidate_fields(row, contest_of[row.area_code]) for row in rows}
    existing = Candidate.objects.filter(contest__kind=kind)
    before = set(existing.values_list(*CANDIDATE_COLUMNS))
    summary = CandidatesSummary(
        candidates=len(rows),
        areas=len(contest_of),
        before=len(before),
        changed=before != wanted,
    )
    if summary.changed:
        existing.delete()
        Candidate.objects.bulk_create(
            Candidate(**dict(zip(CANDIDATE_COLUMNS, fields, strict=True))) for fields in wanted
        )
        transaction.on_commit(lambda: candidates_replaced.send(sender=Candidate, kind=kind))
    return summary


def _candidate_fields(row: CandidateRow, contest_id: int) -> tuple:
    return (
        contest_id,
        row.area_code,
        row.kpu_id,
        row.name,
        row.number,
        row.colour,
        row.listed_at,
    )


def _contests_of_areas(
    kind: str, contests: list[Contest], rows: list[CandidateRow]
) -> dict[str, int]:
    """The contest of the kind each row's area lies in, by area code: the first opened of those
    over it, as a TPS's upload is (two contests of a kind may cover it: Pemilu contests opened
    over nested regions)."""
    sources = {row.area_code: row.area_source for row in rows}  # in the file's order
    known = set(Area.objects.filter(code__in=sources).values_list("code", flat=True))
    found = {}
    for code, source in sources.items():
        if code not in known:
            raise CandidateImportError(f"{source}: no such area; import the regions first")
        over = set(codes.lineage(code))
        contest = next((contest for contest in contests if contest.region_id in over), None)
        if contest is None:
            raise CandidateImportError(
                f"{source}: no {kind} contest is open over this area; open it first (open_contest)"
            )
        found[code] = contest.pk
    return found
