"""CPU per upload of marking uploads published: one statement per upload (upload_transition, as
the poller did before) against one per batch (upload_mark_published_many, as it does now).

    python -m benchmarks.poller_marks [--tps 20000] [--uploads 5000] [--batches 20,200]

In a throwaway database: a generated tree of --tps TPS with the five Pemilu contests opened over
every provinsi (as benchmarks.poller), then each way marks --uploads uploads picked at random,
twice, the ways alternating. Measured: CPU time of this process (time.process_time: the Python,
the driver, the log lines) and of its PostgreSQL backend (/proc/PID/stat, when the server runs on
this machine). The run ends with a recount: it exits 1 when a count is off.
"""

import argparse
import os
import random
import sys
import time
from collections.abc import Callable

from benchmarks.cpu import backend_pid, cpu_seconds
from benchmarks.poller import prepare
from benchmarks.throwaway import DEFAULT_NAME, bench_redis_url, machine, throwaway_database

BENCH_REDIS_DB = 7
IMAGES = ["https://images.example/a.jpg", "https://images.example/b.jpg"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tps", type=int, default=20_000)
    parser.add_argument("--uploads", type=int, default=5000, help="marked per way and turn")
    parser.add_argument("--batches", default="20,200", help="batch sizes, comma-separated")
    parser.add_argument("--database", default=DEFAULT_NAME, help="dropped, created, dropped")
    options = parser.parse_args()
    os.environ["REDIS_URL"] = bench_redis_url(BENCH_REDIS_DB)
    with throwaway_database(options.database):
        print(f"marking published at {options.tps:,} TPS x 5 contests, {options.uploads:,} "
              f"uploads per way and turn ({machine()})")  # fmt: skip
        prepare(options.tps)
        ok = _turns(options.uploads, [int(size) for size in options.batches.split(",")])
    sys.exit(0 if ok else 1)


def _turns(uploads: int, sizes: list[int]) -> bool:
    from uploads.models import Upload
    from uploads.progress.services import progress_fold, progress_recount

    ids = list(Upload.objects.values_list("pk", flat=True))
    random.Random(1).shuffle(ids)
    ways = [("one statement per upload", _one_by_one)]
    ways += [(f"one per batch of {size}", _batched(size)) for size in sizes]
    backend = backend_pid()
    for _turn in range(2):
        for name, way in ways:
            chosen, ids = ids[:uploads], ids[uploads:]
            way(chosen[:50])  # the statement prepared, the caches warm
            chosen = chosen[50:]
            before = time.process_time(), cpu_seconds(backend)
            way(chosen)
            after = time.process_time(), cpu_seconds(backend)
            python, postgres = (
                _per(start, end, len(chosen)) for start, end in zip(before, after, strict=True)
            )
            print(f"  {name}: this process {python}, PostgreSQL {postgres} ms per upload "
                  f"(load {os.getloadavg()[0]:.1f})", flush=True)  # fmt: skip
            progress_fold()
    drifts = progress_recount().drifts
    print(f"check: recount drift {len(drifts)}")
    return not drifts


def _one_by_one(ids: list[int]) -> None:
    """What upload_mark_published was: a statement per upload."""
    from uploads.services.publication import publishing
    from uploads.services.transitions import upload_transition

    for upload_id in ids:
        move = publishing()
        move["changes"] = {**(move.get("changes") or {}), "public_images": IMAGES}
        upload_transition(upload_id=upload_id, **move)


def _batched(size: int) -> Callable[[list[int]], None]:
    from uploads.services.publication import upload_mark_published_many

    def mark(ids: list[int]) -> None:
        for start in range(0, len(ids), size):
            upload_mark_published_many(images={pk: IMAGES for pk in ids[start : start + size]})

    return mark


def _per(start: float | None, end: float | None, uploads: int) -> str:
    return "n/a" if start is None or end is None else f"{(end - start) * 1000 / uploads:.3f}"


if __name__ == "__main__":
    main()
