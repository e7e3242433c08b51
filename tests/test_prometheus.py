"""deploy/prometheus/ checked by Debian's promtool: the scrape config as compose mounts it, the
alert rules, and each alert firing at the system page's red threshold and not below it."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from operations.board import thresholds
from tests.conftest import PROJECT_DIR

PROMTOOL = Path("/usr/bin/promtool")
CONFIG = PROJECT_DIR / "deploy" / "prometheus"

pytestmark = pytest.mark.skipif(
    not PROMTOOL.exists(),
    reason=f"{PROMTOOL} is missing: run `make test` as root to install Debian's prometheus",
)


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(PROMTOOL), *args], capture_output=True, text=True, timeout=60)


def test_the_scrape_config_is_valid_as_compose_mounts_it(tmp_path):
    compose = yaml.safe_load((PROJECT_DIR / "docker-compose.yml").read_text())
    service = compose["services"]["prometheus"]
    mounts = dict(volume.split(":")[:2] for volume in service["volumes"])
    assert mounts["./deploy/prometheus"] == "/etc/prometheus"
    assert "--config.file=/etc/prometheus/prometheus.yml" in service["command"]
    # The secret compose mounts is the file the config reads the token from.
    (secret,) = service["secrets"]
    assert compose["secrets"][secret] == {"environment": "METRICS_TOKEN"}
    mounted = f"/run/secrets/{secret}"

    folder = tmp_path / "etc-prometheus"
    shutil.copytree(CONFIG, folder)
    token = tmp_path / "metrics_token"
    token.write_text("a-token-of-the-deployment-0123456789")
    text = (folder / "prometheus.yml").read_text()
    assert text.count(mounted) == 1
    (folder / "prometheus.yml").write_text(text.replace(mounted, str(token)))
    checked = promtool("check", "config", str(folder / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 13 rules found" in checked.stdout


def test_the_alert_rules_are_valid():
    checked = promtool("check", "rules", str(CONFIG / "alerts.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr


SERIES_LABELS = 'instance="10.0.0.5:8000",job="sirekap"'
# Alerts on a gauge: (alert, its metric and labels, the system page's threshold, its labels).
GAUGE_ALERTS = [
    ("SirekapBeatDown", "sirekap_beat_heartbeat_age_seconds", "heartbeat", {}),
    ("SirekapQueueTooLong", "sirekap_celery_queue_length", "queue_length", {"queue": "celery"}),
    ("SirekapOldestQueuedTooOld", "sirekap_oldest_queued_age_seconds", "oldest_queued", {}),
    ("SirekapOldestRetryingTooOld", "sirekap_oldest_retrying_age_seconds", "oldest_retrying", {}),
    ("SirekapPollStale", "sirekap_poll_last_success_age_seconds", "poll_age", {}),
    ("SirekapSnapshotStale", "sirekap_snapshot_age_seconds", "snapshot_age", {"kind": "pkwkk"}),
    ("SirekapSnapshotBacklog", "sirekap_snapshot_backlog_areas", "snapshot_backlog",
     {"kind": "pkwkk"}),
    ("SirekapMirrorBehind", "sirekap_mirror_oldest_pending_age_seconds", "mirror_oldest", {}),
]  # fmt: skip


def series(metric: str, labels: dict, values: str) -> dict:
    extra = "".join(f',{name}="{value}"' for name, value in labels.items())
    return {"series": f"{metric}{{{SERIES_LABELS}{extra}}}", "values": values}


def case(alert: str, input_series: list[dict], fires: bool, labels: dict, severity: str) -> dict:
    expected = [{"exp_labels": {"severity": severity, **labels}}] if fires else []
    return {
        "interval": "1m",
        "input_series": input_series,
        "alert_rule_test": [{"eval_time": "15m", "alertname": alert, "exp_alerts": expected}],
    }


def severity_of(alert: str) -> str:
    groups = yaml.safe_load((CONFIG / "alerts.yml").read_text())["groups"]
    return next(rule["labels"]["severity"] for group in groups for rule in group["rules"]
                if rule["alert"] == alert)  # fmt: skip


def rule_cases() -> list[dict]:
    limits = thresholds()
    cases = []
    for alert, metric, key, labels in GAUGE_ALERTS:
        red = limits[key].red
        for value, fires in [(red - 1, False), (red, True)]:
            cases.append(
                case(alert, [series(metric, labels, f"{value:g}x20")], fires, labels,
                     severity_of(alert))
            )  # fmt: skip
    # Ratios of counters, each minute: failures and the rest, a point either side of red.
    for alert, failing, passing in [
        ("SirekapDeliveryFailureRate",
         [("sirekap_deliveries_total", {"outcome": "transient"})],
         [("sirekap_deliveries_total", {"outcome": "accepted"})]),
        ("SirekapPollErrors",
         [("sirekap_poll_errors_total", {})],
         [("sirekap_poll_requests_total", {})]),
    ]:  # fmt: skip
        red = limits["delivery_failures" if "Delivery" in alert else "poll_errors"].red
        for percent, fires in [(red - 1, False), (red + 1, True)]:
            # Deliveries: failures and acceptances are apart; polls: errors among requests.
            rest = 100 - percent if "Delivery" in alert else 100
            rows = [series(metric, labels, f"0+{percent:g}x20") for metric, labels in failing]
            rows += [series(metric, labels, f"0+{rest:g}x20") for metric, labels in passing]
            cases.append(case(alert, rows, fires, {}, severity_of(alert)))
    scraped = {"instance": "10.0.0.5:8000", "job": "sirekap"}
    for alert, metric, labels, expected in [
        ("SirekapWorkerDown", "sirekap_celery_queue_workers", {"queue": "snapshot"}, None),
        ("SirekapDependencyDown", "sirekap_dependency_up", {"part": "database"}, None),
        ("SirekapWebDown", "up", {}, scraped),
    ]:
        for value, fires in [(1, False), (0, True)]:
            cases.append(
                case(alert, [series(metric, labels, f"{value}x20")], fires, expected or labels,
                     severity_of(alert))
            )  # fmt: skip
    return cases


def test_each_alert_fires_at_the_system_pages_red_threshold_and_not_below(tmp_path):
    # The rules as they are, less their annotations: when an alert fires is what is tested
    # here (promtool test compares the rendered text too); check rules parses the templates.
    rules = yaml.safe_load((CONFIG / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations")
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(rules))
    tests = tmp_path / "alerts.test.yml"
    tests.write_text(
        yaml.safe_dump(
            {
                "rule_files": [str(tmp_path / "alerts.yml")],
                "evaluation_interval": "1m",
                "tests": rule_cases(),
            }
        )
    )
    checked = promtool("test", "rules", str(tests))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    tested = {test["alert_rule_test"][0]["alertname"] for test in rule_cases()}
    assert tested == alerts
