from datetime import datetime

from django import template
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from regions.zones import Zone, in_zone_text

register = template.Library()


@register.filter
def in_zone(value: datetime | None, zone: Zone) -> str:
    """A time in an area's zone with the zone's name: "27 Nov 06:10 WITA"."""
    return in_zone_text(value, zone)


@register.filter
def clock_in(value: datetime | None, zone: Zone) -> str:
    """The clock time in an area's zone, without date or zone name: "06:10"."""
    return "" if value is None else date_format(timezone.localtime(value, zone.info), "H:i")


@register.filter
def day_in(value: datetime | None, zone: Zone) -> str:
    """The day in an area's zone, in the active language: "28 Nov", "2 Des"."""
    return "" if value is None else date_format(timezone.localtime(value, zone.info), "j M")


@register.simple_tag
def area_url(site: str, kind: str, code: str = "") -> str:
    """The page of an area or TPS of a contest kind ("" the nation) on the staff dashboard
    (site "dashboard") or on the public pages (site "progress"): the shared parts link either."""
    if code:
        return reverse(f"{site}:area", args=[kind, code])
    return reverse(f"{site}:nation", args=[kind])


@register.filter
def within(code: str, region: str) -> bool:
    """Whether an area lies in a region ("" the nation): the links a scoped user may follow."""
    return code.startswith(region)
