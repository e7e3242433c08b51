"""Server time of the dashboard pages at national scale.

    python -m benchmarks.dashboard [--tps 823236] [--requests 200] [--changes 20000] [--stuck 0]
                                   [--templates] [--statements]

In a throwaway database: the synthetic national tree, five Pemilu contests over each of the 38
provinsi (4.1 million uploads at 823,236 TPS), --changes random status changes through
`upload_transition` and one stuck flag in ten of them, folded, with timeline snapshots, and
--stuck more stuck flags (a bad night's thousands). Then,
through Django's test client in this process (the whole request: middleware, session, queries,
template; no network), the national, a random provinsi and a random kabupaten page of ppwp (each
a state nobody has seen yet: its live part rendered), the national page again as the next staff
member opening it gets it (its live part shared, dashboard.shared_parts), the HTMX poll fragment
of a kabupaten, that fragment answered 304, and the national poll fragment rendered afresh and
as shared with the next staff member polling the same state; with --templates, the national
page's CPU and each template's share of it; with --statements, each page's SQL time statement
by statement. The issue asks for
pages at most 50 ms and a poll fragment at most 20 ms at the 95th percentile.

Django's own modules and the apps' are imported inside the functions that use them: the
benchmark points Django at a throwaway database (benchmarks.throwaway) before any is loaded.
"""

import argparse
import random
import time
from datetime import timedelta

from benchmarks.progress import KINDS, NATIONAL_TPS, _percentiles, load_data
from benchmarks.throwaway import DEFAULT_NAME, machine, throwaway_database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tps", type=int, default=NATIONAL_TPS)
    parser.add_argument("--requests", type=int, default=200, help="per case")
    parser.add_argument("--changes", type=int, default=20_000)
    parser.add_argument(
        "--stuck",
        type=int,
        default=0,
        help="more uploads flagged stuck after the changes: a bad night has thousands "
        "(0.5%% of 4.1 million documents never accepted is 20,000)",
    )
    parser.add_argument("--database", default=DEFAULT_NAME, help="dropped, created, dropped")
    parser.add_argument(
        "--templates", action="store_true", help="the national page's CPU, template by template"
    )
    parser.add_argument(
        "--statements", action="store_true", help="each page's SQL time, statement by statement"
    )
    options = parser.parse_args()
    with throwaway_database(options.database):
        print(f"dashboard at {options.tps:,} TPS x {len(KINDS)} contests ({machine()})")
        load_data(options.tps)
        liven_up(options.changes)
        flag_stuck(options.stuck)
        for case, timings in measure(options.requests).items():
            print(f"{case}: {_percentiles(timings)} ({len(timings)} requests)")
        if options.templates:
            template_costs(options.requests)
        if options.statements:
            statement_costs(options.requests)


