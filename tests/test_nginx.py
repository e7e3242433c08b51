"""The production nginx config (deploy/nginx/default.conf.template) run by a real nginx in front
of a stand-in for gunicorn that counts what reaches it: what an operator would check."""

import gzip
import http.client
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from tests.conftest import wait_until
from tests.nginx import NGINX, LocalNginx, free_port, production_config

pytestmark = pytest.mark.skipif(
    not NGINX.exists(), reason=f"{NGINX} is missing: run `make test` as root to install it"
)

SHORT = "public, max-age=5, stale-while-revalidate=30, stale-if-error=600"
PUBLIC_PATHS = [
    "/",
    "/en/",
    "/progress/pkwkk/",
    "/progress/pkwkk/6409/",
    "/en/progress/pkwkk/6409/",
    "/api/hhcw/pkwkk/64/6409.json",
    "/api/progress/pkwkk/6409.csv",
]
STAFF_PATHS = [
    "/dashboard/",
    "/dashboard/pkwkk/6409/",
    "/en/dashboard/pkwkk/6409/",
    "/masuk/",
    "/keluar/",
    "/admin/",
    "/wilayah/64/",
]
# Where documents arrive: passed to the intake's gunicorns (compose's intake), never cached.
DOCUMENT_PATHS = [
    "/api/uploads/",
    "/api/uploads/42",
    "/api/uploads/tus/",
    "/api/uploads/tus/0123456789abcdef0123456789abcdef",
    "/unggah/",
    "/en/unggah/",
    "/unggah/sw.js",
]


