"""A stand-in for the KPU's publication server and its public site, over real HTTP.

Our delivery workers PUT documents to it and our poller reads its public JSON exactly as they
would talk to the KPU, so the demo, the tests and the benchmarks exercise the real client code.
Everything lives in memory. Contract: docs/publication-server.md; the public JSON format:
docs/kpu-format.md.

Three layers, so that the logic can be tested without sockets:
- the catalog: which TPS each contest covers, read from the database (`catalog_load`);
- `PublicationSite`: documents, idempotency keys, publication, counters, faults (no HTTP);
- `Handler`: HTTP only (framing, multipart, conditional GETs), and `serve` to run it.
"""

import hashlib
import heapq
import itertools
import json
import logging
import random
import signal
import threading
import time
import uuid
import zlib
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from email.message import Message
from email.utils import collapse_rfc2231_value, formatdate, parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from django.db import DatabaseError, connection
from django.db.models import Q

from regions.codes import level_of, parent_code
from regions.models import Area, Contest

logger = logging.getLogger(__name__)

PILKADA = frozenset({"pkwkp", "pkwkk"})
PEMILU = frozenset({"ppwp", "pdpr", "pdpd", "pdprdp", "pdprdk"})
CODE_LENGTHS = (2, 4, 6, 10, 13)
TPS_LENGTH = 13
WIB = ZoneInfo("Asia/Jakarta")
PSU = "Reguler"
CATALOG_REFRESH_SECONDS = 30
# A keep-alive connection left idle this long is closed, so idle clients do not pin threads.
IDLE_TIMEOUT_SECONDS = 120
MAX_BODY_BYTES = 256 * 1024 * 1024

PAGE_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "application/pdf": "pdf"}
MAGIC_BYTES = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"%PDF-", "application/pdf"),
)
REJECT_REASONS = (
    "halaman tidak terbaca (unreadable page)",
    "foto buram (blurry photo)",
    "bukan formulir C.Hasil (not a C.Hasil form)",
    "halaman tidak lengkap (pages missing)",
)

# --- Areas and paths.


def lineage(code: str) -> list[str]:
    """The national key "", every ancestor of code, then code itself."""
    return ["", *(code[:length] for length in CODE_LENGTHS if length <= len(code))]


def election_of(kind: str) -> str | None:
    if kind in PILKADA:
        return "pilkada"
    return "pemilu" if kind in PEMILU else None


def document_target(path: str) -> tuple[str, str] | None:
    """(contest, tps) of /documents/{contest}/{tps}, or None for any other path."""
    parts = path.split("/")
    if len(parts) != 4 or parts[:2] != ["", "documents"] or not election_of(parts[2]):
        return None
    return parts[2], parts[3]


@dataclass(frozen=True)
class DataTarget:
    view: str  # "hhcw" (progress) or "wilayah" (region list)
    kind: str
    code: str  # "" for national


def data_target(path: str) -> DataTarget | None:
    """What a /data/... path asks for, or None when it is not a path of the public site."""
    if not path.startswith("/data/") or not path.endswith(".json"):
        return None
    parts = path.removeprefix("/data/").removesuffix(".json").split("/")
    if parts[0] == "wilayah" and len(parts) >= 4:
        codes = [] if parts[3:] == ["0"] else parts[3:]
        return _target("wilayah", parts[1], parts[2], codes, deepest=4)
    if len(parts) >= 3 and parts[1] == "hhcw":
        return _target("hhcw", parts[0], parts[2], parts[3:], deepest=5)
    return None


def _target(view: str, election: str, kind: str, codes: list[str], deepest: int):
    if election_of(kind) != election or len(codes) > deepest:
        return None
    for depth, code in enumerate(codes):
        above = codes[depth - 1] if depth else ""
        if len(code) != CODE_LENGTHS[depth] or not code.isdecimal() or not code.startswith(above):
            return None
    return DataTarget(view, kind, codes[-1] if codes else "")