def liven_up(changes: int) -> None:
    """Random statuses and stuck flags all over the country, as on election night, in three
    rounds ten minutes of snapshots apart, so that the timelines have points to draw."""
    from django.utils import timezone

    from uploads.models import Status, StuckReason
    from uploads.progress.services import progress_fold, timeline_point_take
    from uploads.services.stuck import upload_mark_stuck
    from uploads.services.transitions import upload_transition

    rng = random.Random(1)
    first, last = _upload_ids()
    started = time.perf_counter()
    for minutes_ago in (30, 20, 10):
        for number in range(changes // 3):
            upload_id = rng.randint(first, last)
            new = rng.choice([Status.PUBLISHED, Status.DELIVERED, Status.RETRYING, Status.QUEUED])
            upload_transition(
                upload_id=upload_id, expected=(Status.MISSING,), new=new, action="bench"
            )
            if number % 10 == 0 and new != Status.PUBLISHED:
                upload_mark_stuck(upload_id=upload_id, reason=StuckReason.NETWORK)
        progress_fold()
        timeline_point_take(at=timezone.now() - timedelta(minutes=minutes_ago))
    took = time.perf_counter() - started
    print(f"{changes:,} status changes, a tenth of them stuck, and 3 snapshots in {took:.1f} s")


def flag_stuck(uploads: int) -> None:
    """Flags that many more random uploads stuck, each through upload_mark_stuck, then folds
    the counts: the stuck lists of every page have thousands to choose their 25 from."""
    if not uploads:
        return
    from uploads.models import StuckReason
    from uploads.progress.services import progress_fold
    from uploads.services.stuck import upload_mark_stuck

    rng = random.Random(3)
    first, last = _upload_ids()
    started, flagged = time.perf_counter(), 0
    while flagged < uploads:
        upload_id = rng.randint(first, last)
        flagged += upload_mark_stuck(upload_id=upload_id, reason=StuckReason.NETWORK)
    progress_fold()
    print(f"{uploads:,} more uploads flagged stuck in {time.perf_counter() - started:.1f} s")


def _upload_ids() -> tuple[int, int]:
    """The first and last upload id, between which random ones are picked."""
    from uploads.models import Upload

    ids = Upload.objects.order_by("pk").values_list("pk", flat=True)
    return ids[0], ids.reverse()[0]


def staff_client(username: str):
    """Django's test client, logged in as a new national staff member."""
    from django.conf import settings
    from django.test import Client

    from accounts.services import operator_create  # after django.setup()

    if "testserver" not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    client = Client()
    client.force_login(operator_create(username=username, role="staff"))
    return client


def measure(requests: int) -> dict[str, list[float]]:
    from regions.models import Area, Level

    client = staff_client("bench")
    provinsi = list(Area.objects.filter(level=Level.PROVINSI).values_list("code", flat=True))
    kabupaten = list(Area.objects.filter(level=Level.KABUPATEN).values_list("code", flat=True))
    rng = random.Random(2)
    fragment = {"HX-Request": "true"}
    cases = {
        "national page": lambda: _afresh("/dashboard/ppwp/", {}),
        "provinsi page": lambda: _afresh(f"/dashboard/ppwp/{rng.choice(provinsi)}/", {}),
        "kabupaten page": lambda: _afresh(f"/dashboard/ppwp/{rng.choice(kabupaten)}/", {}),
        "national page, its live part shared (the next staff member's)": lambda: (
            "/dashboard/ppwp/",
            {},
        ),
        "kabupaten poll fragment": lambda: (f"/dashboard/ppwp/{rng.choice(kabupaten)}/", fragment),
        "kabupaten poll, unchanged (304)": lambda: _unchanged(client, rng.choice(kabupaten)),
        "national poll fragment, rendered": lambda: _afresh("/dashboard/ppwp/", fragment),
        "national poll fragment, shared (the next staff member's)": lambda: (
            "/dashboard/ppwp/",
            fragment,
        ),
    }
    return {
        name: [_timed(client, *case()) for _ in range(requests)] for name, case in cases.items()
    }


def template_costs(requests: int) -> None:
    """The national page's CPU (this thread's: the page's own work, not PostgreSQL's) and, for
    each template, the CPU of its rendering, what it includes counted in (a page's layout holds
    everything below it but its live part, rendered apart and kept: dashboard.views._rendered);
    each page a state nobody has seen yet."""
    from django.template.base import Template

    client = staff_client("bench-templates")
    spent: dict[str, float] = {}
    render = Template._render

    def counted(template, context):
        started = time.thread_time()
        try:
            return render(template, context)
        finally:
            name = template.origin.template_name if template.origin else "(from a string)"
            spent[name] = spent.get(name, 0.0) + time.thread_time() - started

    page_cpu = []
    Template._render = counted
    try:
        for _ in range(requests):
            _forget_live_parts()
            started = time.thread_time()
            status = client.get("/dashboard/ppwp/").status_code
            page_cpu.append((time.thread_time() - started) * 1000)
            if status != 200:
                raise SystemExit(f"error: the national page answered {status}, expected 200")
    finally:
        Template._render = render
    print(f"national page, CPU of this thread: {_percentiles(page_cpu)}; of it, rendering:")
    for name, seconds in sorted(spent.items(), key=lambda item: -item[1])[:12]:
        print(f"  {name}: {seconds / requests * 1000:.1f} ms a page, what it includes counted in")


def statement_costs(requests: int) -> None:
    """The time of each statement of the national, a provinsi and a kabupaten page, as this
    process waits for it (PostgreSQL's work and the round trip), by the statement's start."""
    from regions.models import Area, Level

    client = staff_client("bench-statements")
    rng = random.Random(3)
    codes = Area.objects.values_list("code", flat=True)
    cases = {
        "national page": [""],
        "provinsi page": list(codes.filter(level=Level.PROVINSI)),
        "kabupaten page": list(codes.filter(level=Level.KABUPATEN)),
    }
    for case, areas in cases.items():
        spent = _statement_times(client, [rng.choice(areas) for _ in range(requests)])
        total = sum(spent.values()) / requests * 1000
        print(f"{case}: {total:.1f} ms of SQL a page, {len(spent)} statements:")
        for start, seconds in sorted(spent.items(), key=lambda item: -item[1]):
            print(f"  {seconds / requests * 1000:5.1f} ms  {start}")


def _statement_times(client, areas: list[str]) -> dict[str, float]:
    """Seconds spent in each statement (by its first 72 characters) over the pages of areas."""
    from django.db import connection

    spent: dict[str, float] = {}

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            start = " ".join(sql.split())[:72]
            spent[start] = spent.get(start, 0.0) + time.perf_counter() - started

    with connection.execute_wrapper(timed):
        for code in areas:
            _timed(client, f"/dashboard/ppwp/{code}/" if code else "/dashboard/ppwp/", {})
    return spent


def _afresh(url: str, headers: dict) -> tuple[str, dict]:
    """A page or poll of a state nobody has seen yet."""
    _forget_live_parts()
    return url, headers


def _forget_live_parts() -> None:
    """No live part kept (dashboard.shared_parts): the next page or poll renders its own."""
    from dashboard.shared_parts import LIVE_PARTS

    LIVE_PARTS.clear()


def _unchanged(client, code: str) -> tuple[str, dict]:
    url = f"/dashboard/ppwp/{code}/"
    etag = client.get(url, headers={"HX-Request": "true"})["ETag"]
    return url, {"HX-Request": "true", "If-None-Match": etag}


def _timed(client, url: str, headers: dict, *, again: bool = True) -> float:
    started = time.perf_counter()
    response = client.get(url, headers=headers)
    took = (time.perf_counter() - started) * 1000
    expected = 304 if "If-None-Match" in headers else 200
    if response.status_code == 200 and expected == 304 and again:
        # The validator carries the minute (pages show ages): the clock may just have turned.
        return _timed(client, *_unchanged(client, url.split("/")[3]), again=False)
    if response.status_code != expected:
        raise SystemExit(f"error: {url} answered {response.status_code}, expected {expected}")
    return took


if __name__ == "__main__":
    main()
