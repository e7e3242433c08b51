"""The KPU's public JSON (docs/kpu-format.md): where its files are, and reading them; the
constants our own files in that format share (public.opendata, the stand-in in simulator/).

The KPU's keys (`progres`, `tungsura`, `persen`, `ts`) live here and in the code that writes our
copies; everywhere else the same things are called by our own words (published, total, ...).
Reading is pure (no HTTP, no database) and strict: anything missing, null or mistyped raises
Unusable saying what, or is noted as a problem, so a caller can log it with its URL and go on.
"""

import json
from dataclasses import dataclass, field
from datetime import datetime

from regions import codes
from regions.zones import WIB

# The KPU marks re-votes (pemungutan suara ulang) here; we track regular voting only.
PSU = "Reguler"
# `ts`: local time in WIB, as the KPU writes it.
TS_FORMAT = "%Y-%m-%d %H:%M:%S"


class Unusable(Exception):
    """A reply we cannot use: an HTTP error, invalid JSON, a field missing, null or mistyped."""


def hhcw_path(kind: str, code: str) -> str:
    """An area's progress file under the data root ("" the nation), such as
    pilkada/hhcw/pkwkk/64/6409.json."""
    family = codes.election_of(kind)
    if not code:
        return f"{family}/hhcw/{kind}.json"
    return f"{family}/hhcw/{kind}/{'/'.join(codes.lineage(code))}.json"


def ts_text(moment: datetime) -> str:
    """A time as the KPU writes `ts`: local time in WIB, "2024-11-28 06:00:00"."""
    return moment.astimezone(WIB.info).strftime(TS_FORMAT)


def ts_time(ts: str) -> datetime | None:
    """The KPU's `ts` as a time, or None when it is not one."""
    try:
        return datetime.strptime(ts, TS_FORMAT).replace(tzinfo=WIB.info)
    except ValueError:
        return None


@dataclass
class AreaFigures:
    """What an area's file says of the area itself and (unchecked) of its children."""

    total: int | None
    published: int | None
    ts: str
    # The table: one row per child area, keyed by the child's code, not yet checked.
    rows: dict
    problems: list[str] = field(default_factory=list)


def json_object(content: bytes) -> dict:
    try:
        data = json.loads(content)
    except ValueError as error:
        raise Unusable(f"invalid JSON ({error})") from None
    if not isinstance(data, dict):
        raise Unusable(f"the file is {describe(data)}, not an object")
    return data


def area_figures(kind: str, data: dict) -> AreaFigures:
    """An area's own figures and its table. Pilkada files nest chart and table in `tungsura`;
    Pemilu files have them on top."""
    holder = data.get("tungsura") if kind in codes.PILKADA_KINDS else data
    if not isinstance(holder, dict):
        raise Unusable(f"tungsura is {describe(holder)}, not an object")
    rows = holder.get("table")
    if not isinstance(rows, dict):
        raise Unusable(f"table is {describe(rows)}, not an object")
    problems: list[str] = []
    progres = data.get("progres")
    chart = holder.get("chart")
    if progres is None and isinstance(chart, dict):
        progres = chart.get("progres")  # Pilkada files carry the figures in the chart too
    total = published = None
    if isinstance(progres, dict):
        total = _count_or_note(progres, "total", problems)
        published = _count_or_note(progres, "progres", problems)
    else:
        problems.append(f"progres is {describe(progres)}, not an object")
    ts = data.get("ts")
    return AreaFigures(total, published, ts[:40] if isinstance(ts, str) else "", rows, problems)


def row_published(row: object, our_total: int | None) -> int:
    """A child's published count from its table row.

    Pemilu rows may carry only `persen`; the child's TPS count (ours: the same TPS as the site's)
    turns it back into a count. The site rounds persen to two decimals, which identifies the
    count exactly below 10,000 TPS, i.e. for every area below a provinsi.
    """
    if not isinstance(row, dict):
        raise Unusable(f"is {describe(row)}, not an object")
    progres = row.get("progres")
    if progres is not None:
        if not isinstance(progres, dict):
            raise Unusable(f"progres is {describe(progres)}, not an object")
        return count(progres.get("progres"), "progres.progres")
    persen = row.get("persen")
    if isinstance(persen, bool) or not isinstance(persen, int | float):
        persen = None
    if persen is not None and our_total is not None and 0 <= persen <= 100:
        return round(persen * our_total / 100)
    raise Unusable(f"has neither progres nor a persen (persen is {describe(persen)})")


def count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Unusable(f"{name} is {describe(value)}, not a count")
    return value


def _count_or_note(progres: dict, key: str, problems: list[str]) -> int | None:
    try:
        return count(progres.get(key), f"progres.{key}")
    except Unusable as problem:
        problems.append(str(problem))
        return None


def describe(value: object) -> str:
    """A short description of a JSON value for a log line."""
    if value is None:
        return "missing or null"
    text = json.dumps(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"
