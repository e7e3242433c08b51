"""How fast `generate_regions` writes the national tree (the issue asks for under 3 minutes).

python -m benchmarks.generate_regions [--tps 823236] [--database sirekap_bench]
"""

import argparse

from benchmarks.throwaway import DEFAULT_NAME, machine, throwaway_database, timed

NATIONAL_TPS = 823_236  # Pemilu 2024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tps", type=int, default=NATIONAL_TPS)
    parser.add_argument("--database", default=DEFAULT_NAME, help="dropped, created, dropped")
    options = parser.parse_args()
    with throwaway_database(options.database):
        print(f"generate_regions --tps {options.tps} ({machine()})")
        seconds, output = timed("generate_regions", "--tps", str(options.tps))
        print(f"{seconds:.1f} s; {output}")


if __name__ == "__main__":
    main()
