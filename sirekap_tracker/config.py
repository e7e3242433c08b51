"""Reading settings from the environment, failing loudly and in one line.

Every helper raises ConfigError naming the variable, so a bad deployment says what to fix instead
of printing a traceback from deep inside Django or Celery.
"""

import ipaddress
import os
import re
import secrets
import sys
import zoneinfo
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import dj_database_url
import psycopg
import redis
from django.conf import settings
from psycopg.conninfo import make_conninfo

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}
REDIS_SCHEMES = {"redis", "rediss", "unix"}
POSTGRES_SCHEMES = {"postgres", "postgresql", "pgsql"}


class ConfigError(Exception):
    """A setting in the environment is missing, malformed or points at nothing."""


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigError(f"{name}: expected true or false, got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}: expected a whole number, got {raw!r}") from None


def env_http_url(name: str, default: str) -> str:
    """An http(s) base URL without its trailing slash, or "" when unset and without default."""
    raw = os.environ.get(name, default).strip()
    if not raw:
        return ""
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name}: expected an http:// or https:// URL, got {raw!r}")
    return raw.rstrip("/")


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    items = [item.strip() for item in raw.split(",") if item.strip()]
    if not items:
        raise ConfigError(f"{name}: expected a comma-separated list, got {raw!r}")
    return items


def env_addresses(name: str, default: list[str]) -> list[str]:
    """IP addresses or networks (CIDR), comma-separated; "*" for any."""
    values = env_list(name, default)
    for value in values:
        if value == "*":
            continue
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ConfigError(
                f"{name}: expected IP addresses or networks (e.g. 127.0.0.1,172.28.0.0/24), "
                f"got {value!r}"
            ) from None
    return values


def env_time_zone(name: str, default: str) -> str:
    value = env_str(name, default)
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{name}: unknown time zone {value!r} (e.g. Asia/Jakarta)") from None
    return value


def env_choice(name: str, default: str, choices: list[str]) -> str:
    value = env_str(name, default)
    if value not in choices:
        raise ConfigError(f"{name}: expected one of {', '.join(choices)}, got {value!r}")
    return value


def env_area_code(name: str) -> str | None:
    """A KPU area code (2, 4, 6 or 10 digits), "" for the nation, or None when unset."""
    raw = os.environ.get(name)
    if raw is None:
        return None
    value = raw.strip()
    if value and not (value.isascii() and value.isdigit() and len(value) in (2, 4, 6, 10)):
        raise ConfigError(
            f"{name}: expected a KPU area code of 2, 4, 6 or 10 digits (e.g. 6409), got {raw!r}"
        )
    return value


# S3's rules for a bucket's name: 3 to 63 lowercase letters, digits, dots and hyphens, starting
# and ending with a letter or digit.
S3_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def env_public_s3() -> dict | None:
    """The bucket the public snapshot is mirrored to (PUBLIC_S3_*, PUBLIC_BASE_URL), or None
    when PUBLIC_S3_BUCKET is unset; half a configuration names what is missing."""
    bucket = env_str("PUBLIC_S3_BUCKET", "")
    rest = ["PUBLIC_S3_ENDPOINT_URL", "PUBLIC_S3_REGION", "PUBLIC_S3_ACCESS_KEY",
            "PUBLIC_S3_SECRET_KEY"]  # fmt: skip
    if not bucket:
        for name in rest:
            if env_str(name, ""):
                raise ConfigError(f"PUBLIC_S3_BUCKET: not set, but {name} is")
        return None
    if not S3_BUCKET_NAME.fullmatch(bucket) or ".." in bucket:
        raise ConfigError(
            f"PUBLIC_S3_BUCKET: not a bucket name (3 to 63 lowercase letters, digits, dots and "
            f"hyphens), got {bucket!r}"
        )
    access_key = env_str("PUBLIC_S3_ACCESS_KEY", "")
    secret_key = env_str("PUBLIC_S3_SECRET_KEY", "")
    if not access_key:
        raise ConfigError("PUBLIC_S3_ACCESS_KEY: required when PUBLIC_S3_BUCKET is set")
    if not secret_key:
        raise ConfigError("PUBLIC_S3_SECRET_KEY: required when PUBLIC_S3_BUCKET is set")
    base_url = env_http_url("PUBLIC_BASE_URL", "")
    if not base_url:
        raise ConfigError(
            "PUBLIC_BASE_URL: required when PUBLIC_S3_BUCKET is set: the address the public "
            "reads the site at (https://...), for the open data's image links"
        )
    return {
        "bucket": bucket,
        "endpoint_url": env_http_url("PUBLIC_S3_ENDPOINT_URL", "") or None,
        "region": env_str("PUBLIC_S3_REGION", "") or None,
        "access_key": access_key,
        "secret_key": secret_key,
        "base_url": base_url,
    }


# Django's own deployment check asks for as much (security.W009).
SECRET_KEY_MIN_LENGTH = 50
SECRET_KEY_MIN_UNIQUE = 5
# The placeholder of .env.example starts so; a copied example must not run with it.
SECRET_KEY_PLACEHOLDER = "change-me"


