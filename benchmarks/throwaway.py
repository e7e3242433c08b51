"""A database of its own for a benchmark: created, migrated, then dropped, so that a benchmark
never touches the data of `make run` or of the tests.

It lives on the server DATABASE_URL points to (the embedded PostgreSQL when unset), and Django is
set up on it in this process, so timings measure the command and not the start of Python.
"""

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from io import StringIO
from urllib.parse import urlsplit, urlunsplit

DEFAULT_NAME = os.environ.get("BENCH_DATABASE", "sirekap_bench")


@contextmanager
def throwaway_database(name: str) -> Iterator[None]:
    import psycopg
    from psycopg import sql

    server_url = os.environ.get("DATABASE_URL") or _embedded_url()
    _refuse_unsafe_name(name, server_url)
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(_with_database(server_url, "postgres"), autocommit=True) as admin:
        admin.execute(drop)
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        _set_up_django(_with_database(server_url, name))
        yield
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(_with_database(server_url, "postgres"), autocommit=True) as admin:
            admin.execute(drop)


def timed(command: str, *arguments: str) -> tuple[float, str]:
    """Seconds taken by a management command, and what it printed."""
    from django.core.management import call_command

    out = StringIO()
    started = time.perf_counter()
    call_command(command, *arguments, stdout=out)
    return time.perf_counter() - started, out.getvalue().strip()


def bench_redis_url(db: int) -> str:
    """A Redis database of a benchmark's own on the server REDIS_URL points to (the embedded
    one when unset), away from `make run` (0) and the tests (9 and up)."""
    url = os.environ.get("REDIS_URL")
    if not url:
        from sirekap_tracker import embedded

        return embedded.redis_url(db)
    if url.startswith("unix://"):
        return url.split("?")[0] + f"?db={db}"
    return urlunsplit(urlsplit(url)._replace(path=f"/{db}"))


def machine() -> str:
    return f"{os.cpu_count()} cores, Python {sys.version.split()[0]}"


def _embedded_url() -> str:
    from sirekap_tracker import embedded

    return embedded.postgres_url("postgres")


def _refuse_unsafe_name(name: str, server_url: str) -> None:
    # The database is dropped first and last: never let that be the one holding real data.
    configured = urlsplit(server_url).path.lstrip("/")
    if "bench" not in name or name == configured:
        sys.exit(
            f"error: refusing to use {name!r}: a benchmark database has 'bench' in its name "
            "and is not the one DATABASE_URL names (it is dropped before and after)"
        )


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def _set_up_django(url: str) -> None:
    import django
    from django.core.management import call_command

    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sirekap_tracker.settings")
    # Every status change logs a line at INFO: thousands a second here, read by nobody.
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    django.setup()
    call_command("migrate", verbosity=0)