# --- The catalog: the TPS set of each contest and the areas above them.


@dataclass(frozen=True)
class ContestTree:
    """The areas one contest kind covers: every TPS under its regions, and everything above."""

    names: dict[str, str]
    children: dict[str, tuple[str, ...]]  # parent code ("" for national) -> child codes
    totals: dict[str, int]  # code ("" for national) -> TPS under it

    def covers(self, code: str) -> bool:
        return code in self.totals


def tree_build(regions: Iterable[str], names: dict[str, str]) -> ContestTree:
    regions = set(regions)
    above = {prefix for region in regions for prefix in lineage(region)}
    codes = sorted(
        code
        for code in names
        if code in above or any(prefix in regions for prefix in lineage(code))
    )
    children = defaultdict(list)
    totals = dict.fromkeys(["", *codes], 0)
    for code in codes:
        children[parent_code(code)].append(code)
        if len(code) == TPS_LENGTH:
            for prefix in lineage(code):
                totals[prefix] += 1
    return ContestTree(names, {code: tuple(kids) for code, kids in children.items()}, totals)


def catalog_load() -> dict[str, ContestTree]:
    """Every contest kind that has a Contest row, with its tree: two queries."""
    regions = defaultdict(set)
    for kind, region in Contest.objects.values_list("kind", "region_id"):
        regions[kind].add(region)
    every = set().union(*regions.values())
    # A region under another one is already fetched with it.
    roots = {code for code in every if not any(p in every for p in lineage(code)[1:-1])}
    wanted = Q(code__in={prefix for code in roots for prefix in lineage(code) if prefix})
    for root in roots:
        wanted |= Q(code__startswith=root)
    names = dict(Area.objects.filter(wanted).values_list("code", "name")) if roots else {}
    return {kind: tree_build(codes, names) for kind, codes in regions.items()}


# --- The public JSON, from a tree and the published counts.


