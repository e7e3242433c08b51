"""Reads of areas and contests shared by the pages."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from django.db import DEFAULT_DB_ALIAS
from django.db.models import Q, QuerySet

from regions import codes
from regions.models import Area, Candidate, Contest, ContestKind, Level
from regions.zones import Zone, zone_of_area


def area_breadcrumb(area: Area) -> list[Area]:
    """The area's ancestors from the provinsi down, then the area itself, in one query."""
    prefixes = codes.lineage(area.code)[:-1]
    ancestors = list(Area.objects.filter(code__in=prefixes).order_by("level"))
    return [*ancestors, area]


def area_children(code: str | None) -> QuerySet[Area]:
    """The areas one level down (the provinsi when code is None), by code."""
    if code is None:
        return Area.objects.filter(level=Level.PROVINSI).order_by("code")
    return Area.objects.filter(parent_id=code).order_by("code")


@dataclass(frozen=True)
class ContestArea:
    """A page's area (None: the nation) and contest kind, with the contests summed there."""

    kind: str
    code: str  # "" is the nation
    area: Area | None
    breadcrumb: list[Area]  # from the provinsi down to the area itself
    contests: list[Contest]  # of the kind, over or under the area
    kinds: list[str]  # every contest kind held over or under the area, for the switcher

    @property
    def contest_ids(self) -> list[int]:
        return [contest.pk for contest in self.contests]

    @property
    def is_desa(self) -> bool:
        return self.area is not None and self.area.level == Level.DESA

    @property
    def zone(self) -> Zone:
        return zone_of_area(self.code)

    @property
    def kind_choices(self) -> list[tuple[str, str]]:
        return [(kind, str(ContestKind(kind).label)) for kind in self.kinds]

    @property
    def contest_name(self) -> str:
        """The contest's own name where one contest is summed, else the kind's label."""
        if len(self.contests) == 1:
            return self.contests[0].name
        return str(ContestKind(self.kind).label)


def contest_area_of(*, kind: str, area_code: str) -> ContestArea | None:
    """Where a progress page stands (/dashboard/<kind>/<code>/, /progress/<kind>/<code>/): the
    area with its ancestors and the contests of the kind over or under it. None when there is no
    such area (a TPS is a row of its desa) or no contest of that kind over or under it. Two
    queries (one for the nation)."""
    if area_code and not codes.is_code(area_code):
        return None
    lineage = codes.lineage(area_code)
    areas = list(Area.objects.filter(code__in=lineage).order_by("level"))
    # Contests over the area (their region is the area or an ancestor) or under it. The nation
    # has one of each kind per provinsi (190 in a general election): read as rows, and only
    # those of the page's kind made into models (a model costs about 15 µs).
    over_or_under = Q(region_id__in=lineage) | Q(region__code__startswith=area_code)
    rows = Contest.objects.filter(over_or_under).order_by("kind", "region_id")
    contests = list(rows.values_list(*_CONTEST_COLUMNS))
    kinds = sorted({row[_KIND] for row in contests})
    of_kind = [_contest(row) for row in contests if row[_KIND] == kind]
    return _contest_area(kind, area_code, areas, of_kind, kinds)


_CONTEST_COLUMNS = [field.attname for field in Contest._meta.concrete_fields]
_KIND = _CONTEST_COLUMNS.index("kind")


def _contest(row: tuple) -> Contest:
    return Contest.from_db(DEFAULT_DB_ALIAS, _CONTEST_COLUMNS, row)


def contest_areas_of(*, kind: str, area_codes: Iterable[str]) -> dict[str, ContestArea]:
    """contest_area_of of many areas at once (the public snapshot's refresh), by code, those
    that have one. Two queries whatever their number: every contest is read (a few hundred at
    most, a national election's), and the areas of their lineages."""
    wanted = [code for code in area_codes if not code or codes.is_code(code)]
    lineages = {code: codes.lineage(code) for code in wanted}
    needed = {code for lineage in lineages.values() for code in lineage}
    found = {area.code: area for area in Area.objects.filter(code__in=needed)}
    every_contest = list(Contest.objects.order_by("kind", "region_id"))
    contest_areas: dict[str, ContestArea] = {}
    for code, lineage in lineages.items():
        areas = sorted((found[at] for at in lineage if at in found), key=lambda area: area.level)
        above = set(lineage)
        contests = [
            contest
            for contest in every_contest
            if contest.region_id in above or contest.region_id.startswith(code)
        ]
        of_kind = [contest for contest in contests if contest.kind == kind]
        kinds = sorted({contest.kind for contest in contests})
        if contest_area := _contest_area(kind, code, areas, of_kind, kinds):
            contest_areas[code] = contest_area
    return contest_areas


def _contest_area(
    kind: str, area_code: str, areas: list[Area], of_kind: list[Contest], kinds: list[str]
) -> ContestArea | None:
    """areas: those of the area's lineage found, by level; of_kind: the contests of the kind
    over or under it, by region; kinds: the kinds of every contest over or under it."""
    area = areas[-1] if areas and areas[-1].code == area_code else None
    if area_code and (area is None or area.level == Level.TPS):
        return None
    if not of_kind:
        return None
    return ContestArea(kind, area_code, area, areas, of_kind, kinds)


def area_codes_down_to(level: int) -> list[str]:
    """The codes of every area from the provinsi down to `level` (regions.codes' numbering: 2
    down to the kabupaten), by code."""
    areas = Area.objects.filter(level__lte=level).order_by("code")  # the provinsi is level 1
    return list(areas.values_list("code", flat=True))


def contest_kinds_held(code: str) -> list[tuple[str, str]]:
    """(kind, name) of the contests held in an area or anywhere under it, by kind: a contest of a
    region above it covers it, one of a region below it is held in part of it."""
    over_or_under = Q(region_id__in=codes.lineage(code)) | Q(region__code__startswith=code)
    contests = Contest.objects.filter(over_or_under).order_by("kind", "region_id")
    return list(dict(contests.values_list("kind", "name")).items())


def tps_choices(region: str, limit: int) -> list[tuple[str, str]] | None:
    """(code, "TPS name, desa, kecamatan") of the TPS in a region, by code; None when there are
    more than `limit` (the person types the code instead)."""
    rows = Area.objects.filter(level=Level.TPS, code__startswith=region).order_by("code")
    found = list(
        rows.values_list("code", "name", "parent__name", "parent__parent__name")[: limit + 1]
    )
    if len(found) > limit:
        return None
    return [(code, f"{name}, {desa}, {kecamatan}") for code, name, desa, kecamatan in found]


class ListedCandidate(NamedTuple):
    area_code: str
    kpu_id: str
    name: str
    number: int
    colour: str
    listed_at: datetime


def candidates_of_kind(kind: str) -> list[ListedCandidate]:
    """The candidates of every contest of the kind, by area code, then ballot number. One
    query, of plain rows: a national list has thousands."""
    rows = Candidate.objects.filter(contest__kind=kind).order_by("area_id", "number")
    columns = ("area_id", "kpu_id", "name", "number", "colour", "listed_at")
    return [ListedCandidate(*row) for row in rows.values_list(*columns)]
