"""The public snapshot: every public page and open-data file as the very bytes we answer, on disk.

Why files: on election night the whole country refreshes the same few pages. An answer from a
file costs a stat (and a read when it changed), not queries and a template, whatever the load;
and when PostgreSQL or Redis is down the files are still here, served marked stale.

Who writes: the workers (`public.services.snapshot_refresh`, every few seconds for each contest
kind) rebuild the entries of each area whose data changed; a request for an entry nobody asked
for before builds it once (`public.entries`) and stores it here. Nothing is built per request
after that.

Layout: one folder per build of the code (`build()`: a page names its stylesheet by its hashed
name, a template or a builder may have changed), so that a deploy starts a snapshot of its own
and never serves pages made by the code before it. Below it the codes are a materialized path,
and so are the folders: the entries of the nation are in <SNAPSHOT_ROOT>/<build>/<contest kind>/,
those of Kabupaten PPU in <kind>/64/6409/, those of one of its
TPS in <kind>/64/6409/640901/6409012001/6409012001001/, so that no folder holds more than one
area's entries and its children's folders, and a walk down to the kecamatan never lists a desa.
One file per entry: a line of JSON (content type, ETag, when built, headers) and then the body,
written whole to a temporary name and renamed over the old one, so that a reader (another
process, another container on the same volume) sees the old entry or the new one, never half.

Beside an entry, two hidden files of its own: `.<name>.read`, touched (at most every
READ_MARK_SECONDS by each process) when the public reads the entry, so that the workers rebuild
only what is read and leave the rest for its next request; and `.<name>.outdated`, the entry as
it was when its data changed while nobody read it, answered (marked stale) only when it cannot
be built again because the database is away.
"""

import dataclasses
import functools
import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from django.apps import apps
from django.conf import settings

from regions import codes

# The state of a contest kind's refresher (public.services), state.<kind>.json at the root, beside
# the kinds' folders; its modification time is that kind's heartbeat.
STATE = "state.{kind}.json"
# Which area the home page shows (uploads.progress.selectors.progress_home), so that / is answered
# without a query: "<kind> <code>".
HOME = "home"
# A process marks an entry read at most this often: a touch of a small file, not one per request.
READ_MARK_SECONDS = 10
READ_MARK = ".{name}.read"
OUTDATED = ".{name}.outdated"
# Entries a process keeps in memory, each checked against its file by one stat per request: the
# hot pages are read from disk once per change, not per request. About 30 KB each at most.
CACHED_ENTRIES = 512


@dataclass(frozen=True)
class Entry:
    body: bytes
    content_type: str
    etag: str
    built_at: float  # seconds since the epoch
    headers: dict[str, str] = field(default_factory=dict)
    # A token in the body that stands for the scheme and host the request came to (the open
    # data's absolute image URLs); "" when the body has none.
    base_url_token: str = ""
    # Its data changed after it was built, and it was not built again (see OUTDATED).
    outdated: bool = False


@dataclass(frozen=True)
class Key:
    """Where an entry lives: a contest kind, an area ("" the nation, down to a TPS) and a name
    (public.entries.NAMES says what each is)."""

    kind: str
    code: str
    name: str

    @property
    def path(self) -> Path:
        return area_folder(self.kind, self.code) / self.name

    @property
    def outdated_path(self) -> Path:
        return area_folder(self.kind, self.code) / OUTDATED.format(name=self.name)

    @property
    def read_mark_path(self) -> Path:
        return area_folder(self.kind, self.code) / READ_MARK.format(name=self.name)


def root() -> Path:
    return Path(settings.SNAPSHOT_ROOT) / build()


# What a build's entries are made from: our apps' code and templates, the project's templates
# and translations, and the names of the static files (the manifest collectstatic writes).
BUILD_SUFFIXES = (".py", ".html", ".mo")


