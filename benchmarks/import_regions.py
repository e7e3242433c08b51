"""How fast `import_regions` reads a Kemendagri-style CSV, first time and again (idempotent).

    python -m benchmarks.import_regions [--rows 100000] [--database sirekap_bench]

The CSV is the first --rows areas, in code order, of the synthetic national tree that
generate_regions writes (so a closed tree: Aceh, Sumatera Utara, ... down to their TPS), with
dotted codes as Kemendagri publishes them. The issue asks for 100,000 rows in under 30 s.

Django's own modules and the apps' are imported inside the functions that use them: the
benchmark points Django at a throwaway database (benchmarks.throwaway) before any is loaded.
"""

import argparse
import csv
import tempfile
from itertools import islice
from pathlib import Path

from benchmarks.throwaway import DEFAULT_NAME, machine, throwaway_database, timed

NATIONAL_TPS = 823_236
CODE_PIECES = [(0, 2), (2, 4), (4, 6), (6, 10), (10, 13)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database", default=DEFAULT_NAME, help="dropped, created, dropped")
    options = parser.parse_args()
    with throwaway_database(options.database), tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "wilayah.csv"
        rows = write_csv(path, rows=options.rows)
        print(f"import_regions, {rows} rows ({machine()})")
        for run in ("first import", "re-import"):
            seconds, output = timed("import_regions", str(path))
            print(f"{run}: {seconds:.1f} s, {rows / seconds:,.0f} rows/s; {output}")


def write_csv(path: Path, *, rows: int) -> int:
    from regions.synthetic import area_rows, national_shape

    shape = national_shape(tps=NATIONAL_TPS, seed=1)
    written = 0
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["kode", "nama"])
        for code, name, _level, _parent in islice(area_rows(shape, seed=1), rows):
            writer.writerow([dotted(code), name])
            written += 1
    return written


def dotted(code: str) -> str:
    return ".".join(code[start:end] for start, end in CODE_PIECES if end <= len(code))


if __name__ == "__main__":
    main()
