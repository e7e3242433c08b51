"""The production nginx config (deploy/nginx/default.conf.template) run by Debian's nginx on a
loopback port, for tests/test_nginx.py and the load benchmark (benchmarks/public_load.py).

The official image includes the rendered file inside the http {} block of its own nginx.conf;
here a minimal main config of the same shape does, with every path it writes under one folder.
"""

import os
import socket
import subprocess
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
NGINX = Path("/usr/sbin/nginx")
TEMPLATE = PROJECT_DIR / "deploy" / "nginx" / "default.conf.template"
# What only makes sense in the container: its port and its cache folder.
CONTAINER_LISTEN = "listen 80;"
CONTAINER_CACHE = "/var/cache/nginx/sirekap"

MAIN_CONFIG = """\
daemon off;
{user}
worker_processes auto;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    keepalive_timeout 65;
    access_log {folder}/access.log;
    # What each request carried (tests/test_browser_weight.py counts the bytes of uploads).
    log_format bodies '$request_method $uri $status $request_length $content_length';
    access_log {folder}/bodies.log bodies;
    client_body_temp_path {folder}/client_body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
{servers}
}}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def production_config(
    *,
    upstream: str,
    port: int,
    cache_folder: Path,
    tls_proxy: str = "127.0.0.1",
    intake: str | None = None,
) -> str:
    """The template as the image renders it with NGINX_UPSTREAM=upstream,
    NGINX_INTAKE_UPSTREAM=intake (by default the same gunicorn) and NGINX_TLS_PROXY=tls_proxy,
    listening on a loopback port and caching into cache_folder."""
    text = TEMPLATE.read_text()
    # The image replaces a variable wherever it is; the container's own lines are there once.
    for old, new in [
        ("${NGINX_UPSTREAM}", upstream),
        ("${NGINX_INTAKE_UPSTREAM}", intake or upstream),
        ("${NGINX_TLS_PROXY}", tls_proxy),
    ]:
        if old not in text:
            raise ValueError(f"{TEMPLATE.name}: expected {old!r}")
        text = text.replace(old, new)
    for old, new in [
        (CONTAINER_LISTEN, f"listen 127.0.0.1:{port};"),
        (CONTAINER_CACHE, str(cache_folder)),
    ]:
        if text.count(old) != 1:
            raise ValueError(f"{TEMPLATE.name}: expected {old!r} once")
        text = text.replace(old, new)
    return text


def static_config(*, port: int, root: Path) -> str:
    """A server answering the files under root, as nginx serves any static file."""
    return f"server {{ listen 127.0.0.1:{port}; root {root}; charset utf-8; }}"


class LocalNginx:
    """nginx in the foreground, a child of this process, with servers (http-level text) that
    listen on ports; started and stopped by `with`."""

    def __init__(self, folder: Path, servers: list[str], ports: list[int]) -> None:
        self.folder = folder
        self.servers = servers
        self.ports = ports
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 10) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "nginx.conf"
        # Run as root, nginx hands its workers to `nobody`, who cannot enter a private temp
        # folder; they stay root then, on loopback ports only.
        user = "user root;" if os.geteuid() == 0 else ""
        servers = "\n".join(self.servers)
        config.write_text(MAIN_CONFIG.format(user=user, folder=self.folder, servers=servers))
        self.process = subprocess.Popen(
            [str(NGINX), "-p", str(self.folder), "-c", str(config), "-e", "stderr"],
            stderr=(self.folder / "stderr.log").open("wb"),
        )  # fmt: skip
        self._wait_listening(timeout)

    def _wait_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not all(_accepts(port) for port in self.ports):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"nginx did not start: {self.errors()}")
            time.sleep(0.05)

    def errors(self) -> str:
        logs = [self.folder / "stderr.log", self.folder / "error.log"]
        return "\n".join(path.read_text() for path in logs if path.exists()).strip()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> "LocalNginx":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0
