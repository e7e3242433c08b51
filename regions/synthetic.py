"""A synthetic national tree of areas for benchmarks: the real shape, made-up names.

The upper levels always have the Pemilu 2024 counts (38 provinsi with their real KPU codes, 514
kabupaten/kota, 7,277 kecamatan, 83,731 kelurahan/desa); any number of TPS is then spread over
the desa with a skew, as in life, where a city kelurahan has dozens and a hamlet one. Codes have
the KPU's shape: kabupaten 01.., kota 71.., kecamatan 01.., kelurahan 1001.., desa 2001..,
TPS 001... The same seed gives the same tree.
"""

import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from django.db import connection, transaction

from regions.demo import split_proportionally
from regions.models import Level
from regions.services import ImportSummary

# The real KPU codes: Sumatera 11-21, Jawa 31-36, Bali and Nusa Tenggara 51-53, Kalimantan 61-65,
# Sulawesi 71-76, Maluku 81-82, Papua 91-96.
PROVINSI_RANGES = [(11, 19), (21, 21), (31, 36), (51, 53), (61, 65), (71, 76), (81, 82), (91, 96)]
PROVINSI_CODES = [str(code) for first, last in PROVINSI_RANGES for code in range(first, last + 1)]
KABUPATEN_TOTAL = 514
KECAMATAN_TOTAL = 7_277
DESA_TOTAL = 83_731
MAX_TPS_PER_DESA = 999  # the TPS number has 3 digits
MAX_TPS = MAX_TPS_PER_DESA * DESA_TOTAL

# Caps that keep every code inside its digits: kabupaten 01..70 and kota 71..99 per provinsi,
# kecamatan 01..99, kelurahan 1001..1999 and desa 2001..2999 per kecamatan.
KABUPATEN_PER_PROVINSI = 60
KOTA_PER_PROVINSI = 29
KECAMATAN_PER_KABUPATEN = 99
DESA_PER_KECAMATAN = 999

ONSETS = ["b", "c", "d", "g", "j", "k", "l", "m", "n", "p", "r", "s", "t", "w", "ng", "ny"]
VOWELS = "aaaiiuueo"  # a as often as in Indonesian
CODAS = ["", "", "", "", "n", "ng", "r", "t", "k", "h", "s", "m"]
PREFIXES = ["SUNGAI", "TANJUNG", "BUKIT", "KAMPUNG", "MUARA", "SIDO", "SUKA", "KARANG", "TELUK"]
SUFFIXES = ["UTARA", "SELATAN", "TIMUR", "BARAT", "TENGAH", "JAYA", "MAKMUR", "BARU", "HILIR"]
TPS_NAMES = [f"TPS {number:03d}" for number in range(MAX_TPS_PER_DESA + 1)]


@dataclass(frozen=True)
class Shape:
    """How many children each area has, per level in code order (the tree without names)."""

    kabupaten: list[tuple[int, int]]  # per provinsi: (kabupaten, kota)
    kecamatan: list[int]  # per kabupaten/kota
    desa: list[tuple[int, int]]  # per kecamatan: (kelurahan, desa)
    tps: list[int]  # per kelurahan/desa

    def per_level(self) -> Counter:
        return Counter(
            {
                Level.PROVINSI: len(self.kabupaten),
                Level.KABUPATEN: len(self.kecamatan),
                Level.KECAMATAN: len(self.desa),
                Level.DESA: len(self.tps),
                Level.TPS: sum(self.tps),
            }
        )


