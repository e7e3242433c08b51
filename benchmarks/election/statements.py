"""PostgreSQL's own time by statement over the night, where the server can tell it.

pg_stat_statements counts each statement's calls and execution time inside the server, which
neither the request log (a request's wait for its statements, from the client) nor the CPU of
the postgres processes (every backend's work together) can split. It needs the module in
`shared_preload_libraries`, which the replay's own cluster (pgserver's build) does not ship: run
the replay with --use-database-url on a server that loads it (docs/performance.md says how).
Only the throwaway database's entries are reset and read: others on a shared server keep theirs.
Django is imported inside the functions, as everywhere in the replay (benchmarks.throwaway).
"""

SHOWN = 15  # the statements listed, by total time
_TEXT = 110  # characters of each statement's text shown


def statements_reset() -> str:
    """Starts the count of this database's statements from zero; "" when it did, else why the
    night's statements will not be counted."""
    from django.db import DatabaseError, connection

    connection.close()  # a drill may have restarted the server since this process's last read
    try:
        with connection.cursor() as cursor:
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            cursor.execute(
                "SELECT pg_stat_statements_reset(0, oid, 0) FROM pg_database"
                " WHERE datname = current_database()"
            )
    except DatabaseError as error:
        connection.close()
        return " ".join(str(error).split())
    return ""


def statements_read(uploads: int) -> list[dict]:
    """This database's statements since the reset, the most time-consuming first: calls, total
    and mean execution time, and the time per upload taken in."""
    from django.db import connection

    connection.close()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT calls, total_exec_time, regexp_replace(query, '\\s+', ' ', 'g')
            FROM pg_stat_statements
            WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
            ORDER BY total_exec_time DESC
            """
        )
        rows = cursor.fetchall()
    every_ms = sum(total for _, total, _ in rows)
    return [
        {
            "calls": calls,
            "total_ms": round(total, 1),
            "share": round(total / every_ms, 3) if every_ms else 0.0,
            "mean_ms": round(total / calls, 3) if calls else 0.0,
            "ms_per_upload": round(total / uploads, 3) if uploads else None,
            "statement": text.strip(),
        }
        for calls, total, text in rows
    ]


def statements_report(found: dict) -> list[str]:
    """The report's lines: the night's PostgreSQL time per upload, statement by statement."""
    if found["unavailable"]:
        return [f"PostgreSQL by statement: not counted ({found['unavailable'][:160]})"]
    rows = found["statements"]
    every = sum(row["total_ms"] for row in rows)
    per_upload = sum(row["ms_per_upload"] or 0 for row in rows)
    lines = [
        f"PostgreSQL by statement (pg_stat_statements, execution only): {every / 1000:,.1f} s "
        f"in {len(rows)} statements, {per_upload:.2f} ms per upload taken in; the first {SHOWN}:"
    ]
    for row in rows[:SHOWN]:
        lines.append(
            f"  {row['ms_per_upload'] or 0:6.3f} ms/upload {row['share']:6.1%} "
            f"{row['calls']:>8,} x {row['mean_ms']:8.3f} ms  {row['statement'][:_TEXT]}"
        )
    return lines
