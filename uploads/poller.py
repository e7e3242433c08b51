"""Reads the public site (the KPU's static JSON under SIREKAP_DATA_URL) and marks uploads published
when their TPS file lists images, whether or not the document came through here.

Cost follows change, not size: an area's file gives each child's published count; we descend only
into children whose count differs from ours, and at a desa fetch only the TPS files the site
counts as published and we do not. Area files are fetched conditionally (ETag, Last-Modified),
so an unchanged kabupaten costs one request, answered 304.

Threads do HTTP only, over one shared client; everything touching the database runs in the
calling thread, so no Django connection is opened (and leaked) by a pool thread. Anything wrong
with one file (HTTP error, timeout, invalid JSON, a field missing, null or of the wrong type) is
logged with its URL and skipped; the rest of the run proceeds. See docs/poller.md.
"""

import functools
import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3
from django.conf import settings

from regions import codes
from regions.models import Area, Contest, ContestKind
from sirekap_tracker.health import redis_client
from uploads import counters, selectors
from uploads.kpu import Unusable, area_figures, describe, hhcw_path, json_object, row_published
from uploads.models import PublicAreaProgress
from uploads.progress.selectors import Counts
from uploads.services.publication import (
    AreaRead,
    public_progress_record,
    upload_mark_published_many,
)

logger = logging.getLogger(__name__)

# In the broker's Redis, which never evicts: the cache's may drop a lock under memory pressure.
LOCK_KEY = "sirekap:uploads:poll-public-site"
# The lock is held this long and renewed by the running poll every LOCK_RENEW_SECONDS: a poll
# whose worker was killed holds it at most this long (expiring with Celery's hard time limit, a
# killed poll stopped every poll for three minutes: benchmarks.election's worker drill).
LOCK_SECONDS = 30
LOCK_RENEW_SECONDS = 5
# Releases the lock only while it is still this poll's (its token): a poll that stalled past
# LOCK_SECONDS must not remove the lock of the one that took over.
_RELEASE_IF_OURS = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)
# Renews it while it is this poll's, takes it again when it is nobody's (Redis restarted, or
# this poll stalled past LOCK_SECONDS and nobody took over), and answers 0 when another poll
# holds it: then this one stops (PollLockLost), or two walks would run side by side, each
# slowing the other until more of them lapse (a national replay had eleven).
_RENEW_IF_OURS = """
local holder = redis.call('get', KEYS[1])
if holder == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) end
if not holder then redis.call('set', KEYS[1], ARGV[1], 'EX', ARGV[2]) return 1 end
return 0
"""


class PollRefused(Exception):
    """The poll cannot run as asked: not configured, an unknown contest, a region outside."""


class PollLockLost(Exception):
    """Another poll holds the lock now: this one stops and leaves the walk to it."""


@dataclass
class PollSummary:
    requests: int = 0
    not_modified: int = 0
    published: int = 0
    errors: int = 0
    gave_up: bool = False
    # Files read and used (a 304 included): a run with none told us nothing of the site.
    read: int = 0

    @property
    def succeeded(self) -> bool:
        return self.read > 0 and not self.gave_up

    def __str__(self) -> str:
        line = (
            f"{self.requests} requests, {self.not_modified} not modified, "
            f"{self.published} published, {self.errors} errors"
        )
        return line + ("; stopped early: the site kept failing" if self.gave_up else "")


# --- Where to look


