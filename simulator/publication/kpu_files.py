"""The public site's JSON in the KPU's shape: its paths, the contest trees behind them, area and
TPS files, region lists and the KPU's rounding of percentages (docs/kpu-format.md)."""

import json
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from regions.codes import level_of, parent_code

PILKADA = frozenset({"pkwkp", "pkwkk"})
PEMILU = frozenset({"ppwp", "pdpr", "pdpd", "pdprdp", "pdprdk"})
CODE_LENGTHS = (2, 4, 6, 10, 13)
TPS_LENGTH = 13
WIB = ZoneInfo("Asia/Jakarta")
PSU = "Reguler"

# --- Areas and the public site's paths.


def lineage(code: str) -> list[str]:
    """The national key "", every ancestor of code, then code itself."""
    return ["", *(code[:length] for length in CODE_LENGTHS if length <= len(code))]


def election_of(kind: str) -> str | None:
    if kind in PILKADA:
        return "pilkada"
    return "pemilu" if kind in PEMILU else None


@dataclass(frozen=True)
class DataTarget:
    view: str  # "hhcw" (progress) or "wilayah" (region list)
    kind: str
    code: str  # "" for national


def data_target(path: str) -> DataTarget | None:
    """What a /data/... path asks for, or None when it is not a path of the public site."""
    if not path.startswith("/data/") or not path.endswith(".json"):
        return None
    parts = path.removeprefix("/data/").removesuffix(".json").split("/")
    if parts[0] == "wilayah" and len(parts) >= 4:
        codes = [] if parts[3:] == ["0"] else parts[3:]
        return _target("wilayah", parts[1], parts[2], codes, deepest=4)
    if len(parts) >= 3 and parts[1] == "hhcw":
        return _target("hhcw", parts[0], parts[2], parts[3:], deepest=5)
    return None


def _target(view: str, election: str, kind: str, codes: list[str], deepest: int):
    if election_of(kind) != election or len(codes) > deepest:
        return None
    for depth, code in enumerate(codes):
        above = codes[depth - 1] if depth else ""
        if len(code) != CODE_LENGTHS[depth] or not code.isdecimal() or not code.startswith(above):
            return None
    return DataTarget(view, kind, codes[-1] if codes else "")


# --- The contest trees: the areas each contest covers, with TPS counts.


@dataclass(frozen=True)
class ContestTree:
    """The areas one contest kind covers: every TPS under its regions, and everything above."""

    names: dict[str, str]
    children: dict[str, tuple[str, ...]]  # parent code ("" for national) -> child codes
    totals: dict[str, int]  # code ("" for national) -> TPS under it

    def covers(self, code: str) -> bool:
        return code in self.totals


def tree_build(regions: Iterable[str], names: dict[str, str]) -> ContestTree:
    regions = set(regions)
    above = {prefix for region in regions for prefix in lineage(region)}
    codes = sorted(
        code
        for code in names
        if code in above or any(prefix in regions for prefix in lineage(code))
    )
    children = defaultdict(list)
    totals = dict.fromkeys(["", *codes], 0)
    for code in codes:
        children[parent_code(code)].append(code)
        if len(code) == TPS_LENGTH:
            for prefix in lineage(code):
                totals[prefix] += 1
    return ContestTree(names, {code: tuple(kids) for code, kids in children.items()}, totals)


# --- The public JSON, from a tree and the published counts.


def percent_half_up(published: int, total: int) -> float:
    """Percent rounded half-up to two decimals, as the KPU's site shows it (290/293: 98.98)."""
    if not total:
        return 0.0
    exact = Decimal(published * 100) / Decimal(total)
    return float(exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def progress(total: int, published: int) -> dict:
    return {"total": total, "persen": percent_half_up(published, total), "progres": published}


def area_row(total: int, published: int, *, pemilu: bool) -> dict:
    if pemilu:
        return {"psu": PSU, "persen": percent_half_up(published, total), "status_progress": True}
    return {"psu": PSU, "progres": progress(total, published), "status_progress": True}


def area_file(tree: ContestTree, published: Counter, code: str, *, pemilu: bool, ts: str) -> dict:
    total, done = tree.totals[code], published[code]
    chart = {"progres": progress(total, done)}
    table = {
        child: area_row(tree.totals[child], published[child], pemilu=pemilu)
        for child in tree.children.get(code, ())
    }
    result: dict = {"mode": "hhcw"}
    if pemilu:
        result.update(chart=chart, table=table)
    else:
        result["tungsura"] = {"chart": chart, "table": table}
    result.update(psu=PSU, progres={"total": total, "progres": done}, ts=ts)
    return result


def tps_file(images: list[str] | None, *, pemilu: bool, ts: str) -> dict:
    """One TPS; images is None while nothing is visible."""
    published = images is not None
    result: dict = {"mode": "hhcw"}
    if pemilu:
        result.update(chart={} if published else None, administrasi=None)
    else:
        result["tungsura"] = {"chart": {}, "administrasi": None} if published else None
    result.update(images=images or [], psu=PSU, ts=ts)
    result.update(status_suara=published, status_adm=published)
    return result


def area_id(code: str) -> int:
    """A stable integer standing in for the KPU's internal id (deliberately not the code)."""
    return zlib.crc32(code.encode())


def wilayah_list(tree: ContestTree, code: str) -> list[dict]:
    return [
        {
            "nama": tree.names[child],
            "id": area_id(child),
            "kode": child,
            "tingkat": level_of(child),
        }
        for child in tree.children.get(code, ())
    ]


def wib_text(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, WIB).strftime("%Y-%m-%d %H:%M:%S")


def json_bytes(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
