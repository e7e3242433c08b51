"""The night in figures: per minute and in total, from the load generator's results, the upload
events in the database, the probes and the memory samples; the end checks (lost, duplicated,
recount drift); the printout and the JSON of --json."""

import json
import math
import os
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from benchmarks.election.load import GIVE_UP_SECONDS
from benchmarks.election.probes import VIEWS, Sample, Timing

# Keys of the JSON's "total" that the test (tests/test_election_replay.py) requires.
TOTAL_KEYS = (
    "taken_in",
    "taken_in_per_second",
    "delivered",
    "delivered_per_second",
    "published",
    "published_per_second",
    "intake_to_delivered_s",
    "snapshot_lag_s",
    "dashboard_ms",
    "public_ms",
    "server_ms",
    "intake_errors",
    "intake_ms",
)


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "count": 0}
    ordered = sorted(values)
    at = lambda share: ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]  # noqa: E731
    return {"p50": round(at(0.5), 3), "p95": round(at(0.95), 3), "count": len(values)}


@dataclass
class Inputs:
    start: float  # the first upload was due then
    intake_end: float  # the last upload was answered then
    end: float  # the drain ended then
    results: list[list]  # the load generator's rows
    timings: list[Timing]
    samples: list[Sample]
    memory: list[tuple[float, dict[str, tuple[int, int, dict[int, float]]]]]
    events: list[tuple[float, str]]  # what the stack and the drills did
    planned: int  # uploads the night was to bring
    request_logs: list[Path]  # gunicorns' output: Django's line per request, with its time


def upload_times() -> dict[str, dict[int, float]]:
    """For each of received, delivered, published: upload id -> its first such event."""
    from uploads.models import Action, UploadEvent

    found: dict[str, dict[int, float]] = defaultdict(dict)
    rows = (
        UploadEvent.objects.filter(action__in=[Action.RECEIVED, Action.DELIVERED, Action.PUBLISHED])
        .order_by("pk")
        .values_list("upload_id", "action", "created_at")
    )
    for upload, action, at in rows.iterator(chunk_size=20_000):
        found[action].setdefault(upload, at.timestamp())
    return found


def compute(inputs: Inputs, checks: dict) -> dict:
    times = upload_times()
    minutes = _minutes(inputs, times)
    taken = taken_in(inputs.results)
    intake_seconds = max(inputs.intake_end - inputs.start, 1e-9)
    delivered, published = times["delivered"].values(), times["published"].values()
    in_window = sum(1 for at in delivered if at <= inputs.intake_end)
    total = {
        "taken_in": len(taken),
        "taken_in_per_second": round(len(taken) / intake_seconds, 1),
        "delivered": len(delivered),
        "delivered_per_second": round(in_window / intake_seconds, 1),
        "published": len(published),
        "published_per_second": round(
            sum(1 for at in published if at <= inputs.intake_end) / intake_seconds, 1
        ),
        "backlog_at_intake_end": len(taken) - in_window,
        "intake_seconds": round(intake_seconds, 1),
        "drain_seconds": round(inputs.end - inputs.intake_end, 1),
        "intake_to_delivered_s": percentiles(_to_delivered(times)),
        "snapshot_lag_s": _lags(inputs.samples),
        "dashboard_ms": _latency(inputs.timings, "dashboard", inputs.start),
        "public_ms": _latency(inputs.timings, "public", inputs.start),
        "server_ms": _server_times(inputs),
        "intake_errors": _intake_errors(inputs.results),
        "intake_ms": percentiles([(row[5] - row[4]) * 1000 for row in taken]),
        "late_uploads": sum(1 for row in inputs.results if row[4] - row[3] > 1.0),
        "unsent_uploads": inputs.planned - len(inputs.results),
    }
    return {
        "total": total,
        "minutes": minutes,
        "memory_mb": _memory(inputs.memory),
        "cpu_ms_per_upload": _cpu(inputs, len(taken)),
        "events": [[round(at - inputs.start, 1), what] for at, what in inputs.events],
        **checks,
    }