@functools.cache
def build() -> str:
    """This process's build of the code: a digest of what the entries are made from. Computed
    once per process, so a process keeps writing the build it started with."""
    base = Path(settings.BASE_DIR)
    digest = hashlib.sha256()
    for path in sorted(_build_files(base)):
        digest.update(str(path.relative_to(base)).encode() + b"\0" + path.read_bytes())
    if settings.STATIC_ROOT:
        manifest = Path(settings.STATIC_ROOT) / "staticfiles.json"
        digest.update(manifest.read_bytes() if manifest.exists() else b"")
    return digest.hexdigest()[:16]


def _build_files(base: Path) -> list[Path]:
    # Our apps are the project's own top-level folders (installed packages live elsewhere).
    ours = [Path(config.path) for config in apps.get_app_configs()]
    folders = [path for path in ours if path.parent == base]
    folders += [base / "templates", base / "locale", base / "sirekap_tracker"]
    return [
        path
        for folder in folders
        for path in folder.rglob("*")
        if path.suffix in BUILD_SUFFIXES and path.is_file()
    ]


def area_folder(kind: str, code: str) -> Path:
    """code: "" for the nation; entry names are never digits, so never a child's folder."""
    return root().joinpath(kind, *codes.lineage(code))


# --- Reads


_cache: dict[Path, tuple[tuple[int, int, int], Entry]] = {}
_cache_lock = threading.Lock()


def entry_read(key: Key) -> Entry | None:
    """The entry as last written, or None when there is none (or it cannot be read)."""
    path = key.path
    try:
        status = os.stat(path)
    except OSError:
        return None
    stamp = (status.st_ino, status.st_mtime_ns, status.st_size)
    cached = _cache.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    entry = _entry_load(path)
    if entry is not None:
        with _cache_lock:
            if len(_cache) >= CACHED_ENTRIES:
                _cache.pop(next(iter(_cache)), None)
            _cache[path] = (stamp, entry)
    return entry


def entry_read_outdated(key: Key) -> Entry | None:
    """The entry as it was when it was outdated (entry_outdate), or None."""
    entry = _entry_load(key.outdated_path)
    return None if entry is None else dataclasses.replace(entry, outdated=True)


def _entry_load(path: Path) -> Entry | None:
    try:
        with open(path, "rb") as file:
            meta = json.loads(file.readline())
            body = file.read()
    except (OSError, ValueError):
        # Gone between the stat and the open, or cut short by a crash of the machine: as if
        # there were none; the next build replaces it.
        return None
    return Entry(body=body, **meta)


_marked: dict[Path, float] = {}


def read_mark(key: Key) -> None:
    """Notes that the public read the entry (READ_MARK), at most every READ_MARK_SECONDS."""
    path = key.read_mark_path
    now = time.monotonic()
    if now - _marked.get(path, -READ_MARK_SECONDS) < READ_MARK_SECONDS:
        return
    if len(_marked) >= CACHED_ENTRIES * 64:
        _marked.clear()
    _marked[path] = now
    try:
        os.utime(path)
    except FileNotFoundError:
        with suppress(OSError):
            path.touch()
    except OSError:
        # A snapshot we cannot write to still answers; its entries count as read by nobody.
        pass


def entry_names(kind: str, code: str) -> list[str]:
    """The names of the entries an area has (none when nobody asked for any)."""
    return sorted(entries_last_read(kind, code))


def entries_last_read(kind: str, code: str) -> dict[str, float | None]:
    """The entries an area has, each with when the public last read it (seconds since the
    epoch; None: not since it was first built)."""
    try:
        found = {item.name: item for item in os.scandir(area_folder(kind, code)) if item.is_file()}
    except OSError:
        return {}
    return {
        name: _mtime(found.get(READ_MARK.format(name=name)))
        for name in found
        if not name.startswith(".")
    }


def _mtime(item: os.DirEntry | None) -> float | None:
    try:
        return None if item is None else item.stat().st_mtime
    except OSError:
        return None


def kinds() -> list[str]:
    """The contest kinds with entries (a folder each)."""
    try:
        return sorted(item.name for item in os.scandir(root()) if item.is_dir())
    except OSError:
        return []


