"""The stand-in's state, with no HTTP in it: documents, idempotency keys, publication on its
clock, counters, and the faults (seeded dice and scripts) that decide each PUT."""

import functools
import hashlib
import heapq
import itertools
import random
import threading
import time
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus

from simulator.publication.documents import PAGE_EXTENSIONS, DocumentError, pages_parse
from simulator.publication.kpu_files import (
    PEMILU,
    TPS_LENGTH,
    WIB,
    ContestTree,
    DataTarget,
    area_file,
    data_target,
    election_of,
    json_bytes,
    lineage,
    tps_file,
    wib_text,
    wilayah_list,
)

# At most this many areas' files are kept rendered (PublicationSite.rendered): a few hundred MB
# at worst; past it the lot is dropped and rendered again as asked.
RENDERED_AREAS_MAX = 200_000

REJECT_REASONS = (
    "halaman tidak terbaca (unreadable page)",
    "foto buram (blurry photo)",
    "bukan formulir C.Hasil (not a C.Hasil form)",
    "halaman tidak lengkap (pages missing)",
)


def document_target(path: str) -> tuple[str, str] | None:
    """(contest, tps) of /documents/{contest}/{tps}, or None for any other path."""
    parts = path.split("/")
    if len(parts) != 4 or parts[:2] != ["", "documents"] or not election_of(parts[2]):
        return None
    return parts[2], parts[3]


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
    fields = entry if isinstance(entry, dict) else {}
    status = fields.get("status")
    if isinstance(status, str) and status in NAMED_OUTCOMES:
        return NAMED_OUTCOMES[status]
    if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
        raise ValueError(f"status must be 400..599, 'drop', 'accept-drop' or 'accept': {entry!r}")
    retry_after = fields.get("retry_after", 1 if status == 429 else None)
    if retry_after is not None and (not isinstance(retry_after, int) or retry_after < 0):
        raise ValueError(f"retry_after must be a whole number of seconds: {entry!r}")
    default = DEFAULT_ERRORS.get(status) or _phrase(status)
    return Outcome(RESPOND, status, str(fields.get("error") or default), retry_after)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower()
    except ValueError:
        return f"error {status}"


# --- The state: documents, keys, publication, counters.


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

    @functools.cached_property
    def etag(self) -> str:
        return f'"{hashlib.sha256(self.body).hexdigest()[:32]}"'


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
        # What the catalog was read from (simulator.publication.catalog.catalog_fingerprint).
        self.catalog_fingerprint: tuple | None = None
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
        self._rendered_clear()
        self.images: dict[tuple[str, str], Page] = {}
        # Scripted responses by (path, page SHA-256): "" for any PUT to the path.
        self.scripts: defaultdict[tuple[str, str], deque] = defaultdict(deque)
        self.puts = self.writes = self.gets = 0
        self.get_paths: Counter = Counter()

    def _rendered_clear(self) -> None:
        # The area files as last rendered, by (kind, code), then (view, base URL); an entry goes
        # when its area changes. A poll asks for every area file it follows again and again,
        # conditionally: answering 304 then costs a look-up, not a render and a hash.
        self.rendered: dict[tuple[str, str], dict[tuple[str, str], Resource]] = {}

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
            self._rendered_clear()
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
            self.rendered.pop((kind, code), None)
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
            if target is None or tree is None or not tree.covers(target.code):
                return None
            if len(target.code) == TPS_LENGTH:
                # A TPS file is read about once (after it is published): not worth keeping.
                return self._resource(target, tree, base_url)
            if len(self.rendered) >= RENDERED_AREAS_MAX:
                self._rendered_clear()
            of_area = self.rendered.setdefault((target.kind, target.code), {})
            view = (target.view, base_url)
            if view not in of_area:
                of_area[view] = self._resource(target, tree, base_url)
            return of_area[view]

    def _resource(self, target: DataTarget, tree: ContestTree, base_url: str) -> Resource:
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