def image_url_allowed(url: str) -> bool:
    """An https: URL, or one on the origin of SIREKAP_DATA_URL (a stand-in may speak http:)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.netloc:
        return True
    site = urlsplit(settings.SIREKAP_DATA_URL)
    return (parts.scheme, parts.netloc) == (site.scheme, site.netloc) and bool(parts.netloc)


def poll_roots(*, kind: str | None = None, region: str | None = None) -> list[tuple[str, str]]:
    """(kind, area code) where the walks start: each contest's region, or `region` inside it.

    A region nested in another of the same kind is left out: the outer walk covers it, and the
    site has one file per kind and area whoever asks.
    """
    if kind is not None and kind not in ContestKind.values:
        raise PollRefused(f"--contest: unknown {kind!r}; one of {', '.join(ContestKind.values)}")
    contests = Contest.objects.order_by("kind", "region_id")
    if kind is not None:
        contests = contests.filter(kind=kind)
    opened = list(contests.values_list("kind", "region_id"))
    if kind is not None and not opened:
        raise PollRefused(f"--contest: no {kind} contest is open")
    if region is not None:
        opened = _inside(opened, region)
    return _outermost(opened)


def _inside(opened: list[tuple[str, str]], region: str) -> list[tuple[str, str]]:
    if not Area.objects.filter(code=region).exists():
        raise PollRefused(f"--region: no area with code {region!r}")
    inside = [(kind, region) for kind, code in opened if region.startswith(code)]
    if not inside:
        regions = ", ".join(f"{kind} {code}" for kind, code in opened) or "none is open"
        raise PollRefused(
            f"--region: {region} lies outside every open contest's region ({regions})"
        )
    return inside


def _outermost(roots: list[tuple[str, str]]) -> list[tuple[str, str]]:
    kept: list[tuple[str, str]] = []
    for kind, code in sorted(roots, key=lambda root: (len(root[1]), root)):
        if not any(kind == outer and code.startswith(prefix) for outer, prefix in kept):
            kept.append((kind, code))
    return kept


# --- Running


def _idle() -> None:
    """No heartbeat: a poll run by hand holds no lock."""


def poll_exclusively() -> PollSummary | None:
    """What beat runs: one poll, unless the previous one is still running (or nothing is set)."""
    if not settings.SIREKAP_DATA_URL:
        _say_not_configured()
        return None
    lock = _PollLock()
    if not lock.acquire():
        logger.info("poll: the previous poll is still running; skipping this one")
        return None
    try:
        summary = poll(heartbeat=lock.renew)
    except PollLockLost:
        logger.warning("poll: another poll took the lock over; this one stopped")
        return None
    finally:
        lock.release()
    logger.info("poll: %s", summary)
    return summary


class _PollLock:
    """The one poll running, in Redis: a short lease renewed while the poll runs."""

    def __init__(self) -> None:
        self.token = uuid.uuid4().hex
        self.renewed = time.monotonic()

    def acquire(self) -> bool:
        return bool(redis_client().set(LOCK_KEY, self.token, nx=True, ex=LOCK_SECONDS))

    def renew(self) -> None:
        if time.monotonic() - self.renewed < LOCK_RENEW_SECONDS:
            return
        self.renewed = time.monotonic()
        if not redis_client().eval(_RENEW_IF_OURS, 1, LOCK_KEY, self.token, LOCK_SECONDS):
            raise PollLockLost(LOCK_KEY)

    def release(self) -> None:
        redis_client().eval(_RELEASE_IF_OURS, 1, LOCK_KEY, self.token)


@functools.cache
def _say_not_configured() -> None:
    # Once per process: beat asks every minute, and the first line already says it all.
    logger.warning("poll: SIREKAP_DATA_URL is not set; the public site is not polled")


def poll(
    *, kind: str | None = None, region: str | None = None, heartbeat: Callable[[], None] = _idle
) -> PollSummary:
    """One walk of the public site from each contest's region (or `region`) down to the changes.
    `heartbeat` is called at least every LOCK_RENEW_SECONDS while it runs."""
    if not settings.SIREKAP_DATA_URL:
        raise PollRefused("SIREKAP_DATA_URL is not set: there is no public site to poll")
    roots = poll_roots(kind=kind, region=region)
    with _client() as client:
        return _Walk(client, heartbeat).run(roots)


def _client() -> urllib3.PoolManager:
    """The fetching threads' one client: a connection per thread kept open, a timeout per phase
    (connecting, each read), redirects followed, compressed answers accepted. urllib3 rather
    than httpx: about a third less CPU a request (docs/performance.md, "The poller"). It retries
    nothing itself: _fetch does, with a backoff and a count of the requests."""
    seconds = settings.POLL_TIMEOUT_SECONDS
    return urllib3.PoolManager(
        maxsize=settings.POLL_CONCURRENCY,
        timeout=urllib3.Timeout(connect=seconds, read=seconds),
        retries=urllib3.Retry(total=None, connect=0, read=0, other=0, status=0, redirect=10),
        headers=urllib3.make_headers(accept_encoding=True),
    )


@dataclass
class Target:
    kind: str
    code: str
    url: str
    # What the site said last time (None: never read, or a TPS, which is not remembered).
    memory: PublicAreaProgress | None


@dataclass
class Reply:
    """One fetch's outcome; status None means no usable answer even after the retries."""

    status: int | None = None
    content: bytes = b""
    etag: str = ""
    last_modified: str = ""
    requests: int = 0
    problem: str = ""


