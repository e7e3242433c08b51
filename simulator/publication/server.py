"""HTTP only: framing (keep-alive, chunked bodies), conditional GETs, the control endpoints, and
`serve` to run it all on the stdlib's threading server."""

import json
import logging
import signal
import threading
import time
from collections.abc import Callable
from email.message import Message
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from django.db import DatabaseError

from simulator.publication.catalog import catalog_refresh
from simulator.publication.documents import page_digests
from simulator.publication.kpu_files import json_bytes
from simulator.publication.site import ACCEPT_DROP, DROP, RESPOND, PublicationSite, Resource

logger = logging.getLogger(__name__)

CATALOG_REFRESH_SECONDS = 30
# A keep-alive connection left idle this long is closed, so idle clients do not pin threads.
IDLE_TIMEOUT_SECONDS = 120
MAX_BODY_BYTES = 256 * 1024 * 1024


def not_modified(headers: Message, etag: str, last_modified: float | None) -> bool:
    """Whether a conditional GET may answer 304; If-None-Match wins over If-Modified-Since."""
    if_none_match = headers.get("If-None-Match")
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or etag in tags
    since = headers.get("If-Modified-Since")
    if since is None or last_modified is None:
        return False
    try:
        return int(last_modified) <= parsedate_to_datetime(since).timestamp()
    except (TypeError, ValueError):
        return False


class PublicationHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], site: PublicationSite) -> None:
        super().__init__(address, Handler)
        self.site = site

    @property
    def base_url(self) -> str:
        host, port = self.socket.getsockname()[:2]
        return f"http://{host}:{port}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sirekap-publication-stand-in"
    timeout = IDLE_TIMEOUT_SECONDS
    # Headers and body go out in separate writes; with Nagle's algorithm on, the body would wait
    # for the client's delayed ACK (40 ms) on every keep-alive request.
    disable_nagle_algorithm = True
    server: PublicationHTTPServer

    def do_GET(self) -> None:
        path, site = urlsplit(self.path).path, self.server.site
        if path == "/_stats":
            self.send_json(200, site.stats())
        elif path.startswith("/data/"):
            self.send_resource(site.data_get(path, self.base_url()))
        elif path.startswith("/images/"):
            self.send_resource(site.image_get(path))
        else:
            self.send_json(404, {"error": f"not found: {path}"})

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        body = self.read_body()
        if body is None:
            return
        if path == "/_control/script":
            self.control_script(body)
        elif path == "/_control/reset":
            self.server.site.reset()
            self.send_json(200, {"status": "reset"})
        elif path == "/_control/reload":
            catalog_refresh(self.server.site)
            self.send_json(200, {"contests": self.server.site.contest_totals()})
        else:
            self.send_json(404, {"error": f"not found: {path}"})

    def do_PUT(self) -> None:
        path, site = urlsplit(self.path).path, self.server.site
        body, digests = None, []
        if site.scripted_by_page(path):
            body = self.read_body()
            if body is None:
                return None
            digests = page_digests(self.headers.get("Content-Type", ""), body)
        outcome = site.put_outcome(path, digests)
        if outcome.action == DROP:
            return self.drop()  # the client sees a closed connection and no answer
        body = self.read_body() if body is None else body
        if body is None:
            return None
        if outcome.action == RESPOND:
            retry = [] if outcome.retry_after is None else [("Retry-After", outcome.retry_after)]
            return self.send_json(outcome.status, {"error": outcome.error}, retry)
        status, payload = site.document_put(
            path=path,
            key=self.headers.get("Idempotency-Key", "").strip(),
            content_type=self.headers.get("Content-Type", ""),
            body=body,
            reject=outcome.reject,
        )
        if outcome.action == ACCEPT_DROP:
            return self.drop()  # recorded, but the answer is lost on the way
        return self.send_json(status, payload)

    def control_script(self, body: bytes) -> None:
        try:
            request = json.loads(body)
            site = self.server.site
            site.script_add(request["path"], request["responses"], request.get("sha256", ""))
        except (ValueError, KeyError, TypeError) as error:
            return self.send_json(400, {"error": f"bad script: {error}"})
        return self.send_json(200, {"status": "scripted"})

    def drop(self) -> None:
        self.close_connection = True

    def base_url(self) -> str:
        host = self.headers.get("Host")
        return f"http://{host}" if host else self.server.base_url

    def read_body(self) -> bytes | None:
        """The request body, or None after answering an error (and closing, as the rest of the
        body may still be in the socket)."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self.read_chunked()
        length = self.headers.get("Content-Length", "0").strip()
        if not length.isdecimal():
            self.refuse(400, "bad Content-Length")
            return None
        if int(length) > MAX_BODY_BYTES:
            self.refuse(413, "body too large")
            return None
        return self.rfile.read(int(length))

    def read_chunked(self) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                length = int(self.rfile.readline().split(b";")[0], 16)
            except ValueError:
                self.refuse(400, "bad chunked body")
                return None
            size += length
            if size > MAX_BODY_BYTES:
                self.refuse(413, "body too large")
                return None
            if length == 0:
                break
            chunks.append(self.rfile.read(length))
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return b"".join(chunks)

    def refuse(self, status: int, error: str) -> None:
        self.send_json(status, {"error": error})
        self.close_connection = True

    def send_resource(self, resource: Resource | None) -> None:
        if resource is None:
            return self.send_json(404, {"error": f"not found: {urlsplit(self.path).path}"})
        etag = resource.etag
        headers = [("ETag", etag)]
        if resource.last_modified is not None:
            headers.append(("Last-Modified", formatdate(resource.last_modified, usegmt=True)))
        if not_modified(self.headers, etag, resource.last_modified):
            # Content-Length of a 304 is that of the 200 it stands for (RFC 9110, 8.6).
            return self.send_bytes(304, resource.body, resource.content_type, headers, bare=True)
        return self.send_bytes(200, resource.body, resource.content_type, headers)

    def send_json(self, status: int, value: object, headers: list | None = None) -> None:
        self.send_bytes(status, json_bytes(value), "application/json", headers or [])

    def send_bytes(
        self, status: int, body: bytes, content_type: str, headers: list, bare: bool = False
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, str(value))
        self.end_headers()
        if not bare:
            self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        # One line per request would drown a benchmark's output; ask for DEBUG to see them.
        logger.debug("%s %s", self.address_string(), format % args)


def serve(site: PublicationSite, host: str, port: int, announce: Callable[[str], None]) -> None:
    """Serves until SIGTERM or SIGINT, refreshing the catalog every CATALOG_REFRESH_SECONDS."""
    server = PublicationHTTPServer((host, port), site)
    stopping: list[int] = []
    previous = {
        signum: signal.signal(signum, lambda signum, _frame: stopping.append(signum))
        for signum in (signal.SIGTERM, signal.SIGINT)
    }
    thread = threading.Thread(target=server.serve_forever, name="publication-server", daemon=True)
    thread.start()
    announce(server.base_url)
    try:
        refresh_until_stopped(site, stopping)
    finally:
        server.shutdown()
        server.server_close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def refresh_until_stopped(site: PublicationSite, stopping: list[int]) -> None:
    # A plain flag polled with sleep: setting an Event from a signal handler can deadlock.
    due = time.monotonic() + CATALOG_REFRESH_SECONDS
    while not stopping:
        time.sleep(0.2)
        if time.monotonic() >= due:
            due = time.monotonic() + CATALOG_REFRESH_SECONDS
            try:
                catalog_refresh(site, unless_unchanged=True)
            except DatabaseError:
                logger.exception("catalog refresh failed; serving the contests loaded before")
