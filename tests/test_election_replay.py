"""The election night replay (benchmarks.election) at a tiny size, drills included: it must lose
nothing, duplicate nothing, end with counts equal to a recount, and report every figure.

A real night (`make bench-election`) runs for minutes over the national tree; this one runs the
same code, with every real process and every fault drill, for well under a minute of uploads.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks.election.figures import TOTAL_KEYS
from benchmarks.election.probes import VIEWS
from benchmarks.election.stack import Service, compose_niceness
from tests.conftest import PROJECT_DIR

SERVICES = ("web", "intake", "worker", "snapshot-worker", "beat", "publication stand-in",
            "postgres", "redis")  # fmt: skip
DRILLS = (
    "worker killed with SIGKILL",
    "Redis restarted",
    "PostgreSQL restarted",
    "snapshot worker killed",
)


def test_a_tiny_night_with_every_drill_loses_nothing_and_reports_every_figure(tmp_path):
    path = tmp_path / "night.json"
    night = subprocess.run(
        [sys.executable, "-m", "benchmarks.election", "--tps", "300", "--rate", "5",
         "--minutes", "0.3", "--never-rate", "0.03", "--publish-delay-s", "1", "--json", str(path)],
        cwd=PROJECT_DIR, capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    assert night.returncode == 0, night.stdout[-4000:] + night.stderr[-4000:]
    figures = json.loads(path.read_text())

    assert (figures["lost"], figures["duplicated"], figures["recount_drift"]) == (0, 0, 0)
    total = figures["total"]
    sent = {key: total[key] for key in ("unsent_uploads", "late_uploads", "intake_errors")}
    assert total["taken_in"] == 90 == figures["stand_in_writes"] + figures["never_accepted"], sent
    assert figures["never_accepted"] >= 1
    assert figures["stuck"] >= figures["never_accepted"]
    assert set(figures["stuck_reasons"]) <= {"network", "server_queue"}
    assert all(total[key] is not None for key in TOTAL_KEYS)
    assert total["intake_to_delivered_s"]["p95"] is not None
    for view in VIEWS:
        assert total["snapshot_lag_s"][view]["count"] > 0, (view, night.stdout[-4000:])
    for group in ("dashboard", "public"):
        assert total[f"{group}_ms"]["p95"] > 0
        assert total["server_ms"][group]["p95"] > 0
    assert total["server_ms"]["intake"]["count"] >= 90
    # Where the slowest intake requests spent their time, from their log lines.
    slowest = total["server_ms"]["intake"]["slowest"]
    assert slowest["cpu"] > 0 and slowest["db"] > 0
    assert set(SERVICES) <= set(figures["memory_mb"])
    assert figures["cpu_ms_per_upload"]["all"] > 0
    assert figures["minutes"] and figures["minutes"][0]["taken_in_per_second"] > 0
    # PostgreSQL's time by statement where the server counts it, else the reason said.
    postgres = figures["postgres"]
    if postgres["unavailable"]:
        assert "PostgreSQL by statement: not counted (" in night.stdout
    else:
        assert any("upload_transition" in row["statement"] for row in postgres["statements"])

    happened = " ".join(what for _, what in figures["events"])
    for drill in DRILLS:
        assert f"drill: {drill}" in happened
    assert figures["restarts"]["worker"] >= 1 and figures["restarts"]["snapshot-worker"] >= 1
    assert "lost 0, duplicated 0, recount drift 0" in night.stdout


def test_the_replay_runs_each_service_at_the_cpu_weight_compose_gives_it(tmp_path):
    """Staff and public pages first: web keeps the full weight, the intake and the workers run
    below it, and the weight holds against other sessions' processes too (the kernel's
    autogroup would otherwise share the CPU equally between sessions, whatever their nice)."""
    niceness = compose_niceness()
    assert niceness["web"] == 0
    assert all(niceness[name] > 0 for name in ["intake", "worker", "snapshot-worker", "beat"])
    service = Service("intake", ["sleep", "30"], dict(os.environ), tmp_path / "sleep.log", nice=9)
    service.start()
    try:
        stat = Path(f"/proc/{service.process.pid}/stat").read_text()
        assert int(stat.rsplit(")", 1)[1].split()[16]) == 9  # the nice field
        autogroup = Path(f"/proc/{service.process.pid}/autogroup")
        if autogroup.exists():
            assert autogroup.read_text().split()[-1] == "9"
    finally:
        service.stop()
