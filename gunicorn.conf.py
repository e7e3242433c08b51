"""gunicorn settings for the web container (docker-compose.yml)."""

import os

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
accesslog = "-"
# Only the proxy in front may say the visitor used HTTPS: X-Forwarded-Proto is believed from these
# addresses alone (setting wsgi.url_scheme, which Django reads) and ignored from anyone else.
# docker-compose.yml sets nginx's address; Django reads the same variable (settings.py).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# The one header nginx overwrites; gunicorn's other defaults (X-Forwarded-Ssl, ...) would reach it
# from the client untouched.
secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}