def _to_delivered(times, upload_ids=None) -> list[float]:
    received, delivered = times["received"], times["delivered"]
    ids = delivered if upload_ids is None else upload_ids
    return [delivered[i] - received[i] for i in ids if i in received and i in delivered]


def _lags(samples: list[Sample]) -> dict:
    lags = {}
    for view in VIEWS:
        seen = [s.seen[view] - s.published_at for s in samples if view in s.seen]
        lags[view] = {**percentiles(seen), "not_seen": sum(view not in s.seen for s in samples)}
    return lags


def _latency(timings: list[Timing], group: str, start: float) -> dict:
    chosen = [t for t in timings if t.group == group]
    cases = {t.case for t in chosen}
    failed = [t for t in chosen if t.status != 200]
    return {
        **percentiles([t.ms for t in chosen]),
        "errors": len(failed),
        # Which, and when: a drill's minute or not.
        "errors_by_minute": dict(
            Counter(
                f"minute {int((t.at - start) // 60) + 1}: {t.case} {t.status or 'no answer'}"
                for t in failed
            )
        ),
        "cases": {
            case: percentiles([t.ms for t in chosen if t.case == case]) for case in sorted(cases)
        },
    }


def _server_times(inputs: Inputs) -> dict:
    """Server time of the requests during the intake, by kind, from the request log lines
    (operations.middleware.RequestMiddleware): what Django took, without gunicorn's queue; and
    where the slowest 5% of each kind spent it (`slowest`: their mean own CPU, time in
    PostgreSQL, and the rest, waiting for a core or Redis)."""
    requests: dict[str, list[dict]] = defaultdict(list)
    for line in _lines(inputs.request_logs):
        if '"event": "request"' not in line:
            continue
        try:
            request = json.loads(line)
            at = datetime.fromisoformat(request["timestamp"]).timestamp()
        except (ValueError, KeyError):
            continue
        if inputs.start <= at <= inputs.intake_end:
            requests[_request_kind(request["path"])].append(request)
    return {
        kind: {**percentiles([r["duration_ms"] for r in of_kind]), "slowest": _split(of_kind)}
        for kind, of_kind in sorted(requests.items())
    }


def _split(requests: list[dict]) -> dict[str, float]:
    """The mean CPU, PostgreSQL and waiting time of the slowest 5% of the requests."""
    slowest = sorted(requests, key=lambda r: r["duration_ms"])[-max(1, len(requests) // 20) :]
    mean = lambda field: sum(r.get(field, 0) for r in slowest) / len(slowest)  # noqa: E731
    cpu, db, whole = mean("cpu_ms"), mean("db_ms"), mean("duration_ms")
    return {"cpu": round(cpu, 1), "db": round(db, 1), "waiting": round(whole - cpu - db, 1)}


def _lines(paths: list[Path]) -> Iterator[str]:
    for path in paths:
        if path.exists():
            with path.open(errors="replace") as lines:
                yield from lines


def _request_kind(path: str) -> str:
    path = path.removeprefix("/en")
    if path.startswith("/api/uploads/"):
        return "intake"
    if path.startswith("/dashboard/"):
        return "dashboard"
    if path.startswith(("/progress/", "/api/")) or path in ("", "/"):
        return "public"
    return "other"


def _intake_errors(results: list[list]) -> dict:
    errors: Counter = Counter()
    for row in results:
        errors.update(row[7])
        if row[2] not in (200, 201):
            errors[f"final {row[2] or 'no answer'}"] += 1
    return dict(errors)


def _memory(samples) -> dict:
    peaks: dict[str, list] = {}
    for _, by_service in samples:
        for name, (processes, rss, _) in by_service.items():
            peak = peaks.setdefault(name, [0, 0, 0])
            peak[0] = max(peak[0], processes)
            peak[1] = max(peak[1], rss)
            peak[2] = rss
    mb = 1024 * 1024
    return {
        name: {"processes": p, "peak": round(top / mb), "last": round(last / mb)}
        for name, (p, top, last) in peaks.items()
    }


def _minutes(inputs: Inputs, times) -> list[dict]:
    def minute(at: float) -> int:
        return int((at - inputs.start) // 60)

    last = minute(inputs.end)
    rows = []
    for number in range(last + 1):
        begin = inputs.start + number * 60
        end = min(begin + 60, inputs.end)
        seconds = max(end - begin, 1e-9)
        inside = lambda at, b=begin, e=end: b <= at < e  # noqa: E731
        results = [r for r in inputs.results if inside(r[5])]
        delivered = [u for u, at in times["delivered"].items() if inside(at)]
        samples = [s for s in inputs.samples if inside(s.published_at)]
        timings = [t for t in inputs.timings if inside(t.at)]
        memory = [by for at, by in inputs.memory if inside(at)]
        rows.append(
            {
                "minute": number + 1,
                "intake": begin < inputs.intake_end,
                "taken_in_per_second": round(len(taken_in(results)) / seconds, 1),
                "delivered_per_second": round(len(delivered) / seconds, 1),
                "published_per_second": round(
                    sum(1 for at in times["published"].values() if inside(at)) / seconds, 1
                ),
                "intake_to_delivered_s": percentiles(_to_delivered(times, delivered)),
                "snapshot_lag_s": _lags(samples),
                "dashboard_ms": _latency(timings, "dashboard", inputs.start),
                "public_ms": _latency(timings, "public", inputs.start),
                "intake_errors": sum(_intake_errors(results).values()),
                "rss_mb": round(max((_total(by) for by in memory), default=0) / 2**20),
                "events": [what for at, what in inputs.events if inside(at)],
            }
        )
    return rows


def report(figures: dict) -> str:
    """The printout: a line per minute, the totals, memory, the end checks."""
    lines = [
        "",
        "minute | in/s  deliv/s publ/s | in->deliv p50/p95 s | lag p95 s: TPS JSON, area JSON, "
        "page, dashboard | dashboard p95 ms | public p95 ms | intake errors | RSS MB",
    ]
    for row in figures["minutes"]:
        lag = row["snapshot_lag_s"]
        lags = ", ".join(_number(lag[view]["p95"]) for view in VIEWS)
        delivery = row["intake_to_delivered_s"]
        mark = "" if row["intake"] else " (drain)"
        rates = [row[f"{what}_per_second"] for what in ("taken_in", "delivered", "published")]
        latencies = [_number(row[f"{group}_ms"]["p95"]) for group in ("dashboard", "public")]
        lines.append(
            f"{row['minute']:>6} | {rates[0]:>5} {rates[1]:>7} {rates[2]:>6} | "
            f"{_number(delivery['p50'])}/{_number(delivery['p95'])} | {lags} | "
            f"{latencies[0]} | {latencies[1]} | {row['intake_errors']} | {row['rss_mb']:,}{mark}"
            + (f"  [{'; '.join(row['events'])}]" if row["events"] else "")
        )
    total = figures["total"]
    lag = total["snapshot_lag_s"]
    lines += [
        "",
        f"taken in: {total['taken_in']:,} in {total['intake_seconds']} s, "
        f"{total['taken_in_per_second']}/s (intake p50/p95 {_number(total['intake_ms']['p50'])}/"
        f"{_number(total['intake_ms']['p95'])} ms at the client; "
        f"{total['late_uploads']:,} sent more than 1 s late, {total['unsent_uploads']:,} of the "
        f"plan given up on, not started {GIVE_UP_SECONDS} s after they were due)",
        f"delivered: {total['delivered_per_second']}/s during the intake, {total['delivered']:,} "
        f"in all; {total['backlog_at_intake_end']:,} waiting when the intake ended, drained in "
        f"{total['drain_seconds']} s",
        f"published (our poller): {total['published_per_second']}/s during the intake, "
        f"{total['published']:,} in all",
        f"intake -> delivered: {_spread(total['intake_to_delivered_s'], 's')}",
    ]
    for view in VIEWS:
        lines.append(
            f"published -> visible, {view}: {_spread(lag[view], 's')}"
            + (f", {lag[view]['not_seen']} not seen in time" if lag[view]["not_seen"] else "")
        )
    for group in ("dashboard", "public"):
        latency = total[f"{group}_ms"]
        cases = "; ".join(f"{case} {_number(v['p95'])}" for case, v in latency["cases"].items())
        lines.append(
            f"{group} latency at the client: {_spread(latency, 'ms')}, {latency['errors']} errors "
            f"(p95 ms: {cases})"
        )
        if latency["errors"]:
            failed = "; ".join(f"{n} x {what}" for what, n in latency["errors_by_minute"].items())
            lines.append(f"  {group} errors: {failed}")
    server = "; ".join(
        f"{kind} {_spread(values, 'ms')}" for kind, values in total["server_ms"].items()
    )
    lines.append(f"server time (Django, from the request log): {server or '-'}")
    split = "; ".join(
        f"{kind} {values['slowest']['cpu']} cpu + {values['slowest']['db']} PostgreSQL + "
        f"{values['slowest']['waiting']} waiting"
        for kind, values in total["server_ms"].items()
    )
    lines.append(f"  the slowest 5%, mean ms: {split or '-'}")
    lines.append(f"intake errors (retried by the phones): {total['intake_errors'] or 'none'}")
    cpu = figures["cpu_ms_per_upload"]
    if cpu:
        each = ", ".join(f"{name} {ms}" for name, ms in cpu.items() if name != "all")
        cores = os.cpu_count() or 1
        ceiling = cores * 1000 / cpu["all"] if cpu["all"] else 0
        lines.append(
            f"CPU per upload taken in: {cpu['all']} ms ({each}); at that cost {cores} cores "
            f"carry about {ceiling:,.0f} uploads/s"
        )
    lines.append("memory (RSS, MB: processes, peak, last):")
    for name, memory in figures["memory_mb"].items():
        lines.append(f"  {name}: {memory['processes']}, {memory['peak']:,}, {memory['last']:,}")
    lines.append(
        f"lost {figures['lost']}, duplicated {figures['duplicated']}, recount drift "
        f"{figures['recount_drift']}; stuck {figures['stuck']} (planned never accepted: "
        f"{figures['never_accepted']}), reasons {figures['stuck_reasons']}"
    )
    return "\n".join(lines)


def _total(by_service: dict[str, tuple[int, int, dict[int, float]]]) -> int:
    return sum(rss for _, rss, _ in by_service.values())


def _cpu(inputs: Inputs, uploads: int) -> dict[str, float]:
    """CPU milliseconds each service spent per upload taken in, between the first and the last
    sample of the intake (uploads spread evenly over it), process by process: one started in
    the meantime counts from its start, one killed up to its last sample."""
    during = [(at, by) for at, by in inputs.memory if inputs.start <= at <= inputs.intake_end]
    if len(during) < 2 or not uploads:
        return {}
    (began, first), (ended, _) = during[0], during[-1]
    share = uploads * (ended - began) / max(inputs.intake_end - inputs.start, 1e-9)
    spent: dict[str, float] = defaultdict(float)
    for name in {name for _, by in during for name in by}:
        baseline = first.get(name, (0, 0, {}))[2]
        latest: dict[int, float] = {}
        for _, by in during:
            latest.update(by.get(name, (0, 0, {}))[2])
        seconds = sum(cpu - baseline.get(pid, 0.0) for pid, cpu in latest.items())
        spent[name] = max(0.0, seconds) * 1000 / share
    return {
        **{name: round(ms, 2) for name, ms in spent.items()},
        "all": round(sum(spent.values()), 2),
    }


def _number(value) -> str:
    return "-" if value is None else f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"


def _spread(values: dict, unit: str) -> str:
    p50, p95 = _number(values["p50"]), _number(values["p95"])
    return f"p50 {p50} {unit}, p95 {p95} {unit} ({values['count']:,})"


def taken_in(results: list[list]) -> list[list]:
    """The phones' results whose upload the intake took in (201, or 200 for one sent again)."""
    return [row for row in results if row[2] in (200, 201)]


def load_results(path: Path) -> list[list]:
    """The load generator's rows: [tps, contest, status, due, sent, answered, tries, errors]."""
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def write_json(figures: dict, path: Path) -> None:
    path.write_text(json.dumps(figures, indent=1, default=str))
