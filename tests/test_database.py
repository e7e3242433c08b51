"""The connections the app opens to PostgreSQL, as DATABASE_URL and config make them."""

import psycopg
import pytest
from django.db import connection

from sirekap_tracker import config

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
    url = "postgresql://sirekap@db.example/sirekap?options=-c%20statement_timeout%3D4s%20-c%20jit%3Don"
    settings = connection.settings_dict
    options = config.parse_database_url("DATABASE_URL", url)["OPTIONS"]
    with (
        psycopg.connect(
            dbname=settings["NAME"],
            user=settings["USER"],
            host=settings["HOST"],
            port=settings["PORT"] or None,
            **options,
        ) as own,
        own.cursor() as cursor,
    ):
        assert _show(cursor, "statement_timeout") == "4s"
        assert _show(cursor, "jit") == "on"
