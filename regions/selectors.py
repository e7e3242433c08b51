"""Reads of areas shared by the pages."""

from django.db.models import QuerySet

from regions.models import CODE_LENGTH, Area, Level


def area_breadcrumb(area: Area) -> list[Area]:
    """The area's ancestors from the provinsi down, then the area itself, in one query."""
    prefixes = [area.code[:length] for level, length in CODE_LENGTH.items() if level < area.level]
    ancestors = list(Area.objects.filter(code__in=prefixes).order_by("level"))
    return [*ancestors, area]


def area_children(code: str | None) -> QuerySet[Area]:
    """The areas one level down (the provinsi when code is None), by code."""
    if code is None:
        return Area.objects.filter(level=Level.PROVINSI).order_by("code")
    return Area.objects.filter(parent_id=code).order_by("code")