@transaction.atomic
def areas_generate(*, tps: int, seed: int) -> ImportSummary:
    """Writes the synthetic tree with `tps` TPS into an empty area table, all or nothing.

    It refuses when any area exists: synthetic areas merged into real ones (or into another
    seed's) would be neither, and existing areas may carry uploads, so none is ever replaced.
    """
    check_tps(tps)
    with connection.cursor() as cursor:
        # This mode conflicts with itself and with writers: a concurrent run waits for ours to
        # commit, then sees our areas and refuses.
        cursor.execute("LOCK TABLE regions_area IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute("SELECT count(*) FROM regions_area")
        (existing,) = cursor.fetchone()
        if existing:
            raise ValueError(
                f"the database already has {existing} areas; generate_regions fills an empty "
                "one only: point DATABASE_URL at a fresh database"
            )
        shape = national_shape(tps=tps, seed=seed)
        # cursor.cursor is psycopg's own cursor, which speaks COPY and streams as we write.
        copy_sql = "COPY regions_area (code, name, level, parent_id) FROM STDIN"
        with cursor.cursor.copy(copy_sql) as copy:
            for row in area_rows(shape, seed=seed):
                copy.write_row(row)
    per_level = shape.per_level()
    return ImportSummary(per_level=per_level, created=per_level.total(), renamed=0)


def check_tps(tps: int) -> None:
    if not 1 <= tps <= MAX_TPS:
        raise ValueError(
            f"the number of TPS must be between 1 and {MAX_TPS} ({MAX_TPS_PER_DESA} in each of "
            f"the {DESA_TOTAL} kelurahan/desa), got {tps}"
        )


def national_shape(*, tps: int, seed: int) -> Shape:
    rng = random.Random(seed)
    sizes = _sizes(KABUPATEN_TOTAL, len(PROVINSI_CODES), KABUPATEN_PER_PROVINSI, rng, skew=0.5)
    kabupaten = [_kabupaten_and_kota(size, rng) for size in sizes]
    kecamatan = _sizes(KECAMATAN_TOTAL, KABUPATEN_TOTAL, KECAMATAN_PER_KABUPATEN, rng, skew=0.5)
    sizes = _sizes(DESA_TOTAL, KECAMATAN_TOTAL, DESA_PER_KECAMATAN, rng, skew=0.7)
    desa = _kelurahan_and_desa(kabupaten, kecamatan, sizes)
    # Every real desa has a TPS; only a run too small to give each one leaves some without.
    floor = 1 if tps >= DESA_TOTAL else 0
    tps_per_desa = _sizes(tps, DESA_TOTAL, MAX_TPS_PER_DESA, rng, skew=0.8, floor=floor)
    return Shape(kabupaten=kabupaten, kecamatan=kecamatan, desa=desa, tps=tps_per_desa)


def spread(total: int, weights: list[int], cap: int) -> list[int]:
    """total split in proportion to weights with no part above cap (total <= cap * parts)."""
    counts = [0] * len(weights)
    open_parts = list(range(len(weights)))
    while total:
        shares = split_proportionally(total, [weights[index] for index in open_parts])
        total = 0
        for index, share in zip(open_parts, shares, strict=True):
            kept = min(counts[index] + share, cap)
            total += counts[index] + share - kept
            counts[index] = kept
        open_parts = [index for index in open_parts if counts[index] < cap]
    return counts


def _sizes(
    total: int, parts: int, cap: int, rng: random.Random, *, skew: float, floor: int = 1
) -> list[int]:
    weights = _weights(parts, rng, skew)
    return [floor + count for count in spread(total - floor * parts, weights, cap - floor)]


def _weights(parts: int, rng: random.Random, skew: float) -> list[int]:
    # Log-normal, as sizes of places are: most near the mean, a few several times larger.
    return [1 + round(1000 * rng.lognormvariate(0, skew)) for _ in range(parts)]


def _kabupaten_and_kota(size: int, rng: random.Random) -> tuple[int, int]:
    kota = min(KOTA_PER_PROVINSI, round(size * rng.uniform(0.05, 0.35)))
    return size - kota, kota


def _kelurahan_and_desa(
    kabupaten: list[tuple[int, int]], kecamatan: list[int], sizes: list[int]
) -> list[tuple[int, int]]:
    """A kota has kelurahan only; a kabupaten has desa, and kelurahan in its seat (kecamatan 01)."""
    sizes_left = iter(sizes)
    result = []
    kinds = (is_kota for kab, kota in kabupaten for is_kota in [False] * kab + [True] * kota)
    for is_kota, kecamatan_count in zip(kinds, kecamatan, strict=True):
        for number in range(kecamatan_count):
            size = next(sizes_left)
            kelurahan = size if is_kota else (size // 2 if number == 0 else 0)
            result.append((kelurahan, size - kelurahan))
    return result


def area_rows(shape: Shape, *, seed: int) -> Iterator[tuple[str, str, int, str | None]]:
    """(code, name, level, parent code) in code order, parents first, one row at a time."""
    names = _Names(random.Random(f"{seed}:names"))
    kecamatan_sizes = iter(shape.kecamatan)
    desa_sizes = iter(shape.desa)
    tps_sizes = iter(shape.tps)
    for provinsi, (kabupaten, kota) in zip(PROVINSI_CODES, shape.kabupaten, strict=True):
        yield provinsi, names.provinsi(), Level.PROVINSI, None
        numbers = [*range(1, kabupaten + 1), *range(71, 71 + kota)]
        for number in numbers:
            code = f"{provinsi}{number:02d}"
            name = f"KOTA {names.place()}" if number > 70 else f"KABUPATEN {names.place()}"
            yield code, name, Level.KABUPATEN, provinsi
            yield from _kecamatan_rows(code, next(kecamatan_sizes), desa_sizes, tps_sizes, names)


def _kecamatan_rows(
    kabupaten: str,
    count: int,
    desa_sizes: Iterator[tuple[int, int]],
    tps_sizes: Iterator[int],
    names: "_Names",
) -> Iterator[tuple]:
    for number in range(1, count + 1):
        code = f"{kabupaten}{number:02d}"
        yield code, names.place(), Level.KECAMATAN, kabupaten
        kelurahan, desa = next(desa_sizes)
        for suffix in [*range(1001, 1001 + kelurahan), *range(2001, 2001 + desa)]:
            desa_code = f"{code}{suffix}"
            yield desa_code, names.village(), Level.DESA, code
            for tps in range(1, next(tps_sizes) + 1):
                yield f"{desa_code}{tps:03d}", TPS_NAMES[tps], Level.TPS, desa_code


class _Names:
    """Indonesian-looking names from syllables, drawn from their own random sequence."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def word(self) -> str:
        choice = self.rng.choice
        syllables = [choice(ONSETS) + choice(VOWELS) for _ in range(self.rng.randint(2, 3))]
        return ("".join(syllables) + choice(CODAS)).upper()

    def provinsi(self) -> str:
        return self.word() if self.rng.random() < 0.6 else f"{self.word()} {self.suffix()}"

    def place(self) -> str:
        roll = self.rng.random()
        if roll < 0.7:
            return self.word()
        if roll < 0.85:
            return f"{self.word()} {self.suffix()}"
        return f"{self.word()} {self.word()}"

    def village(self) -> str:
        roll = self.rng.random()
        if roll < 0.55:
            return self.word()
        if roll < 0.8:
            return f"{self.rng.choice(PREFIXES)} {self.word()}"
        return f"{self.word()} {self.suffix()}"

    def suffix(self) -> str:
        return self.rng.choice(SUFFIXES)
