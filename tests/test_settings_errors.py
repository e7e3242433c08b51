"""A bad or unreachable setting reads as one line naming the variable, never a traceback."""

import subprocess
import sys

import pytest

from tests.conftest import PROJECT_DIR, child_env

# What a copied .env.example would run with, DEBUG off.
EXAMPLE_SECRET_KEY = next(
    line.split("=", 1)[1]
    for line in (PROJECT_DIR / ".env.example").read_text().splitlines()
    if line.startswith("SECRET_KEY=")
)
# A whole mirror configuration (public/mirror.py), for one variable at a time to spoil.
PUBLIC_S3 = {
    "PUBLIC_S3_BUCKET": "sirekap-public",
    "PUBLIC_S3_ACCESS_KEY": "key",
    "PUBLIC_S3_SECRET_KEY": "secret",
    "PUBLIC_BASE_URL": "https://sirekap.example.org",
    "STATIC_ROOT": "/tmp/static",
}
BAD_SETTINGS = [
    ({"DATABASE_URL": "mysql://root@localhost/sirekap"}, "DATABASE_URL: expected postgresql://"),
    ({"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/sirekap"}, "DATABASE_URL: cannot connect"),
    ({"REDIS_URL": "http://localhost:6379/0"}, "REDIS_URL: expected redis://"),
    ({"REDIS_URL": "redis://127.0.0.1:1/0"}, "REDIS_URL: cannot connect to Redis"),
    ({"REDIS_URL": "unix:///tmp/redis.sock?db=cache"}, "REDIS_URL: the database must be a number"),
    ({"REDIS_URL": "redis://127.0.0.1:6379/first"}, "REDIS_URL: the database must be a number"),
    ({"DEBUG": "perhaps"}, "DEBUG: expected true or false, got 'perhaps'"),
    ({"TIME_ZONE": "Asia/Atlantis"}, "TIME_ZONE: unknown time zone 'Asia/Atlantis'"),
    ({"LANGUAGE_CODE": "fr"}, "LANGUAGE_CODE: expected one of id, en, got 'fr'"),
    ({"SECRET_KEY": "short"}, "SECRET_KEY: too short"),
    ({"SECRET_KEY": "k" * 49}, "SECRET_KEY: too short (49 characters, need 50 or more)"),
    ({"SECRET_KEY": "abab" * 15}, "SECRET_KEY: fewer than 5 different characters"),
    ({"SECRET_KEY": EXAMPLE_SECRET_KEY}, "SECRET_KEY: still the placeholder of .env.example"),
    ({"FORWARDED_ALLOW_IPS": "nginx"}, "FORWARDED_ALLOW_IPS: expected IP addresses or networks"),
    ({"ALLOWED_HOSTS": " , "}, "ALLOWED_HOSTS: expected a comma-separated list"),
    ({"DASHBOARD_AREA": "64.09"}, "DASHBOARD_AREA: expected a KPU area code"),
    ({"DASHBOARD_CONTEST": "pilpres"}, "DASHBOARD_CONTEST: expected one of"),
    ({"METRICS_TOKEN": "rahasia"}, "METRICS_TOKEN: too short (7 characters, need 16 or more)"),
    (
        {"METRICS_TOKEN": "change-me-to-a-random-token-of-32-characters"},
        "METRICS_TOKEN: still the placeholder of .env.example",
    ),
    ({"LOG_FORMAT": "xml"}, "LOG_FORMAT: expected one of json, text, got 'xml'"),
    ({"CACHE_URL": "memcached://127.0.0.1:11211"}, "CACHE_URL: expected redis://"),
    (
        {"PUBLIC_S3_BUCKET": "sirekap-public"},
        "PUBLIC_S3_ACCESS_KEY: required when PUBLIC_S3_BUCKET",
    ),
    (
        {"PUBLIC_S3_BUCKET": "sirekap-public", "PUBLIC_S3_ACCESS_KEY": "key"},
        "PUBLIC_S3_SECRET_KEY: required when PUBLIC_S3_BUCKET",
    ),
    ({"PUBLIC_S3_BUCKET": "Sirekap_Public"}, "PUBLIC_S3_BUCKET: not a bucket name"),
    ({"PUBLIC_S3_SECRET_KEY": "secret"}, "PUBLIC_S3_BUCKET: not set, but PUBLIC_S3_SECRET_KEY is"),
    (
        {**PUBLIC_S3, "PUBLIC_S3_ENDPOINT_URL": "s3.example.org"},
        "PUBLIC_S3_ENDPOINT_URL: expected an http:// or https:// URL",
    ),
    (
        {**PUBLIC_S3, "PUBLIC_BASE_URL": ""},
        "PUBLIC_BASE_URL: required when PUBLIC_S3_BUCKET is set",
    ),
    ({**PUBLIC_S3, "STATIC_ROOT": ""}, "STATIC_ROOT: required when PUBLIC_S3_BUCKET is set"),
]


def run(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=60
    )


def assert_one_line_error(result: subprocess.CompletedProcess, expected: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert expected in lines[0]


@pytest.mark.parametrize(("overrides", "expected"), BAD_SETTINGS)
def test_manage_py_names_the_bad_variable_in_one_line(overrides, expected):
    result = run([sys.executable, "manage.py", "check"], child_env(**overrides))
    assert_one_line_error(result, expected)


@pytest.mark.parametrize("command", ["worker", "beat"])
@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"REDIS_URL": "redis://127.0.0.1:1/0"}, "REDIS_URL: cannot connect to Redis"),
        (
            {"REDIS_URL": "unix:///tmp/redis.sock?db=cache"},
            "REDIS_URL: the database must be a number",
        ),
        ({"REDIS_URL": "redis://127.0.0.1:6379/first"}, "REDIS_URL: the database must be a number"),
        ({"DATABASE_URL": "sqlite:///db.sqlite3"}, "DATABASE_URL: expected postgresql://"),
    ],
)
def test_celery_names_the_bad_variable_and_stops(command, overrides, expected):
    result = run(
        [sys.executable, "-m", "celery", "--app", "sirekap_tracker", command],
        child_env(**overrides),
    )
    # Celery prints its banner (and a warning when run as root) before our check runs.
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert expected in errors[0]


def test_a_password_in_a_bad_url_is_not_printed():
    result = run(
        [sys.executable, "manage.py", "check"],
        child_env(DATABASE_URL="mysql://root:hunter2@localhost/sirekap"),
    )
    assert_one_line_error(result, "DATABASE_URL")
    assert "hunter2" not in result.stderr


def test_good_settings_pass_the_checks():
    result = run([sys.executable, "manage.py", "check"], child_env())
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout
