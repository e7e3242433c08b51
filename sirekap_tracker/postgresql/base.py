"""Django's PostgreSQL backend (settings.DATABASES' ENGINE), with a health check that costs no
round trip.

A connection is kept between requests and tasks (CONN_MAX_AGE), and Django checks it before a
request's first statement (CONN_HEALTH_CHECKS), so that one that died with a PostgreSQL restart
is replaced instead of failing the request. Django's check is a `SELECT 1`: one more round trip
on every request and task, which on a full machine waits its turn in PostgreSQL like any other
statement. An idle connection has nothing to read, though: a backend that ends (PostgreSQL
restarted or shut down, the backend terminated) sends its goodbye and closes the socket, which
then reads as ready. So the check looks at the socket instead; a host that vanished without a
word is found by the first statement, as it was by the `SELECT 1`. After an error in a request,
Django's own check (`is_usable`, the `SELECT 1`) still decides whether the connection is kept.
"""

import select

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    # Django's (CONN_HEALTH_CHECKS, and whether this request's check is done); not in its stubs.
    health_check_enabled: bool
    health_check_done: bool

    def close_if_health_check_failed(self) -> None:
        if self.connection is None or not self.health_check_enabled or self.health_check_done:
            return
        if self.connection.closed or _has_something_to_read(self.connection.fileno()):
            self.close()
        self.health_check_done = True


def _has_something_to_read(socket: int) -> bool:
    """Whether the server sent anything to a connection that asked for nothing (psycopg has
    read every answer to what it asked): only a backend ending does."""
    waiting = select.poll()
    waiting.register(socket, select.POLLIN | select.POLLHUP | select.POLLERR)
    return bool(waiting.poll(0))