def _fetch(
    client: urllib3.PoolManager, url: str, headers: dict, *, retries: int, backoff: float
) -> Reply:
    """Runs in a pool thread: HTTP only, never the database."""
    reply = Reply()
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        reply.requests += 1
        try:
            response = client.request("GET", url, headers=headers)
        except urllib3.exceptions.HTTPError as error:
            reply.problem = _problem(error)
            continue
        if response.status == 429 or response.status >= 500:
            reply.problem = f"HTTP {response.status}"
            continue
        return Reply(
            status=response.status,
            content=response.data,
            etag=response.headers.get("ETag", ""),
            last_modified=response.headers.get("Last-Modified", ""),
            requests=reply.requests,
        )
    return reply


def _problem(error: urllib3.exceptions.HTTPError) -> str:
    """What went wrong, as the log says it: urllib3 wraps the error that ended a request (it
    retries none) in a MaxRetryError."""
    cause: Exception = error
    if isinstance(error, urllib3.exceptions.MaxRetryError) and error.reason is not None:
        cause = error.reason
    # A refused or unresolved connection is a ConnectTimeoutError too, for urllib3's history.
    if isinstance(cause, urllib3.exceptions.TimeoutError) and not isinstance(
        cause, urllib3.exceptions.NewConnectionError
    ):
        return "timeout"
    return f"{type(cause).__name__}: {cause}"


@dataclass
class _Read:
    """A reply this thread will use: an area's file (`data`), or what the site said of it last
    time (`remembered`, on a 304), or a TPS file's usable image URLs."""

    target: Target
    reply: Reply
    data: dict | None = None
    remembered: dict[str, int] | None = None
    images: list[str] | None = None


