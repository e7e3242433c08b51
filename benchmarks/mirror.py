"""What mirroring the public snapshot to a bucket costs: the refresh with it and without, and the
puts (public/mirror.py), against a real S3 API on loopback (moto's threaded server).

    python -m benchmarks.mirror [--rounds 5] [--changes 200]

In a throwaway database: the PPU demo (its 2 contests over 1 kabupaten, 4 kecamatan, 54 desa and
293 TPS), every area's and TPS's page (Indonesian and English), poll part, hhcw file and CSV
built as first requests build them. Then, --rounds times each way, --changes random status
changes and a refresh of what they touched, without the mirror and with it (the refresh then
also records what each object should be): the refresh's time per area either way. Last, the
puts: everything once (the first push), then what the changes of a round touched.

Django's own modules and the apps' are imported inside the functions that use them: the
benchmark points Django at a throwaway database (benchmarks.throwaway) before any is loaded.
"""

import argparse
import random
import statistics
import tempfile
import time
from io import StringIO
from pathlib import Path

from benchmarks.throwaway import DEFAULT_NAME, machine, throwaway_database
from tests.nginx import free_port

BUCKET = "sirekap-bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--database", default=DEFAULT_NAME, help="dropped, created, dropped")
    options = parser.parse_args()
    with throwaway_database(options.database):
        from moto.server import ThreadedMotoServer

        port = free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            with tempfile.TemporaryDirectory(prefix="sirekap-bench-mirror-") as folder:
                _run(options, f"http://127.0.0.1:{port}", Path(folder))
        finally:
            server.stop()


def _run(options, endpoint: str, folder: Path) -> None:
    import logging

    import boto3
    from django.conf import settings
    from django.core.management import call_command

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    settings.SNAPSHOT_ROOT = str(folder / "snapshots")
    # Every entry counts as read for the whole run, as every mirrored one does: the same
    # entries are rebuilt with the mirror and without.
    settings.SNAPSHOT_READ_WINDOW_SECONDS = 10**9
    settings.STATIC_ROOT = str(folder / "static")
    call_command("collectstatic", "--no-input", verbosity=0)
    call_command("load_demo", stdout=StringIO())
    print(f"the public mirror, PPU demo, {options.changes} changes a round ({machine()})")
    boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="bench", aws_secret_access_key="bench",
    ).create_bucket(Bucket=BUCKET)  # fmt: skip
    mirrored = {
        "bucket": BUCKET, "endpoint_url": endpoint, "region": "us-east-1",
        "access_key": "bench", "secret_key": "bench", "base_url": "https://bench.example.org",
    }  # fmt: skip
    _build_every_entry()
    rng = random.Random(1)
    off, on = [], []
    for _ in range(options.rounds):
        settings.PUBLIC_S3 = None
        off.append(_refresh_after(options.changes, rng))
        settings.PUBLIC_S3 = mirrored
        on.append(_refresh_after(options.changes, rng))
    for name, rounds in [("without the mirror", off), ("with it", on)]:
        per_area = statistics.median(seconds / areas * 1000 for seconds, areas in rounds)
        print(f"refresh {name}: {per_area:.1f} ms an area (median of {len(rounds)} rounds)")
    settings.PUBLIC_S3 = mirrored
    call_command("refresh_public_snapshot", "--all", stdout=StringIO())  # every entry wanted
    _push("first push, everything")
    _refresh_after(options.changes, rng)
    _push(f"after {options.changes} changes")


def _build_every_entry() -> None:
    from public.entries import page_name
    from public.services import snapshot_entry, snapshot_refresh_all
    from public.snapshots import Key
    from regions.models import Area

    names = [page_name(language=language, part=part, sort="code")
             for language in ("id", "en") for part in ("page", "live")]  # fmt: skip
    codes = ["", *Area.objects.filter(code__startswith="64").values_list("code", flat=True)]
    started = time.perf_counter()
    for code in codes:
        for name in [*names, "hhcw.json", "progress.csv"]:
            if len(code) < 13 or name != "progress.csv":
                snapshot_entry(Key("pkwkk", code, name))
    print(f"built the entries of {len(codes)} areas in {time.perf_counter() - started:.1f} s")
    snapshot_refresh_all(budget_seconds=float("inf"))


def _refresh_after(changes: int, rng: random.Random) -> tuple[float, int]:
    from public.services import snapshot_refresh
    from uploads.models import Status, Upload
    from uploads.services.transitions import upload_transition

    uploads = list(Upload.objects.filter(contest__kind="pkwkk").values_list("pk", flat=True))
    for upload_id in rng.sample(uploads, changes):
        upload_transition(
            upload_id=upload_id,
            expected=tuple(Status.values),
            new=rng.choice([Status.QUEUED, Status.DELIVERED, Status.PUBLISHED]),
            action="bench",
        )
    refresh = snapshot_refresh("pkwkk", budget_seconds=float("inf"))
    assert refresh is not None
    return refresh.seconds, max(refresh.rebuilt, 1)


def _push(what: str) -> None:
    from public.mirror import mirror_push

    push = mirror_push(budget_seconds=float("inf"))
    assert push is not None and push.failed == 0 and push.left == 0, push
    rate = (push.put + push.deleted) / push.seconds
    print(f"{what}: {push.put} objects put in {push.seconds:.1f} s, {rate:.0f} objects/s")


if __name__ == "__main__":
    main()
