"""deploy/caddy/Caddyfile, the TLS front of docs/deploy.md, checked and run by Debian's caddy:
what it passes on is what Django trusts."""

import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.conftest import PROJECT_DIR, wait_until
from tests.nginx import free_port

CADDY = Path("/usr/bin/caddy")
CADDYFILE = PROJECT_DIR / "deploy" / "caddy" / "Caddyfile"
SITE = "sirekap.example.org {"
NGINX_ON_LOOPBACK = "reverse_proxy 127.0.0.1:8080"

pytestmark = pytest.mark.skipif(
    not CADDY.exists(), reason=f"{CADDY} is missing: run `make test` as root to install it"
)


def caddy_env(tmp_path: Path) -> dict:
    # Its certificates and state under the test's folder, not the user's home.
    return {
        "PATH": "/usr/bin:/bin",
        "XDG_DATA_HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path),
    }


def test_the_caddyfile_is_valid(tmp_path):
    checked = subprocess.run(
        [CADDY, "validate", "--config", CADDYFILE, "--adapter", "caddyfile"],
        env=caddy_env(tmp_path), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert "Valid configuration" in checked.stdout + checked.stderr


class _Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps(dict(self.headers)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_caddy_replaces_the_forwarded_scheme_and_the_request_id_a_client_sends(tmp_path):
    """Over plain HTTP on loopback (no certificate here): a client claiming https must not be
    believed, since Django would then take the request as secure."""
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    port = free_port()
    text = CADDYFILE.read_text()
    for old in (SITE, NGINX_ON_LOOPBACK):
        assert text.count(old) == 1, old
    text = text.replace(SITE, f"http://127.0.0.1:{port} {{")
    text = text.replace(NGINX_ON_LOOPBACK, f"reverse_proxy 127.0.0.1:{upstream.server_port}")
    config = tmp_path / "Caddyfile"
    config.write_text("{\n\tadmin off\n}\n\n" + text)
    caddy = subprocess.Popen(
        [CADDY, "run", "--config", config, "--adapter", "caddyfile"],
        env=caddy_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until(lambda: httpx.get(url).status_code == 200, timeout=20)
        spoofed = {"X-Forwarded-Proto": "https", "X-Request-ID": "chosen-by-the-client"}
        first = httpx.get(url, headers=spoofed).json()
        second = httpx.get(url, headers=spoofed).json()
        assert first["X-Forwarded-Proto"] == "http"
        assert first["X-Forwarded-For"] == "127.0.0.1"
        assert first["X-Request-Id"] != "chosen-by-the-client"
        assert len(first["X-Request-Id"]) == 36 and first["X-Request-Id"] != second["X-Request-Id"]
    finally:
        caddy.terminate()
        caddy.wait(timeout=10)
        upstream.shutdown()