class _Walk:
    """One run: the pool fetches; this thread takes the replies that are in, all together, reads
    and writes for them in a few statements whatever their number, and decides what next."""

    def __init__(self, client: urllib3.PoolManager, heartbeat: Callable[[], None]) -> None:
        self.heartbeat = heartbeat
        self.fetch = functools.partial(
            _fetch, client, retries=settings.POLL_RETRIES, backoff=settings.POLL_BACKOFF_SECONDS
        )
        self.pool = ThreadPoolExecutor(settings.POLL_CONCURRENCY, thread_name_prefix="poll")
        self.pending: dict[Future, Target] = {}
        self.summary = PollSummary()
        self.failures_in_a_row = 0

    def run(self, roots: list[tuple[str, str]]) -> PollSummary:
        try:
            for kind, code in roots:
                self._submit(kind, [code])
            while self.pending:
                done, _ = wait(self.pending, LOCK_RENEW_SECONDS, return_when=FIRST_COMPLETED)
                self.heartbeat()
                self._handle([(self.pending.pop(future), future.result()) for future in done])
        finally:
            # On an error, Ctrl-C or Celery's soft time limit, queued fetches are dropped unsent.
            self.pool.shutdown(cancel_futures=True)
        summary = self.summary
        counters.poll_count(
            requests=summary.requests,
            errors=summary.errors,
            gave_up=summary.gave_up,
            succeeded=summary.succeeded,
        )
        return summary

    def _submit(self, kind: str, area_codes: list[str]) -> None:
        if self.summary.gave_up or not area_codes:
            return
        # TPS files are not remembered: one is read only while the site counts it and we do not.
        at_tps = len(area_codes[0]) == codes.TPS_LENGTH
        memories = {} if at_tps else selectors.public_progress_by_code(kind=kind, codes=area_codes)
        for code in area_codes:
            memory = memories.get(code)
            url = f"{settings.SIREKAP_DATA_URL}/{hhcw_path(kind, code)}"
            future = self.pool.submit(self.fetch, url, _conditional_headers(memory))
            self.pending[future] = Target(kind, code, url, memory)

    def _handle(self, replies: list[tuple[Target, Reply]]) -> None:
        """The replies in so far: each checked, then the areas' and the TPS' reads and writes
        each done for all of them at once, then their children fetched."""
        reads = []
        for target, reply in replies:
            if read := self._usable(target, reply):
                reads.append(read)
            # After each file, not only each wait: on a busy night hundreds of replies arrive
            # while a batch is handled, and handling them all may outlast the lease.
            self.heartbeat()
        areas = [read for read in reads if len(read.target.code) < codes.TPS_LENGTH]
        children = self._read_areas(areas)
        self.heartbeat()
        self._read_tps([read for read in reads if read.images is not None])
        for kind, differing in children.items():
            self._submit(kind, differing)

    def _usable(self, target: Target, reply: Reply) -> _Read | None:
        """The reply as something to read, or None after logging why it is not one."""
        self.summary.requests += reply.requests
        if reply.status is None:
            self._failed(target, reply)
            return None
        self.failures_in_a_row = 0
        try:
            if reply.status == 304 and target.memory is not None:
                self.summary.not_modified += 1
                return _Read(target, reply, remembered=target.memory.children)
            if reply.status != 200:
                raise Unusable(f"HTTP {reply.status}")
            data = json_object(reply.content)
            if len(target.code) < codes.TPS_LENGTH:
                return _Read(target, reply, data=data)
            images = self._images(target, data)
        except Unusable as problem:
            self._error(target, str(problem))
            return None
        if images is None:
            self.summary.read += 1  # read and used: it says "not yet"
            return None
        return _Read(target, reply, images=images)

    def _failed(self, target: Target, reply: Reply) -> None:
        self._error(target, f"{reply.problem} ({reply.requests} attempts)")
        self.failures_in_a_row += 1
        if self.failures_in_a_row < settings.POLL_GIVE_UP_AFTER_FAILURES or self.summary.gave_up:
            return
        logger.error(
            "poll: %d fetches in a row failed; stopping this run, the next one tries again",
            self.failures_in_a_row,
        )
        self.summary.gave_up = True
        for future in list(self.pending):
            if future.cancel():
                del self.pending[future]

    def _error(self, target: Target, what: str) -> None:
        self.summary.errors += 1
        where = {"contest": target.kind, "area": target.code}
        logger.warning("poll: %s: %s", target.url, what, extra=where)

    # --- TPS files

    def _images(self, target: Target, data: dict) -> list[str] | None:
        """The image URLs a TPS file lists that we may link to; None while it lists none."""
        images = data.get("images")
        if images is None or images == []:
            logger.info(
                "poll: %s: no images yet",
                target.url,
                extra={"contest": target.kind, "tps": target.code},
            )
            return None
        if not (isinstance(images, list) and all(isinstance(u, str) and u for u in images)):
            raise Unusable(f"images is {describe(images)}, not a list of URLs")
        return self._image_urls(target.url, images)

    def _image_urls(self, url: str, images: list[str]) -> list[str]:
        """The images we may link to: https:, or on the site's own origin. Anything else
        (javascript:, data:, plain http: elsewhere) is dropped and logged; with none left the
        file is unusable."""
        kept = [image for image in images if image_url_allowed(image)]
        for image in images:
            if image not in kept:
                logger.warning("poll: %s: image URL dropped, not https: or the site's: %.100r",
                               url, image)  # fmt: skip
        if not kept:
            raise Unusable("no usable image URL")
        return kept

    def _read_tps(self, reads: list[_Read]) -> None:
        """Marks published every unpublished upload at these TPS: found in one query per kind,
        marked in one statement per kind (each upload its own conditional change and event)."""
        for kind, of_kind in _grouped(reads, _kind).items():
            images = {read.target.code: read.images or [] for read in of_kind}
            unpublished = selectors.upload_ids_unpublished(kind=kind, images=images)
            marked = {upload: images[tps] for tps, ids in unpublished.items() for upload in ids}
            self.summary.published += upload_mark_published_many(images=marked)
            self.summary.read += len(of_kind)
            self.heartbeat()

    # --- Area files

    def _read_areas(self, reads: list[_Read]) -> dict[str, list[str]]:
        """Reads these areas' files against our counts (one query per kind and level), records
        what each said (one upsert), and answers the children to fetch, by kind."""
        ours: dict[tuple[str, str], dict[str, Counts]] = {}
        for (kind, _), of_level in _grouped(reads, _kind_and_level).items():
            area_codes = [read.target.code for read in of_level]
            counts = selectors.upload_counts_per_child(kind=kind, area_codes=area_codes)
            ours.update({(kind, code): mine for code, mine in counts.items()})
        recorded: list[AreaRead] = []
        differing: dict[str, list[str]] = {}
        for read in reads:
            target = read.target
            mine = ours[(target.kind, target.code)]
            try:
                site = self._site_figures(read, mine, recorded)
            except Unusable as problem:
                self._error(target, str(problem))
                continue
            self.summary.read += 1
            differing.setdefault(target.kind, []).extend(_differing(target.code, site, mine))
        if recorded:
            public_progress_record(reads=recorded)
        return differing

    def _site_figures(
        self, read: _Read, ours: dict[str, Counts], recorded: list[AreaRead]
    ) -> dict[str, int]:
        """The site's published count per child: remembered (304), or read from the file and
        added to `recorded`."""
        target = read.target
        if read.remembered is not None:
            return read.remembered
        figures = area_figures(target.kind, read.data or {})
        for problem in figures.problems:
            self._error(target, problem)
        children = self._site_children(target, figures.rows, ours)
        recorded.append(
            AreaRead(
                kind=target.kind,
                area_code=target.code,
                figures=figures,
                children=children,
                etag=read.reply.etag,
                last_modified=read.reply.last_modified,
            )
        )
        return children

    def _site_children(self, target: Target, rows: dict, ours: dict[str, Counts]) -> dict[str, int]:
        """The site's published count per child. Rows of areas we do not track are kept when
        readable (for the dashboard) and otherwise ignored: they are not our business."""
        children = {}
        for code, row in rows.items():
            mine = ours.get(code)
            try:
                children[code] = row_published(row, mine.total if mine else None)
            except Unusable as problem:
                if mine is not None:
                    self._error(target, f"table row {code} {problem}")
        for code in sorted(ours.keys() - rows.keys()):
            self._error(target, f"no table row for {code}")
        return children


