"""gunicorn settings for the web container (docker-compose.yml)."""

import os
from contextlib import suppress
from pathlib import Path

from sirekap_tracker.config import env_bool, env_choice
from sirekap_tracker.logs import FORMATS, gunicorn_logging_config

# prometheus-client's multiprocess mode: each worker process writes its request histograms into
# files of this folder, and whichever worker answers /metrics reports them all
# (operations/metrics.py). prometheus-client picks the mode when it is first imported, so the
# folder is named before anything imports it, here in the master, whose workers inherit it. By
# default a folder of this master in memory. Its counts are removed when the master starts
# (counts left by an earlier run would add to ours) and when it exits.
MULTIPROCESS_DIR = Path(
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", f"/dev/shm/sirekap-prometheus-{os.getpid()}")
)

from prometheus_client import multiprocess  # noqa: E402 - after the folder is named, see above

bind = "0.0.0.0:8000"
# Pages are short database reads; two workers per core plus one is gunicorn's usual starting point.
workers = int(os.environ.get("WEB_CONCURRENCY", (os.cpu_count() or 1) * 2 + 1))
worker_tmp_dir = "/dev/shm"
timeout = 30
graceful_timeout = 30
# Recycle workers now and then so a slow leak cannot grow through election night; rarely, and
# spread widely: at 1,500 requests/s a limit of 5,000 restarted all workers within seconds of each
# other every ~15 s, each restart a second of CPU importing Django, and stalled every connection
# (make bench-public).
max_requests = 50_000
max_requests_jitter = 25_000
# Django logs one line per request (operations.middleware.RequestMiddleware: with its request
# id, view, status and time), so gunicorn's access log stays off (its logger is silenced below).
accesslog = None
# gunicorn's own lines (workers starting, timing out) in the format of the application's.
logconfig_dict = gunicorn_logging_config(
    log_format=env_choice("LOG_FORMAT", "text" if env_bool("DEBUG", False) else "json", FORMATS),
    level=os.environ.get("LOG_LEVEL", "INFO").strip().upper(),
)
# Only the proxy in front may say the visitor used HTTPS: X-Forwarded-Proto is believed from these
# addresses alone (setting wsgi.url_scheme, which Django reads) and ignored from anyone else.
# docker-compose.yml sets nginx's address; Django reads the same variable (settings.py).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# The one header nginx overwrites; gunicorn's other defaults (X-Forwarded-Ssl, ...) would reach it
# from the client untouched.
secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}
# No gunicornc control socket: compose starts, scales and stops the containers, and one socket
# path per user ($HOME/.gunicorn/gunicorn.ctl) would be fought over by two gunicorns on a host.
control_socket_disable = True


def on_starting(server) -> None:
    MULTIPROCESS_DIR.mkdir(parents=True, exist_ok=True)
    _remove_counts()


def post_worker_init(worker) -> None:
    # Templates, catalogs and URL patterns built before the first request, then frozen out of
    # the garbage collector's full passes (sirekap_tracker/warm.py).
    from sirekap_tracker.warm import process_warm

    process_warm("gunicorn worker")


def child_exit(server, worker) -> None:
    # prometheus-client's documented hook: a dead worker's live gauges no longer count.
    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    _remove_counts()
    # The folder too when nothing else is in it (ours by default; an operator's is kept).
    with suppress(OSError):
        MULTIPROCESS_DIR.rmdir()


def _remove_counts() -> None:
    # Only prometheus-client's files: the folder may be one an operator named, with more in it.
    for counts in MULTIPROCESS_DIR.glob("*.db"):
        counts.unlink(missing_ok=True)
