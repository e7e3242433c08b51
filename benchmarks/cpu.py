"""CPU time of processes on this machine, for benchmarks that count what each part costs: this
process's PostgreSQL backend, a stand-in server (/proc/PID/stat, in clock ticks of 10 ms, so
measured over hundreds of operations)."""

import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None) -> float | None:
    """User and system CPU time of a process so far, in seconds; None for no process."""
    if pid is None:
        return None
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14, 15)


def backend_pid() -> int | None:
    """The process of this process's PostgreSQL connection, when the server runs here."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    return pid if Path(f"/proc/{pid}/stat").exists() else None
