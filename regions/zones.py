"""The time zone an area lives in, from its provinsi code: times are stored in UTC and shown in
the area's own zone with its Indonesian name (WIB, WITA, WIT), as the KPU and the press do."""

import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import get_language


@dataclass(frozen=True)
class Zone:
    name: str  # WIB, WITA or WIT
    info: ZoneInfo


WIB = Zone("WIB", ZoneInfo("Asia/Jakarta"))
WITA = Zone("WITA", ZoneInfo("Asia/Makassar"))
WIT = Zone("WIT", ZoneInfo("Asia/Jayapura"))

# Bali and Nusa Tenggara (51-53), South, East and North Kalimantan (63-65) and Sulawesi (71-76)
# keep central time; Maluku and Papua (8x, 9x) eastern; the rest, and the nation's own pages
# (Jakarta's), western.
_WITA_PROVINSI = {"51", "52", "53", "63", "64", "65", "71", "72", "73", "74", "75", "76"}


def zone_of_area(code: str) -> Zone:
    """The zone of an area by its KPU code ("" is the nation: WIB, the capital's)."""
    provinsi = code[:2]
    if provinsi in _WITA_PROVINSI:
        return WITA
    if provinsi[:1] in ("8", "9"):
        return WIT
    return WIB


def in_zone_text(moment: datetime | None, zone: Zone) -> str:
    """A time in a zone with the zone's name, in the active language: "27 Nov 06:10 WITA"."""
    if moment is None:
        return ""
    return _minute_in_zone(int(moment.timestamp() // 60), zone, get_language())


@functools.lru_cache(maxsize=4096)
def _minute_in_zone(minute: int, zone: Zone, language: str) -> str:
    """in_zone_text of a minute (since the epoch) in the active language (the key): a stuck list
    shows the same minutes at every poll, and date_format reads its format anew each time
    (about 50 µs, twice a row)."""
    moment = datetime.fromtimestamp(minute * 60, UTC)
    return f"{date_format(timezone.localtime(moment, zone.info), 'j M H:i')} {zone.name}"