def env_secret_key(name: str, fallback_file: Path, debug: bool) -> str:
    """The key from the environment, else one generated once and kept beside the local data.

    Every local process (web, worker, beat) must share one key, hence the file rather than a
    fresh random key per process. In production set it: each container would keep its own file
    (sessions signed by one web container would not be read by another). With DEBUG off a key
    must be strong: 50 characters or more, not all alike, not the placeholder.
    """
    value = os.environ.get(name)
    if value is None:
        value = _generated_secret_key(name, fallback_file)
    value = value.strip()
    if not value:
        raise ConfigError(f"{name}: empty; set a random key of {SECRET_KEY_MIN_LENGTH} characters")
    if debug:
        return value
    if len(value) < SECRET_KEY_MIN_LENGTH:
        raise ConfigError(
            f"{name}: too short ({len(value)} characters, need {SECRET_KEY_MIN_LENGTH} or more)"
        )
    if value.lower().startswith(SECRET_KEY_PLACEHOLDER):
        raise ConfigError(f"{name}: still the placeholder of .env.example; set a random key")
    if len(set(value)) < SECRET_KEY_MIN_UNIQUE:
        raise ConfigError(f"{name}: fewer than {SECRET_KEY_MIN_UNIQUE} different characters")
    return value


def _generated_secret_key(name: str, fallback_file: Path) -> str:
    try:
        fallback_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(fallback_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return fallback_file.read_text()
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(50))
        return fallback_file.read_text()
    except OSError as error:
        raise ConfigError(
            f"{name}: not set, and no key can be kept in {fallback_file} ({error.strerror})"
        ) from None


def env_token(name: str, min_length: int) -> str:
    """A shared secret, or "" when unset (what it guards is then off); never the placeholder
    of .env.example, which anyone can read."""
    value = env_str(name, "")
    if value and len(value) < min_length:
        raise ConfigError(f"{name}: too short ({len(value)} characters, need {min_length} or more)")
    if value.lower().startswith(SECRET_KEY_PLACEHOLDER):
        raise ConfigError(f"{name}: still the placeholder of .env.example; set a random token")
    return value


def parse_database_url(name: str, url: str) -> dict:
    scheme = urlsplit(url).scheme
    if scheme not in POSTGRES_SCHEMES:
        raise ConfigError(
            f"{name}: expected postgresql://user:password@host:port/database, got {_redact(url)!r}"
        )
    try:
        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
        # Django's backend with a health check that sends nothing (sirekap_tracker/postgresql).
        config["ENGINE"] = "sirekap_tracker.postgresql"
        options = config.setdefault("OPTIONS", {})
        # Fail fast when PostgreSQL is away, instead of hanging on the OS default.
        options["connect_timeout"] = 5
        # No JIT compilation: every statement of ours is short, but the planner overestimates
        # some (a range scan per desa, the timeline's take) past jit_above_cost, and PostgreSQL
        # builds with LLVM (Debian's, the postgres image's) then spend 0.7-0.8 s compiling a
        # statement that runs in 50 ms. An `options` of the URL's own comes after, and wins.
        options["options"] = f"-c jit=off {options.get('options', '')}".strip()
    except ValueError as error:
        raise ConfigError(f"{name}: {error}") from None
    if not config.get("NAME"):
        raise ConfigError(f"{name}: no database name in {_redact(url)!r}")
    return dict(config)


def check_redis_url(name: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in REDIS_SCHEMES:
        raise ConfigError(
            f"{name}: expected redis://host:port/db or unix:///path?db=N, got {_redact(url)!r}"
        )
    if parts.scheme != "unix" and not parts.hostname:
        raise ConfigError(f"{name}: no host in {_redact(url)!r}")
    # redis://host/N or ?db=N; a unix socket's path names the socket, not the database.
    path_db = "" if parts.scheme == "unix" else parts.path.strip("/")
    db = dict(parse_qsl(parts.query)).get("db", path_db)
    if db and not db.isdigit():
        raise ConfigError(f"{name}: the database must be a number, got {db!r} in {_redact(url)!r}")
    return url


def broker_url(redis_url: str) -> str:
    """Celery's spelling of REDIS_URL. For a unix socket, redis-py's unix://path?db=N is
    redis+socket://path?virtual_host=N: kombu ignores ?db= there and would put the queues in
    database 0, beside whatever else shares that Redis (another deployment, the tests)."""
    parts = urlsplit(redis_url)
    if parts.scheme != "unix":
        return redis_url
    query = dict(parse_qsl(parts.query))
    query["virtual_host"] = query.pop("db", "0")
    location = redis_url.removeprefix("unix://").split("?", 1)[0]
    return f"redis+socket://{location}?{urlencode(query)}"


def check_database_reachable(name: str, config: dict) -> None:
    try:
        psycopg.connect(_libpq_dsn(config), connect_timeout=5).close()
    except psycopg.Error as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"{name}: cannot connect to PostgreSQL ({reason})") from None


def check_redis_reachable(name: str, url: str) -> None:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
        client.ping()
        client.close()
    except (redis.RedisError, OSError) as error:
        raise ConfigError(f"{name}: cannot connect to Redis ({error})") from None


def _libpq_dsn(config: dict) -> str:
    return make_conninfo(
        dbname=config["NAME"],
        user=config.get("USER") or None,
        password=config.get("PASSWORD") or None,
        host=config.get("HOST") or None,
        port=config.get("PORT") or None,
    )


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


def load_settings_or_exit(check_services: bool = True) -> None:
    """Loads Django's settings (and checks the services answer), or exits with one clear line.

    Entry points (manage.py, wsgi, asgi, the Celery app) call this first, so a wrong or
    unreachable DATABASE_URL or REDIS_URL reads as one line naming the variable, not a traceback.
    Web processes pass check_services=False: a bad value still stops them, an outage does not.
    """
    try:
        settings.INSTALLED_APPS  # noqa: B018 - touching a setting imports the settings module
        if check_services:
            check_database_reachable("DATABASE_URL", settings.DATABASES["default"])
            check_redis_reachable("REDIS_URL", settings.REDIS_URL)
    except ConfigError as error:
        # sys.__stderr__: Celery beat redirects sys.stderr into its log by the time it starts.
        print(f"error: {error}", file=sys.__stderr__, flush=True)
        sys.exit(2)