def percent_half_up(published: int, total: int) -> float:
    """Percent rounded half-up to two decimals, as the KPU's site shows it (290/293: 98.98)."""
    if not total:
        return 0.0
    exact = Decimal(published * 100) / Decimal(total)
    return float(exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def progress(total: int, published: int) -> dict:
    return {"total": total, "persen": percent_half_up(published, total), "progres": published}


def area_row(total: int, published: int, *, pemilu: bool) -> dict:
    if pemilu:
        return {"psu": PSU, "persen": percent_half_up(published, total), "status_progress": True}
    return {"psu": PSU, "progres": progress(total, published), "status_progress": True}


def area_file(tree: ContestTree, published: Counter, code: str, *, pemilu: bool, ts: str) -> dict:
    total, done = tree.totals[code], published[code]
    chart = {"progres": progress(total, done)}
    table = {
        child: area_row(tree.totals[child], published[child], pemilu=pemilu)
        for child in tree.children.get(code, ())
    }
    result: dict = {"mode": "hhcw"}
    if pemilu:
        result.update(chart=chart, table=table)
    else:
        result["tungsura"] = {"chart": chart, "table": table}
    result.update(psu=PSU, progres={"total": total, "progres": done}, ts=ts)
    return result


def tps_file(images: list[str] | None, *, pemilu: bool, ts: str) -> dict:
    """One TPS; images is None while nothing is visible."""
    published = images is not None
    result: dict = {"mode": "hhcw"}
    if pemilu:
        result.update(chart={} if published else None, administrasi=None)
    else:
        result["tungsura"] = {"chart": {}, "administrasi": None} if published else None
    result.update(images=images or [], psu=PSU, ts=ts)
    result.update(status_suara=published, status_adm=published)
    return result


def area_id(code: str) -> int:
    """A stable integer standing in for the KPU's internal id (deliberately not the code)."""
    return zlib.crc32(code.encode())


def wilayah_list(tree: ContestTree, code: str) -> list[dict]:
    return [
        {
            "nama": tree.names[child],
            "id": area_id(child),
            "kode": child,
            "tingkat": level_of(child),
        }
        for child in tree.children.get(code, ())
    ]


def wib_text(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, WIB).strftime("%Y-%m-%d %H:%M:%S")


# --- Documents: multipart parsing and page types.


class DocumentError(Exception):
    """A PUT that cannot be accepted as it is; status says whether it is malformed (400) or
    refused (422)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Part:
    name: str
    content_type: str
    data: bytes


def header_value(value: str) -> tuple[str, dict[str, str]]:
    """The main value and the parameters of a header such as Content-Type."""
    message = Message()
    message["x"] = value
    main, *params = message.get_params(header="x") or [("", "")]
    return main[0].lower(), {key.lower(): collapse_rfc2231_value(v) for key, v in params}


def multipart_parse(content_type: str, body: bytes) -> list[Part]:
    kind, params = header_value(content_type)
    boundary = params.get("boundary")
    if kind != "multipart/form-data" or not boundary:
        raise DocumentError(400, "body must be multipart/form-data with a boundary")
    sections = body.split(b"--" + boundary.encode())
    if len(sections) < 3 or not sections[-1].startswith(b"--"):
        raise DocumentError(400, "unparseable multipart body (no closing boundary)")
    return [part_parse(section) for section in sections[1:-1]]


def part_parse(section: bytes) -> Part:
    head, separator, data = section.removeprefix(b"\r\n").partition(b"\r\n\r\n")
    if not separator or not data.endswith(b"\r\n"):
        raise DocumentError(400, "unparseable multipart part")
    headers = {}
    for line in head.decode("utf-8", "replace").split("\r\n"):
        name, colon, value = line.partition(":")
        if not colon:
            raise DocumentError(400, f"unparseable multipart header: {line!r}")
        headers[name.strip().lower()] = value.strip()
    _, disposition = header_value(headers.get("content-disposition", ""))
    content_type, _ = header_value(headers.get("content-type", "application/octet-stream"))
    return Part(disposition.get("name", ""), content_type, data[:-2])


def page_type(part: Part) -> str:
    """The declared type when it is one we take, else the type the first bytes show."""
    if not part.data:
        raise DocumentError(422, "halaman kosong (empty page)")
    if part.content_type in PAGE_EXTENSIONS:
        return part.content_type
    for magic, content_type in MAGIC_BYTES:
        if part.data.startswith(magic):
            return content_type
    raise DocumentError(422, "format tidak didukung (a page is not JPEG, PNG or PDF)")


def pages_parse(content_type: str, body: bytes) -> list[tuple[str, bytes]]:
    """(content type, bytes) of each part named `file`."""
    files = [part for part in multipart_parse(content_type, body) if part.name == "file"]
    if not files:
        raise DocumentError(400, "no part named 'file'")
    return [(page_type(part), part.data) for part in files]


def page_digests(content_type: str, body: bytes) -> list[str]:
    """The SHA-256 of each page of a PUT (none when it cannot be read)."""
    try:
        return [hashlib.sha256(data).hexdigest() for _, data in pages_parse(content_type, body)]
    except DocumentError:
        return []


# --- What happens to one PUT, decided before its body is read (unless a script waits for
# certain pages).

ACCEPT, ACCEPT_DROP, DROP, RESPOND = "accept", "accept-drop", "drop", "respond"


@dataclass(frozen=True)
class Outcome:
    action: str  # ACCEPT (maybe rejected), ACCEPT_DROP, DROP or RESPOND
    status: int = 0
    error: str = ""
    retry_after: int | None = None
    reject: str = ""  # when set, a valid new document is refused with this reason (422)


TRANSIENT_FAULTS = (
    Outcome(RESPOND, 503, "overloaded"),
    Outcome(RESPOND, 429, "too many requests", retry_after=1),
    Outcome(ACCEPT_DROP),
    Outcome(DROP),
)
NAMED_OUTCOMES = {
    "accept": Outcome(ACCEPT),
    "accept-drop": Outcome(ACCEPT_DROP),
    "drop": Outcome(DROP),
}
DEFAULT_ERRORS = {503: "overloaded"}


def scripted_outcome(entry: object) -> Outcome:
    """One entry of POST /_control/script; ValueError when it is not one we understand."""
    status = entry.get("status") if isinstance(entry, dict) else None
    if isinstance(status, str) and status in NAMED_OUTCOMES:
        return NAMED_OUTCOMES[status]
    if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
        raise ValueError(f"status must be 400..599, 'drop', 'accept-drop' or 'accept': {entry!r}")
    retry_after = entry.get("retry_after", 1 if status == 429 else None)
    if retry_after is not None and (not isinstance(retry_after, int) or retry_after < 0):
        raise ValueError(f"retry_after must be a whole number of seconds: {entry!r}")
    default = DEFAULT_ERRORS.get(status) or _phrase(status)
    return Outcome(RESPOND, status, str(entry.get("error") or default), retry_after)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower()
    except ValueError:
        return f"error {status}"


# --- The state: documents, keys, publication, counters. No HTTP in here.


@dataclass(frozen=True)
class SiteConfig:
    fail_rate: float = 0.0
    reject_rate: float = 0.0
    latency_ms: int = 0
    publish_delay_s: float = 0.0
    seed: int | None = None


@dataclass(frozen=True)
class Page:
    name: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Version:
    number: int
    pages: tuple[Page, ...]
    publish_at: float


@dataclass(frozen=True)
class Reply:
    """What an idempotency key was answered, and for which document."""

    kind: str
    tps: str
    body: dict


@dataclass(frozen=True)
class Resource:
    body: bytes
    content_type: str
    last_modified: float | None


def json_bytes(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


class PublicationSite:
    """Everything the stand-in knows; every method is safe to call from many threads."""

    def __init__(
        self,
        config: SiteConfig,
        contests: dict[str, ContestTree],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.clock = clock
        self.lock = threading.Lock()
        self.contests = contests
        self.catalog_changed_at = clock()
        self._clear()

    def _clear(self) -> None:
        self.epoch = self.clock()
        self.rng = random.Random(self.config.seed)
        self.replies: dict[str, Reply] = {}
        self.versions: dict[tuple[str, str], list[Version]] = {}
        self.visible: dict[tuple[str, str], Version] = {}
        self.pending: list = []  # heap of (publish_at, sequence, kind, tps, version)
        self.sequence = itertools.count()
        self.published: defaultdict[str, Counter] = defaultdict(Counter)
        self.changed: dict[tuple[str, str], float] = {}  # (kind, code) -> last visible change
        self.images: dict[tuple[str, str], Page] = {}
        # Scripted responses by (path, page SHA-256): "" for any PUT to the path.
        self.scripts: defaultdict[tuple[str, str], deque] = defaultdict(deque)
        self.puts = self.writes = self.gets = 0
        self.get_paths: Counter = Counter()

    # Control.

    def reset(self) -> None:
        with self.lock:
            self._clear()

    def script_add(self, path: str, entries: list, sha256: str = "") -> None:
        """Queues responses for PUTs to path (only those carrying a page of that SHA-256, when
        given); ValueError when anything is malformed."""
        if document_target(path) is None:
            raise ValueError(f"not a document path: {path!r}")
        if not isinstance(entries, list):
            raise ValueError("responses must be a list")
        if not isinstance(sha256, str) or (sha256 and len(sha256) != 64):
            raise ValueError(f"sha256 must be 64 hex digits: {sha256!r}")
        outcomes = [scripted_outcome(entry) for entry in entries]
        with self.lock:
            self.scripts[(path, sha256.lower())].extend(outcomes)

    def scripted_by_page(self, path: str) -> bool:
        """Whether responses wait for certain pages PUT to path (the body is read first)."""
        with self.lock:
            return any(sha and queue for (at, sha), queue in self.scripts.items() if at == path)

    def catalog_replace(self, contests: dict[str, ContestTree]) -> None:
        with self.lock:
            if contests == self.contests:
                return
            self.contests = contests
            self.catalog_changed_at = self.clock()
            self.published = defaultdict(Counter)
            for kind, tps in self.visible:
                self._count(kind, tps)

    def contest_totals(self) -> dict[str, int]:
        with self.lock:
            return {kind: tree.totals[""] for kind, tree in sorted(self.contests.items())}

    def stats(self) -> dict:
        with self.lock:
            self._advance(self.clock())
            return {
                "puts": self.puts,
                "keys": len(self.replies),
                "writes": self.writes,
                "published": len(self.visible),
                "gets": self.gets,
                "get_paths": dict(self.get_paths),
            }

    # Delivery.

    def put_outcome(self, path: str, page_digests: Iterable[str] = ()) -> Outcome:
        """Counts a PUT, waits the configured latency, then says what to do with it: what is
        scripted for one of its pages, else for its path, else the dice."""
        with self.lock:
            self.puts += 1
        if self.config.latency_ms:
            time.sleep(self.config.latency_ms / 1000)
        with self.lock:
            for digest in (*page_digests, ""):
                scripted = self.scripts.get((path, digest))
                if scripted:
                    return scripted.popleft()
            return self._random_outcome()

    def _random_outcome(self) -> Outcome:
        if self.rng.random() < self.config.fail_rate:
            return self.rng.choice(TRANSIENT_FAULTS)
        if self.rng.random() < self.config.reject_rate:
            return Outcome(ACCEPT, reject=self.rng.choice(REJECT_REASONS))
        return Outcome(ACCEPT)

    def document_put(
        self, *, path: str, key: str, content_type: str, body: bytes, reject: str = ""
    ) -> tuple[int, dict]:
        """(status, JSON body) for a PUT whose outcome is ACCEPT or ACCEPT_DROP."""
        target = document_target(path)
        if target is None or not self._covers(*target):
            return 404, {"error": f"unknown contest or TPS: {path}"}
        if not key:
            return 400, {"error": "Idempotency-Key header required"}
        try:
            pages = pages_parse(content_type, body)
        except DocumentError as error:
            return error.status, {"error": str(error)}
        return self._accept(*target, key=key, pages=pages, reject=reject)

    def _covers(self, kind: str, tps: str) -> bool:
        tree = self.contests.get(kind)
        return tree is not None and len(tps) == TPS_LENGTH and tree.covers(tps)

    def _accept(self, kind: str, tps: str, *, key: str, pages: list, reject: str):
        with self.lock:
            known = self.replies.get(key)
            if known is not None:
                if (known.kind, known.tps) != (kind, tps):
                    return 422, {"error": f"Idempotency-Key {key} was used for another TPS"}
                return 200, known.body
            if reject:
                return 422, {"error": reject}
            version = self._record(kind, tps, pages)
            body = {
                "status": "accepted",
                "key": key,
                "receipt": str(uuid.uuid4()),
                "publish_at": datetime.fromtimestamp(version.publish_at, UTC).isoformat(
                    timespec="milliseconds"
                ),
            }
            self.replies[key] = Reply(kind, tps, body)
            return 201, body

    def _record(self, kind: str, tps: str, pages: list[tuple[str, bytes]]) -> Version:
        now = self.clock()
        stamp = datetime.fromtimestamp(now, WIB).strftime("%Y%m%d-%H%M%S")
        stored = tuple(
            Page(f"{tps}-{stamp}--{uuid.uuid4()}.{PAGE_EXTENSIONS[ctype]}", ctype, data)
            for ctype, data in pages
        )
        for page in stored:
            self.images[(kind, page.name)] = page
        versions = self.versions.setdefault((kind, tps), [])
        version = Version(len(versions) + 1, stored, now + self.config.publish_delay_s)
        versions.append(version)
        heapq.heappush(self.pending, (version.publish_at, next(self.sequence), kind, tps, version))
        self.writes += 1
        return version

    # Publication: documents become visible when their time comes, counted once per TPS.

    def _advance(self, now: float) -> None:
        while self.pending and self.pending[0][0] <= now:
            _, _, kind, tps, version = heapq.heappop(self.pending)
            self._show(kind, tps, version)

    def _show(self, kind: str, tps: str, version: Version) -> None:
        current = self.visible.get((kind, tps))
        if current is not None and current.number > version.number:
            return
        self.visible[(kind, tps)] = version
        for code in lineage(tps) if current is None else [tps]:
            self.changed[(kind, code)] = version.publish_at
        if current is None:
            self._count(kind, tps)

    def _count(self, kind: str, tps: str) -> None:
        tree = self.contests.get(kind)
        if tree is not None and tree.covers(tps):
            for code in lineage(tps):
                self.published[kind][code] += 1

    def _modified(self, kind: str, code: str) -> float:
        return max(self.epoch, self.catalog_changed_at, self.changed.get((kind, code), 0.0))

    # The public site.

    def data_get(self, path: str, base_url: str) -> Resource | None:
        """A /data/... JSON file, or None when there is none at that path."""
        with self.lock:
            self.gets += 1
            self.get_paths[path] += 1
            self._advance(self.clock())
            target = data_target(path)
            tree = self.contests.get(target.kind) if target else None
            if tree is None or not tree.covers(target.code):
                return None
            modified = self._modified(target.kind, target.code)
            value = self._render(target, tree, base_url, wib_text(modified))
            return Resource(json_bytes(value), "application/json", modified)

    def _render(self, target: DataTarget, tree: ContestTree, base_url: str, ts: str):
        pemilu = target.kind in PEMILU
        if target.view == "wilayah":
            return wilayah_list(tree, target.code)
        if len(target.code) < TPS_LENGTH:
            return area_file(tree, self.published[target.kind], target.code, pemilu=pemilu, ts=ts)
        version = self.visible.get((target.kind, target.code))
        images = None
        if version is not None:
            prefix = f"{base_url}/images/{target.kind}"
            images = [f"{prefix}/{page.name}" for page in version.pages]
        return tps_file(images, pemilu=pemilu, ts=ts)

    def image_get(self, path: str) -> Resource | None:
        parts = path.split("/")  # "", "images", kind, name
        if len(parts) != 4:
            return None
        with self.lock:
            page = self.images.get((parts[2], parts[3]))
        if page is None:
            return None
        return Resource(page.data, page.content_type, None)


# --- HTTP.


def catalog_refresh(site: PublicationSite) -> None:
    """Reloads the contests from the database; the connection is closed so that an idle server
    holds none (tests drop and flush their databases under it)."""
    try:
        site.catalog_replace(catalog_load())
    finally:
        connection.close()


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
        host, port = self.server_address[:2]
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
            return self.refuse(400, "bad Content-Length")
        if int(length) > MAX_BODY_BYTES:
            return self.refuse(413, "body too large")
        return self.rfile.read(int(length))

    def read_chunked(self) -> bytes | None:
        chunks, size = [], 0
        while True:
            try:
                length = int(self.rfile.readline().split(b";")[0], 16)
            except ValueError:
                return self.refuse(400, "bad chunked body")
            size += length
            if size > MAX_BODY_BYTES:
                return self.refuse(413, "body too large")
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
        etag = f'"{hashlib.sha256(resource.body).hexdigest()[:32]}"'
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
                catalog_refresh(site)
            except DatabaseError:
                logger.exception("catalog refresh failed; serving the contests loaded before")