class Upstream(ThreadingHTTPServer):
    """Stands in for gunicorn: answers each path as `routes` says (by default as Django answers
    a public page: public, max-age=5) and records every request that reaches it."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, dict] = {}
        self.seen: list[tuple[str, str, dict[str, str]]] = []

    def hits(self, path: str) -> int:
        return sum(1 for _, seen_path, _ in self.seen if seen_path == path)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # lets nginx keep its connections, as configured

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._answer()

    do_PATCH = do_POST

    def _answer(self) -> None:
        self.server.seen.append((self.command, self.path, dict(self.headers)))
        route = self.server.routes.get(urlsplit(self.path).path, {})
        number = self.server.hits(self.path)
        body = route.get("body") or json.dumps({"path": self.path, "answer": number}).encode()
        self.send_response(route.get("status", 200))
        headers = {"Content-Type": "application/json", "Cache-Control": SHORT}
        for name, value in {**headers, **route.get("headers", {})}.items():
            if value is not None:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def _serving():
    server = Upstream()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


upstream = pytest.fixture(_serving, name="upstream")
intake = pytest.fixture(_serving, name="intake")


@pytest.fixture
def nginx(upstream, intake, tmp_path):
    port = free_port()
    config = production_config(
        upstream=f"127.0.0.1:{upstream.server_port}",
        intake=f"127.0.0.1:{intake.server_port}",
        port=port,
        cache_folder=tmp_path / "cache",
    )
    with LocalNginx(tmp_path / "nginx", [config], [port]):
        yield port


def get(port: int, path: str, headers: dict | None = None, method: str = "GET", body=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Host": "sirekap.test", **(headers or {})}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def test_a_second_read_of_open_data_within_its_max_age_is_a_hit(nginx, upstream):
    first = get(nginx, "/api/x.json")
    second = get(nginx, "/api/x.json")
    assert (first[0], first[1]["X-Cache-Status"]) == (200, "MISS")
    assert (second[0], second[1]["X-Cache-Status"]) == (200, "HIT")
    assert second[2] == first[2]
    assert upstream.hits("/api/x.json") == 1


@pytest.mark.parametrize("path", PUBLIC_PATHS)
def test_public_pages_and_open_data_are_cached(nginx, upstream, path):
    get(nginx, path)
    assert get(nginx, path)[1]["X-Cache-Status"] == "HIT"
    assert upstream.hits(path) == 1


@pytest.mark.parametrize("path", STAFF_PATHS)
def test_staff_paths_are_never_cached_whatever_django_says(nginx, upstream, path):
    upstream.routes[path] = {"headers": {"Cache-Control": "public, max-age=60"}}
    for _ in range(2):
        status, headers, _ = get(nginx, path, {"Cookie": "sessionid=staff"})
        assert (status, headers["X-Cache-Status"]) == (200, None)
    assert upstream.hits(path) == 2


@pytest.mark.parametrize("path", DOCUMENT_PATHS)
def test_documents_go_to_the_intake_and_are_never_cached(nginx, upstream, intake, path):
    intake.routes[path] = {"headers": {"Cache-Control": "public, max-age=60"}}
    for method in ["GET", "POST", "GET"]:
        body = b"x" if method == "POST" else None
        status, headers, _ = get(nginx, path, method=method, body=body)
        assert (status, headers["X-Cache-Status"]) == (200, None)
    assert (intake.hits(path), upstream.seen) == (3, [])


def test_an_answer_setting_a_cookie_is_not_cached(nginx, upstream):
    upstream.routes["/dashboard/"] = {"headers": {"Set-Cookie": "sessionid=new; HttpOnly"}}
    upstream.routes["/api/cookie.json"] = {"headers": {"Set-Cookie": "tracking=1"}}
    for path in ["/dashboard/", "/api/cookie.json"]:
        first, second = get(nginx, path), get(nginx, path)
        assert second[1]["Set-Cookie"] == first[1]["Set-Cookie"]
        assert upstream.hits(path) == 2


def test_what_a_request_with_a_session_got_is_not_stored_but_it_may_read_the_cache(nginx, upstream):
    path, session = "/progress/pkwkk/6409/", {"Cookie": "sessionid=abc"}
    assert get(nginx, path, session)[1]["X-Cache-Status"] == "MISS"
    assert get(nginx, path)[1]["X-Cache-Status"] == "MISS"
    assert get(nginx, path, session)[1]["X-Cache-Status"] == "HIT"
    assert upstream.hits(path) == 2


def test_the_query_string_is_part_of_the_cache_key(nginx, upstream):
    paths = ["/progress/pkwkk/6409/", "/progress/pkwkk/6409/?part=live",
             "/progress/pkwkk/6409/?sort=progress"]  # fmt: skip
    bodies = [get(nginx, path)[2] for path in paths]
    assert [get(nginx, path)[2] for path in paths] == bodies
    assert [json.loads(body)["path"] for body in bodies] == paths
    assert [upstream.hits(path) for path in paths] == [1, 1, 1]


def test_django_gets_the_host_the_client_and_the_scheme_in_front(nginx, upstream):
    get(nginx, "/api/x.json")
    get(nginx, "/api/x.json", {"X-Forwarded-Proto": "https"})
    (_, _, plain), (_, _, secure) = upstream.seen
    assert plain["Host"] == secure["Host"] == "sirekap.test"
    assert (plain["X-Forwarded-Proto"], secure["X-Forwarded-Proto"]) == ("http", "https")
    assert plain["X-Forwarded-For"] == "127.0.0.1"


def test_http_and_https_and_each_host_have_their_own_entries(nginx, upstream):
    for headers in [{}, {"X-Forwarded-Proto": "https"}, {"Host": "other.test"}]:
        assert get(nginx, "/api/x.json", headers)[1]["X-Cache-Status"] == "MISS"
    assert upstream.hits("/api/x.json") == 3


def test_the_last_good_answer_is_served_while_django_fails_or_is_down(nginx, upstream):
    upstream.routes["/api/flaky.json"] = {"headers": {"Cache-Control": "public, max-age=1"}}
    good = get(nginx, "/api/flaky.json")[2]
    # As Django's error page: no Cache-Control.
    upstream.routes["/api/flaky.json"] = {"status": 503, "headers": {"Cache-Control": None}}
    time.sleep(2.1)  # nginx counts an entry's age in whole seconds
    failing = [get(nginx, "/api/flaky.json") for _ in range(2)]
    # The stale answer goes out first and nginx asks Django after it (background update): wait
    # for that ask before taking Django away, or a busy machine shuts it down first.
    wait_until(lambda: upstream.hits("/api/flaky.json") >= 2, 10)
    upstream.shutdown()
    upstream.server_close()
    down = [get(nginx, "/api/flaky.json") for _ in range(2)]
    for status, headers, body in failing + down:
        assert (status, body) == (200, good)
        assert headers["X-Cache-Status"] in {"STALE", "UPDATING"}
    assert upstream.hits("/api/flaky.json") >= 2


@pytest.mark.parametrize("content_type", ["application/json", "text/csv", "text/html"])
def test_text_answers_are_compressed(nginx, upstream, content_type):
    body = b"6409,PENAJAM PASER UTARA,293,0\n" * 100
    upstream.routes["/api/big"] = {"headers": {"Content-Type": content_type}, "body": body}
    status, headers, compressed = get(nginx, "/api/big", {"Accept-Encoding": "gzip"})
    assert (status, headers["Content-Encoding"]) == (200, "gzip")
    assert gzip.decompress(compressed) == body


def test_an_upload_fits_and_a_larger_body_is_refused_before_django(nginx, intake):
    status, _, _ = get(nginx, "/api/uploads/", method="POST", body=b"x" * 1_000_000)
    assert (status, intake.hits("/api/uploads/")) == (200, 1)
    connection = http.client.HTTPConnection("127.0.0.1", nginx, timeout=10)
    connection.putrequest("POST", "/api/uploads/")
    connection.putheader("Content-Length", str(211 * 1024 * 1024))
    connection.endheaders()
    assert connection.getresponse().status == 413
    connection.close()
    assert intake.hits("/api/uploads/") == 1


def test_a_tus_chunk_of_a_page_is_passed_on_and_more_than_a_page_refused(nginx, intake):
    path = "/api/uploads/tus/0123456789abcdef0123456789abcdef"
    assert get(nginx, path, method="PATCH", body=b"x" * 1_000_000)[0] == 200
    connection = http.client.HTTPConnection("127.0.0.1", nginx, timeout=10)
    connection.putrequest("PATCH", path)
    connection.putheader("Content-Length", str(10 * 1024 * 1024 + 1))
    connection.endheaders()
    assert connection.getresponse().status == 413
    connection.close()
    assert intake.hits(path) == 1


def test_nginx_answers_its_own_health_check(nginx, upstream, intake):
    status, _, body = get(nginx, "/nginx-health")
    assert (status, body) == (200, b"ok\n")
    assert upstream.seen == intake.seen == []


@pytest.mark.parametrize("path", ["/masuk/", "/en/masuk/", "/admin/login/", "/dashboard/"])
def test_a_body_over_64_kib_is_refused_before_django_except_where_documents_arrive(
    nginx, upstream, path
):
    assert get(nginx, path, method="POST", body=b"x" * 65_536)[0] == 200
    assert get(nginx, path, method="POST", body=b"x" * 65_537)[0] == 413
    assert upstream.hits(path) == 1


@pytest.mark.parametrize("path", ["/unggah/", "/en/unggah/", "/api/uploads/"])
def test_where_documents_arrive_a_large_body_is_passed_on(nginx, intake, path):
    assert get(nginx, path, method="POST", body=b"x" * 1_000_000)[0] == 200
    assert intake.hits(path) == 1


@pytest.fixture
def nginx_behind_another_proxy(upstream, tmp_path):
    """nginx whose TLS proxy is a load balancer elsewhere: this test's client is not it."""
    port = free_port()
    config = production_config(
        upstream=f"127.0.0.1:{upstream.server_port}",
        port=port,
        cache_folder=tmp_path / "cache-behind",
        tls_proxy="10.255.0.1",
    )
    with LocalNginx(tmp_path / "nginx-behind", [config], [port]):
        yield port


