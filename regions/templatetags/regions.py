from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.formats import date_format

from regions.zones import Zone

register = template.Library()


@register.filter
def in_zone(value: datetime | None, zone: Zone) -> str:
    """A time in an area's zone with the zone's name: "27 Nov 06:10 WITA"."""
    if value is None:
        return ""
    return f"{date_format(timezone.localtime(value, zone.info), 'j M H:i')} {zone.name}"