def _grouped[K](reads: list[_Read], key: Callable[[_Read], K]) -> dict[K, list[_Read]]:
    grouped: dict[K, list[_Read]] = {}
    for read in reads:
        grouped.setdefault(key(read), []).append(read)
    return grouped


def _kind(read: _Read) -> str:
    return read.target.kind


def _kind_and_level(read: _Read) -> tuple[str, int]:
    return read.target.kind, len(read.target.code)


def _differing(code: str, site: dict[str, int], ours: dict[str, Counts]) -> list[str]:
    """The children whose count differs from ours; below a desa, the TPS the site counts as
    published and we do not (the others have nothing new to tell)."""
    tps_below = codes.child_code_length(code) == codes.TPS_LENGTH
    return [
        child
        for child, mine in ours.items()
        if child in site and _differs(site[child], mine, tps=tps_below)
    ]


def _differs(theirs: int, mine: Counts, *, tps: bool) -> bool:
    if tps:
        return theirs > 0 and mine.published == 0
    return theirs != mine.published


def _conditional_headers(memory: PublicAreaProgress | None) -> dict[str, str]:
    headers = {}
    if memory is not None and memory.etag:
        headers["If-None-Match"] = memory.etag
    if memory is not None and memory.last_modified:
        headers["If-Modified-Since"] = memory.last_modified
    return headers