def test_a_clients_own_x_forwarded_proto_is_overwritten_unless_it_is_the_tls_proxy(
    nginx_behind_another_proxy, upstream
):
    port = nginx_behind_another_proxy
    claimed = get(port, "/api/x.json", {"X-Forwarded-Proto": "https"})
    plain = get(port, "/api/x.json")
    ((_, _, seen),) = {(m, p, h["X-Forwarded-Proto"]) for m, p, h in upstream.seen}
    assert seen == "http"
    # The same answer for both: one cache entry, the one for plain HTTP.
    assert (claimed[1]["X-Cache-Status"], plain[1]["X-Cache-Status"]) == ("MISS", "HIT")


def test_django_gets_the_client_address_the_tls_proxy_reports_and_no_one_elses(
    nginx, nginx_behind_another_proxy, upstream
):
    """Django counts intake per client address: the last address in X-Forwarded-For."""
    get(nginx, "/masuk/", {"X-Forwarded-For": "36.80.1.9"})  # from the TLS proxy (127.0.0.1)
    get(nginx_behind_another_proxy, "/masuk/", {"X-Forwarded-For": "36.80.1.9"})  # a client
    reported, forged = (headers["X-Forwarded-For"] for _, _, headers in upstream.seen)
    assert reported.rsplit(", ", 1)[-1] == "36.80.1.9"
    assert forged.rsplit(", ", 1)[-1] == "127.0.0.1"


@pytest.mark.parametrize(
    "path",
    ["/metrics", "//metrics", "/%6Detrics", "/metrics?format=text", "/metrics/", "/en/../metrics"],
)
def test_metrics_never_leave_the_deployment_however_they_are_asked_for(nginx, upstream, path):
    upstream.routes["/metrics"] = {"body": b"sirekap_uploads 1\n"}
    status, _, body = get(nginx, path, {"Authorization": "Bearer a-stolen-token"})
    assert status == 404 and b"sirekap_" not in body
    assert upstream.seen == []


def test_nginx_answers_its_own_refusals_and_failures_under_api_in_json(nginx, upstream):
    too_large = get(nginx, "/api/hhcw/pkwkk.json", method="POST", body=b"x" * 65_537)
    upstream.shutdown()
    upstream.server_close()
    down = get(nginx, "/api/never-asked.json")
    for (status, headers, body), expected in [(too_large, 413), (down, 503)]:
        assert status == expected
        assert headers["Content-Type"] == "application/json"
        assert headers["Access-Control-Allow-Origin"] == "*"
        assert set(json.loads(body)) == {"error"}
    assert down[1]["Retry-After"] == "10"
    assert down[1]["Cache-Control"] == "no-store"
    page = get(nginx, "/masuk/", method="POST", body=b"x" * 65_537)
    assert (page[0], page[1]["Content-Type"]) == (413, "text/html")  # the rest is nginx's page
