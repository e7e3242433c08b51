"""Keeps the test suite off the data of `make run`. Loaded with -p before Django's settings.

PostgreSQL needs nothing here: pytest-django creates its own test_* databases. Redis has no such
thing, so every test process gets a database number of its own (9, 10, ... one per xdist
worker); a queue or cache key written by a test can never reach the `make run` worker, and the
worker processes the tests start inherit the same REDIS_URL.
"""

import os
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

FIRST_TEST_REDIS_DB = 9
_BASE_URL_VARIABLE = "SIREKAP_TEST_BASE_REDIS_URL"


def redis_url_with_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    if parts.scheme == "unix":
        query = dict(parse_qsl(parts.query))
        query["db"] = str(db)
        return f"unix://{parts.path}?{urlencode(query)}"  # urlunsplit would drop the empty host
    return urlunsplit(parts._replace(path=f"/{db}"))


def _test_redis_url() -> str:
    base = os.environ.get(_BASE_URL_VARIABLE) or os.environ.get("REDIS_URL")
    if not base:
        from sirekap_tracker import embedded

        base = embedded.redis_url()
    os.environ[_BASE_URL_VARIABLE] = base
    worker_number = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    return redis_url_with_db(base, FIRST_TEST_REDIS_DB + worker_number)


os.environ["REDIS_URL"] = _test_redis_url()
# Playwright's sync API runs an event loop in the test thread, which Django would otherwise
# mistake for async code touching the ORM.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
