"""docker-compose.yml cannot run here (no Docker engine), so we check it is consistent."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.conf import settings

from tests.conftest import PROJECT_DIR, child_env

APP_SERVICES = ["web", "worker", "snapshot-worker", "beat", "migrate"]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((PROJECT_DIR / "docker-compose.yml").read_text())


def command_of(service: dict) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else command


def test_compose_has_the_production_services(compose):
    assert set(compose["services"]) >= {"postgres", "redis", "web", "worker", "beat", "migrate"}


def test_app_services_share_one_image_built_from_the_dockerfile(compose):
    images = {compose["services"][name]["image"] for name in APP_SERVICES}
    assert len(images) == 1
    for name in APP_SERVICES:
        assert compose["services"][name]["build"] == "."
    assert (PROJECT_DIR / "Dockerfile").is_file()


def test_every_dependency_exists_and_waits_for_health(compose):
    services = compose["services"]
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"
    for name in ["web", "worker", "beat"]:
        assert set(services[name]["depends_on"]) == {"postgres", "redis", "migrate"}
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )


def test_redis_is_durable_and_never_evicts(compose):
    command = " ".join(command_of(compose["services"]["redis"]))
    assert "--appendonly yes" in command
    assert "--maxmemory-policy noeviction" in command
    assert compose["services"]["redis"]["image"].startswith("redis:")
    assert compose["services"]["postgres"]["image"].startswith("postgres:")


def test_web_runs_gunicorn_on_our_wsgi_application(compose):
    command = command_of(compose["services"]["web"])
    assert command[0] == "gunicorn"
    module, attribute = command[1].split(":")
    assert (PROJECT_DIR / (module.replace(".", "/") + ".py")).is_file()
    assert f"{attribute} =" in (PROJECT_DIR / (module.replace(".", "/") + ".py")).read_text()
    config = command[command.index("--config") + 1]
    assert (PROJECT_DIR / config).is_file()
    assert "/livez" in " ".join(compose["services"]["web"]["healthcheck"]["test"])


def test_worker_and_beat_run_our_celery_app(compose):
    worker = command_of(compose["services"]["worker"])
    beat = command_of(compose["services"]["beat"])
    for command, role in [(worker, "worker"), (beat, "beat")]:
        assert command[:3] == ["celery", "--app", "sirekap_tracker"]
        assert command[3] == role
    assert (PROJECT_DIR / "sirekap_tracker" / "celery.py").is_file()
    assert compose["services"]["beat"]["deploy"]["replicas"] == 1


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


def test_the_dockerfile_installs_the_pinned_requirements_and_runs_as_a_user():
    dockerfile = (PROJECT_DIR / "Dockerfile").read_text()
    assert "--require-hashes -r requirements.txt" in dockerfile
    assert re.search(r"^USER \w+", dockerfile, re.MULTILINE)
    assert Path(PROJECT_DIR / "requirements.txt").is_file()


def test_web_and_workers_share_the_documents_volume(compose):
    for name in ["web", "worker", "beat"]:
        service = compose["services"][name]
        assert "media:/app/media" in service["volumes"]
        assert service["environment"]["MEDIA_ROOT"] == "/app/media"
    assert "media" in compose["volumes"]


def test_web_and_the_snapshot_worker_share_the_public_snapshot(compose):
    for name in ["web", "worker", "snapshot-worker", "beat"]:
        service = compose["services"][name]
        assert "snapshots:/app/snapshots" in service["volumes"]
        assert service["environment"]["SNAPSHOT_ROOT"] == "/app/snapshots"
    assert "snapshots" in compose["volumes"]
    dockerfile = (PROJECT_DIR / "Dockerfile").read_text()
    assert re.search(r"chown sirekap .*/app/snapshots", dockerfile)


def test_the_snapshot_queue_has_a_worker_of_its_own_and_the_other_worker_skips_it(compose):
    def queues(name: str) -> str:
        command = compose["services"][name]["command"]
        return command[command.index("--queues") + 1]

    assert queues("snapshot-worker") == settings.SNAPSHOT_QUEUE
    assert queues("worker") == "celery"
    assert settings.CELERY_TASK_ROUTES["public.tasks.*"]["queue"] == settings.SNAPSHOT_QUEUE
    command = compose["services"]["snapshot-worker"]["command"]
    # One process unless the deployment says how many kinds to refresh at once.
    assert command[command.index("--concurrency") + 1] == "${SNAPSHOT_CONCURRENCY:-1}"


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


def test_nginx_is_the_public_entrance_and_web_is_reached_through_it_only(compose):
    services = compose["services"]
    assert services["nginx"]["ports"] == ["80:80"]
    assert services["nginx"]["image"].startswith("nginx:")
    assert services["nginx"]["restart"] == "unless-stopped"
    assert services["nginx"]["depends_on"] == {"web": {"condition": "service_healthy"}}
    assert "healthcheck" in services["nginx"]
    published = {name for name, service in services.items() if "ports" in service}
    assert published == {"nginx"}
    assert services["web"]["expose"] == ["8000"]


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
    assert upper == {"NGINX_UPSTREAM", "NGINX_TLS_PROXY"}


def test_the_nginx_template_gets_every_variable_it_takes_from_compose(compose):
    environment = compose["services"]["nginx"]["environment"]
    assert environment["NGINX_TLS_PROXY"] == "${NGINX_TLS_PROXY:-127.0.0.1}"
    assert set(environment) == {"NGINX_UPSTREAM", "NGINX_TLS_PROXY"}


def test_gunicorn_and_django_believe_forwarded_headers_from_nginx_alone(compose):
    """nginx is another container: web trusts its fixed address, inside the compose subnet,
    and gunicorn.conf.py as gunicorn loads it reads that address."""
    import ipaddress

    address = compose["services"]["nginx"]["networks"]["default"]["ipv4_address"]
    (subnet,) = [entry["subnet"] for entry in compose["networks"]["default"]["ipam"]["config"]]
    assert ipaddress.ip_address(address) in ipaddress.ip_network(subnet)
    allowed = compose["services"]["web"]["environment"]["FORWARDED_ALLOW_IPS"]
    assert allowed == address
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
