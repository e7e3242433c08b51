import functools
from datetime import datetime

from django import template
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import get_language

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
    if code.isascii() and code.isdigit():
        before, after = _area_url_around(
            site, kind, get_language(), get_script_prefix(), settings.ROOT_URLCONF, get_urlconf()
        )
        return f"{before}{code}{after}"
    if code:
        return reverse(f"{site}:area", args=[kind, code])
    return reverse(f"{site}:nation", args=[kind])


# What stands for the code in _area_url_around: letters, never in a code, which is digits.
_CODE = "CODE"


@receiver(setting_changed, dispatch_uid="regions-area-urls-forget")
def _area_urls_forget(**kwargs) -> None:
    """A setting changed (a test's): the languages' prefixes may have."""
    _area_url_around.cache_clear()


@functools.lru_cache(maxsize=256)
def _area_url_around(site: str, kind: str, *where: object) -> tuple[str, str]:
    """An area's URL on either side of its code, the same for every area of the kind in one
    language and URLconf (where): a table of areas links each without a reverse() per row."""
    before, _, after = reverse(f"{site}:area", args=[kind, _CODE]).rpartition(_CODE)
    return before, after


@register.filter
def within(code: str, region: str) -> bool:
    """Whether an area lies in a region ("" the nation): the links a scoped user may follow."""
    return code.startswith(region)