def areas_built_before(
    kind: str, moment: float, *, max_code_length: int
) -> Iterator[tuple[str, str, float]]:
    """(kind, code, when its oldest entry was built) of each area of the contest kind with
    entries built before the moment, down to areas of max_code_length digits (the folders below
    are not listed)."""
    yield from _walk(str(root() / kind), kind, "", moment, max_code_length)


def _walk(folder: str, kind: str, code: str, moment: float, max_code_length: int):
    try:
        found = list(os.scandir(folder))
    except OSError:
        return
    times = [item.stat().st_mtime for item in found if item.is_file() and item.name[0] != "."]
    if times and min(times) < moment:
        yield kind, code, min(times)
    for item in found:
        if item.is_dir() and len(item.name) <= max_code_length:
            yield from _walk(item.path, kind, item.name, moment, max_code_length)


def state_path(kind: str) -> Path:
    return root() / STATE.format(kind=kind)


def heartbeat(kind: str) -> float | None:
    """When the workers last finished a refresh of the contest kind (seconds since the epoch),
    or None: never."""
    try:
        return os.stat(state_path(kind)).st_mtime
    except OSError:
        return None


def is_stale(key: Key, entry: Entry, *, now: float | None = None) -> bool:
    """Whether what the entry says may be out of date: built longer ago than the stale limit and
    not confirmed since by a finished refresh of its kind (which rebuilds whatever changed)."""
    if entry.outdated:
        return True
    now = time.time() if now is None else now
    confirmed = max(entry.built_at, heartbeat(key.kind) or 0.0)
    return now - confirmed > settings.SNAPSHOT_STALE_AFTER_SECONDS


def state_read(kind: str) -> dict:
    try:
        return json.loads(state_path(kind).read_bytes())
    except (OSError, ValueError):
        return {}


def home_read() -> tuple[str, str] | None:
    try:
        kind, _, code = (root() / HOME).read_text().partition(" ")
    except OSError:
        return None
    return (kind, code) if kind else None


# --- Writes


def entry_write(key: Key, entry: Entry) -> None:
    meta = {
        "content_type": entry.content_type,
        "etag": entry.etag,
        "built_at": entry.built_at,
        "headers": entry.headers,
        "base_url_token": entry.base_url_token,
    }
    line = json.dumps(meta, separators=(",", ":")).encode() + b"\n"
    _write_atomically(key.path, line + entry.body)
    key.outdated_path.unlink(missing_ok=True)


def entry_outdate(key: Key) -> None:
    """Sets the entry aside as outdated (OUTDATED): its next request builds it again."""
    with suppress(FileNotFoundError):
        os.replace(key.path, key.outdated_path)


def entry_delete(key: Key) -> None:
    for path in (key.path, key.outdated_path, key.read_mark_path):
        path.unlink(missing_ok=True)


def builds_remove(*, unused_for: float) -> list[str]:
    """Removes the snapshots of other builds that no refresh has written for unused_for
    seconds (the processes of an earlier deploy are gone); returns their names."""
    parent, mine = Path(settings.SNAPSHOT_ROOT), build()
    removed: list[str] = []
    try:
        others = [item for item in os.scandir(parent) if item.is_dir() and item.name != mine]
    except OSError:
        return removed
    for other in others:
        if time.time() - _last_written(Path(other.path)) > unused_for:
            shutil.rmtree(other.path, ignore_errors=True)
            removed.append(other.name)
    return removed


def _last_written(folder: Path) -> float:
    """When a build's snapshot was last written: its newest state file, else the folder."""
    times = [path.stat().st_mtime for path in folder.glob(STATE.format(kind="*"))]
    return max(times, default=folder.stat().st_mtime)


def state_write(kind: str, state: dict) -> None:
    """Also the kind's heartbeat: written at the end of every refresh of it that finished."""
    _write_atomically(state_path(kind), json.dumps(state).encode())


def home_write(kind: str, code: str) -> None:
    if home_read() != (kind, code):
        _write_atomically(root() / HOME, f"{kind} {code}".encode())


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # A name of this process and thread: two writers of one entry (a request and a worker) each
    # rename their own whole file.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
