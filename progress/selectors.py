"""Reads of the progress counts that the pages and the API share.

Each read is one statement: the folded counts plus the changes still pending, from one snapshot,
so it is exact whether or not the folder has run, and costs the same for the nation as for a
kecamatan (a handful of index lookups and the few pending changes under the area).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection

from progress.models import COLUMNS, COUNTED
from progress.percent import cut_percent
from regions.models import CODE_LENGTH, Level


@dataclass(frozen=True)
class Counts:
    """One area's TPS for the contests read, in each status, and how many of them are stuck."""

    code: str  # "" is the nation
    name: str  # "" for the nation
    total: int = 0
    missing: int = 0
    queued: int = 0
    sending: int = 0
    retrying: int = 0
    delivered: int = 0
    published: int = 0
    rejected: int = 0
    stuck: int = 0

    @property
    def percent(self) -> Decimal | None:
        return cut_percent(self.published, self.total)


@dataclass(frozen=True)
class AreaCounts:
    area: Counts
    children: list[Counts]  # by code; only children with TPS in the contests


def _each(template: str, columns=COLUMNS) -> str:
    return ", ".join(template.format(c=column) for column in columns)


# Folded rows of the area and its children, plus the pending changes under the area: per child,
# and all of them for the area itself (the grouping set ()). {child} is the children's code length.
_COUNTED_LEVELS = f"""
    SELECT c.code, coalesce(a.name, ''), {_each("coalesce(sum(c.{c}), 0)::bigint")}
    FROM (
        SELECT area_code AS code, {_each("{c}")} FROM progress_areaprogress
        WHERE contest_id = ANY(%(contests)s) AND (area_code = %(area)s OR parent_code = %(area)s)
        UNION ALL
        SELECT CASE WHEN GROUPING(left(desa, {{child}})) = 1 THEN %(area)s
                    ELSE left(desa, {{child}}) END,
               0, {_each("sum({c})", COUNTED)}
        FROM progress_progresschange
        WHERE contest_id = ANY(%(contests)s) AND desa LIKE %(prefix)s
        GROUP BY GROUPING SETS ((left(desa, {{child}})), ())
    ) c LEFT JOIN regions_area a ON a.code = c.code
    GROUP BY c.code, a.name ORDER BY c.code
"""

# A desa's children are its TPS, at most 999: counted from the uploads themselves.
_DESA = f"""
    SELECT c.code, coalesce(a.name, ''), {_each("c.{c}")}
    FROM (
        SELECT CASE WHEN GROUPING(tps_id) = 1 THEN %(area)s ELSE tps_id END AS code,
               count(*) AS total,
               {_each("count(*) FILTER (WHERE status = '{c}') AS {c}", COUNTED[:-1])},
               count(*) FILTER (WHERE stuck) AS stuck
        FROM uploads_upload
        WHERE contest_id = ANY(%(contests)s) AND tps_id LIKE %(prefix)s
        GROUP BY GROUPING SETS ((tps_id), ())
    ) c LEFT JOIN regions_area a ON a.code = c.code
    ORDER BY c.code
"""


# The length of an area's children's codes, by the length of its own ("" is the nation).
_LENGTHS = sorted(CODE_LENGTH.values())
_CHILD_LENGTH = dict(zip([0, *_LENGTHS], _LENGTHS, strict=False))


def progress_of_area(*, contest_ids: Sequence[int], area_code: str) -> AreaCounts:
    """An area's counts and one row per child, summed over the given contests (e.g. one contest,
    or every ppwp contest for a national page). area_code: "" for the nation, down to a desa."""
    child_length = _child_length(area_code)
    if child_length == CODE_LENGTH[Level.TPS]:
        sql = _DESA
    else:
        sql = _COUNTED_LEVELS.format(child=child_length)
    params = {"contests": list(contest_ids), "area": area_code, "prefix": f"{area_code}%"}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = [Counts(*row) for row in cursor.fetchall()]
    area = next((row for row in rows if row.code == area_code), None)
    children = [row for row in rows if row.code != area_code]
    return AreaCounts(area or Counts(area_code, ""), children)


def _child_length(area_code: str) -> int:
    digits = area_code.isascii() and area_code.isdigit()
    if len(area_code) not in _CHILD_LENGTH or (area_code and not digits):
        raise ValueError(f"not the nation ('') nor a provinsi ... desa code: {area_code!r}")
    return _CHILD_LENGTH[len(area_code)]
