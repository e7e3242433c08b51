"""The connections the app opens to PostgreSQL, as DATABASE_URL and config make them."""

import psycopg
import pytest
from django.db import connection

from sirekap_tracker import config
from tests.conftest import database_url

pytestmark = pytest.mark.django_db


def _show(cursor, setting: str) -> str:
    cursor.execute(f"SHOW {setting}")
    return cursor.fetchone()[0]


def test_the_app_s_connections_compile_no_statement_with_jit():
    """On a PostgreSQL built with LLVM the poller's read of a hundred desa's TPS spent 0.8 s
    compiling and 50 ms running (the planner overestimates its rows past jit_above_cost)."""
    with connection.cursor() as cursor:
        assert _show(cursor, "jit") == "off"


def test_options_given_in_database_url_apply_and_can_turn_jit_back_on():
    options = "?options=-c%20statement_timeout%3D4s%20-c%20jit%3Don"
    parsed = config.parse_database_url(
        "DATABASE_URL", database_url(connection.settings_dict) + options
    )
    with (
        psycopg.connect(
            dbname=parsed["NAME"],
            user=parsed["USER"],
            host=parsed["HOST"],
            port=parsed["PORT"] or None,
            **parsed["OPTIONS"],
        ) as own,
        own.cursor() as cursor,
    ):
        assert _show(cursor, "statement_timeout") == "4s"
        assert _show(cursor, "jit") == "on"


# The tables every upload's changes rewrite: each change writes a new row version and an entry
# into each of their indexes (uploads/migrations/0014_fewer_upload_indexes.py).
BUSY_TABLES = ["uploads_upload", "progress_areaprogress"]


@pytest.mark.parametrize("table", BUSY_TABLES)
def test_no_index_of_a_busy_table_is_already_covered_by_another(table):
    """An index whose columns begin another's (same operators, neither with a condition, the
    first not a unique constraint) answers nothing the other cannot, and costs every change an
    entry."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT i.indexrelid::regclass::text, i.indkey::int2[], i.indclass::oid[],
                   i.indpred IS NOT NULL OR i.indexprs IS NOT NULL, i.indisunique
            FROM pg_index i WHERE i.indrelid = %s::regclass
            """,
            [table],
        )
        indexes = cursor.fetchall()
    plain = [index for index in indexes if not index[3]]
    for name, columns, operators, _, unique in plain:
        if unique:
            continue
        for other, other_columns, other_operators, *_ in plain:
            width = len(columns)
            covered = (
                other != name
                and other_columns[:width] == columns
                and other_operators[:width] == operators
                and (len(other_columns) > width or other < name)
            )
            assert not covered, f"{table}: {name} is covered by {other}"


# --- The health check of a kept connection (sirekap_tracker/postgresql)


def _observer():
    return psycopg.connect(database_url(connection.settings_dict), autocommit=True)


def _fresh_connection_pid() -> int:
    """The pid of a connection opened now: one this worker kept from an earlier test may be
    past CONN_MAX_AGE already, and Django would close it for that, not for its health."""
    connection.close()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _last_statement_of(observer, pid: int) -> str:
    found = observer.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid])
    return found.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_kept_connection_is_checked_before_a_request_without_a_statement():
    pid = _fresh_connection_pid()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'the last request'")
    # As between two requests (or two tasks): the next one's first statement checks it first.
    connection.close_if_unusable_or_obsolete()
    connection.close_if_health_check_failed()
    assert connection.health_check_done
    with _observer() as observer:
        # Django's own check would have sent "SELECT 1".
        assert _last_statement_of(observer, pid) == "SELECT 'the last request'"
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] == pid


@pytest.mark.django_db(transaction=True)
def test_a_connection_whose_backend_ended_is_replaced_before_the_next_request_uses_it():
    pid = _fresh_connection_pid()
    with _observer() as observer:
        # As a PostgreSQL restart ends every backend.
        observer.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])
    connection.close_if_unusable_or_obsolete()
    assert connection.connection is not None, "kept: only the health check may find it ended"
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid
