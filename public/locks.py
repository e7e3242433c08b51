"""One holder at a time in the whole deployment, whatever the number of worker processes: a
PostgreSQL session advisory lock, released when the holder is done or when its connection dies
with the worker that held it."""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection


@contextmanager
def advisory_lock(namespace: int, name: str) -> Iterator[bool]:
    """Whether we hold the lock (namespace, name) for the block; False: someone else does."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))", [namespace, name])
        alone = cursor.fetchone()[0]
    try:
        yield alone
    finally:
        if alone:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", [namespace, name])
