"""Every write to the public snapshot (public/snapshots.py): an entry built when first asked for,
and the workers' refresh of what changed.

The refresh finds what changed from the upload events (every change to an upload writes one, in
the same statement: uploads.services) and from the public site's figures the poller stored, and
rebuilds the entries of those areas and of every area above them, oldest change first, for at
most a budget of seconds per run; what is left waits, in its order, for the next run. A refresh
that fails (PostgreSQL gone) writes nothing of its state: the next one reads the same changes.

Each contest kind is refreshed on its own (its state, its lock): several snapshot worker
processes refresh several kinds at once, and a busy kind never holds up a quiet one.
"""

import itertools
import logging
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connection

from public import mirror, snapshots
from public.entries import (
    CANDIDATES,
    HHCW,
    PROGRESS_CSV,
    REBUILT_APART,
    WILAYAH,
    EntryInputs,
    entry_build,
    entry_inputs_of_areas,
    home_name,
    page_name,
    page_parts,
)
from public.locks import advisory_lock
from public.snapshots import Entry, Key
from regions import codes
from regions.selectors import area_codes_down_to
from uploads.models import PublicAreaProgress
from uploads.progress.selectors import progress_home

logger = logging.getLogger(__name__)

# One refresher per contest kind at a time in the whole deployment, whatever the number of
# workers: an advisory lock of this class, keyed by the kind.
REFRESH_LOCK = 0x5EE7_0001
# The most events one run reads; a backlog (the workers were down) is read over several runs.
EVENTS_PER_RUN = 200_000
# The public site's figures the poller stored this long before the last refresh still count as
# changed (a poller's upsert may commit after the refresh that followed it started).
SITE_FIGURE_OVERLAP = timedelta(seconds=30)
# Levels whose entries the sweep rebuilds when old: their pages draw a timeline, whose time axis
# moves on when nothing changes.
SWEPT_MAX_CODE_LENGTH = codes.LENGTH[codes.KECAMATAN]
SWEEP_AFTER_SECONDS = 300
# The snapshot of an earlier build (public.snapshots.build) that no refresh wrote for this long
# is removed by the sweep: the processes of the deploy before are gone.
OLD_BUILD_SECONDS = 3600


class SnapshotUnavailable(Exception):
    """An entry nobody has asked for before, while the database cannot be read."""


@dataclass(frozen=True)
class Refresh:
    changed: int  # areas whose data changed (each TPS and the areas above it)
    rebuilt: int  # of those and the earlier left ones, areas whose entries were rebuilt
    entries: int
    left: int  # areas waiting for the next run
    seconds: float


def snapshot_entry(key: Key) -> Entry | None:
    """The entry as stored, or built now and stored when there is none yet (or it was set aside
    as outdated); None when there is no such thing (an unknown area or TPS). Marks it read, so
    that the workers keep it current. When it must be built and the database cannot be read:
    the outdated entry (Entry.outdated, served as stale), else SnapshotUnavailable."""
    entry = snapshots.entry_read(key) or _entry_built(key)
    if entry is not None:
        snapshots.read_mark(key)
    return entry


def _entry_built(key: Key) -> Entry | None:
    source = EntryInputs(key.kind, key.code)
    try:
        entry = entry_build(source, key.name)
        built = {key: entry}
        if mirror.mirror_on():
            # On the bucket a page's polls must find their parts there too: nobody asks us.
            built |= _parts_built(source, key) if entry is not None else {}
            mirror.mirror_want(
                wants=[
                    want for at, found in built.items() for want in mirror.entry_wants(at, found)
                ]
            )
    except DatabaseError as error:
        outdated = snapshots.entry_read_outdated(key)
        if outdated is None:
            raise SnapshotUnavailable(str(error)) from error
        return outdated
    for at, found in built.items():
        _entry_store(at, found)
    return entry


def _parts_built(source: EntryInputs, key: Key) -> dict[Key, Entry | None]:
    """The parts a page polls (public.entries.page_parts), those it has."""
    built: dict[Key, Entry | None] = {}
    for name in page_parts(key.name):
        part = Key(key.kind, key.code, name)
        if snapshots.entry_read(part) is None and (entry := entry_build(source, name)):
            built[part] = entry
    return built


def _entry_store(key: Key, entry: Entry | None) -> None:
    if entry is None:
        # The area or contest is gone (regions re-imported): answer 404, not old figures.
        snapshots.entry_delete(key)
    else:
        snapshots.entry_write(key, entry)


def snapshot_home() -> tuple[str, str] | None:
    """(kind, code) of the area the home page shows, as last stored, else read and stored."""
    home = snapshots.home_read()
    if home is None:
        try:
            home = progress_home()
        except DatabaseError as error:
            raise SnapshotUnavailable(str(error)) from error
        if home is not None:
            snapshots.home_write(*home)
    return home


def snapshot_kinds_due() -> list[str]:
    """The contest kinds with entries, the one refreshed longest ago (or never) first: the order
    their refreshes are asked for, so that when the workers cannot do them all within a period,
    those left out come first the next time. Mirrored, also the kinds on the bucket that this
    build of the code has no entries of yet."""
    kinds = set(snapshots.kinds())
    if mirror.mirror_on():
        kinds |= mirror.mirrored_kinds()
    return sorted(kinds, key=lambda kind: (snapshots.heartbeat(kind) or 0.0, kind))


def snapshot_refresh(kind: str, *, budget_seconds: float | None = None) -> Refresh | None:
    """Rebuilds the entries of the contest kind's areas whose data changed since its last run;
    None when another refresh of the kind is running."""
    started = time.monotonic()
    budget = settings.SNAPSHOT_REFRESH_BUDGET_SECONDS if budget_seconds is None else budget_seconds
    with advisory_lock(REFRESH_LOCK, kind) as alone:
        if not alone:
            return None
        state = snapshots.state_read(kind)
        newest = _newest_event()
        # No state, or one ahead of the database (restored from a backup, recreated): what
        # changed since the snapshot was built is unknown.
        if "events" not in state or newest < state["events"]["upto"]:
            state = _first_state(kind, newest)
        events = _events_since(kind, state["events"], newest=newest)
        changed = events.areas | _site_figures_since(kind, state.get("finished_at"))
        pending = _merge(state["pending"], changed, now=time.time())
        rebuilt, entries, left = _rebuild(pending, deadline=started + budget)
        _home_store()
        snapshots.state_write(
            kind, {"events": events.next_window, "pending": left, "finished_at": time.time()}
        )
    return Refresh(len(changed), rebuilt, entries, len(left), time.monotonic() - started)


def snapshot_refresh_all(*, budget_seconds: float | None = None) -> dict[str, Refresh | None]:
    """Refreshes every contest kind in turn, in this process (the command, the benchmarks): a
    Refresh for each kind, or None where another refresh of it is running."""
    return {
        kind: snapshot_refresh(kind, budget_seconds=budget_seconds) for kind in snapshot_kinds_due()
    }


def snapshot_sweep(*, budget_seconds: float = 60.0) -> int:
    """Rebuilds the entries of areas down to the kecamatan that were not rebuilt for
    SWEEP_AFTER_SECONDS, the oldest first, of each contest kind not being refreshed just now (a
    kind being refreshed waits for the next sweep); how many areas."""
    before = time.time() - SWEEP_AFTER_SECONDS
    deadline = time.monotonic() + budget_seconds
    rebuilt = 0
    for kind in snapshots.kinds():
        old = snapshots.areas_built_before(kind, before, max_code_length=SWEPT_MAX_CODE_LENGTH)
        rebuilt += _rebuild_alone(kind, old, deadline=deadline) or 0
    for name in snapshots.builds_remove(unused_for=OLD_BUILD_SECONDS):
        logger.info("removed the public snapshot of an earlier build, %s", name)
    return rebuilt


def snapshot_rebuild_all() -> dict[str, int | None]:
    """Rebuilds every entry there is (after regions or contests changed): how many areas of each
    contest kind (None: another refresh of the kind is running, nothing rebuilt); and the
    candidate lists, which the refresh leaves alone."""
    rebuilt = {
        kind: _rebuild_alone(kind, _every_area(kind), deadline=float("inf"))
        for kind in snapshots.kinds()
    }
    for kind in rebuilt:
        if CANDIDATES in snapshots.entry_names(kind, ""):
            snapshot_candidates_rebuild(kind)
    return rebuilt


def _rebuild_alone(
    kind: str, found: Iterable[tuple[str, str, float]], *, deadline: float
) -> int | None:
    areas = _ordered([list(area) for area in found])
    with advisory_lock(REFRESH_LOCK, kind) as alone:
        if not alone:
            return None
        rebuilt, _, _ = _rebuild(areas, deadline=deadline)
        _home_store()
    return rebuilt


def _home_store() -> None:
    """Which area the home page shows, for / to be answered without a query."""
    if home := progress_home():
        snapshots.home_write(*home)


def _every_area(kind: str) -> Iterator[tuple[str, str, float]]:
    return snapshots.areas_built_before(kind, float("inf"), max_code_length=codes.TPS_LENGTH)


# --- What changed


def _newest_event() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM uploads_uploadevent")
        return cursor.fetchone()[0]


def _first_state(kind: str, newest: int) -> dict:
    """Where a first refresh (or one after the state was lost) starts: from the newest event,
    with every entry of the kind waiting, since what changed before is not known."""
    every = [list(area) for area in _every_area(kind)]
    if mirror.mirror_on():
        # A build that has not written what is on the bucket yet (a deploy) writes it now: the
        # names of an area's mirrored entries ride along with it, a fourth item.
        mirrored = mirror.mirrored_entries(kind)
        for area in every:
            area.append(sorted(mirrored.pop(str(area[1]), set())))
        every += [[kind, code, 0.0, sorted(names)] for code, names in mirrored.items()]
    return {"events": {"after": newest, "upto": newest, "count": 0}, "pending": _ordered(every)}


@dataclass(frozen=True)
class _Events:
    areas: set[tuple[str, str]]  # (kind, code) of each TPS with a new event, and those above
    next_window: dict  # what the next run reads again (see _events_since)


def _events_since(kind: str, window: dict, *, newest: int) -> _Events:
    """The areas of the contest kind's events not read yet, up to the newest event id (read
    before: ids above it are read by the next run).

    Event ids come from a sequence and are taken before their transaction commits, so an event
    may become visible after a run has read past its id. Each run therefore reads again the ids
    the run before read ("after" to "upto"), in the same statement as the new ones, and counts
    them: the same count as then means nothing arrived late and those rows are skipped; another
    count, and their TPS are rebuilt again too (rare: a transition is one short statement).
    The window moves on by the ids read, not by the kind's events found: a quiet kind's window
    follows the others' events instead of staying behind them.
    """
    after, upto = window["after"], window["upto"]
    until = max(upto, min(newest, upto + EVENTS_PER_RUN))
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT upload.tps_id,
                count(*) FILTER (WHERE event.id <= %(upto)s),
                count(*) FILTER (WHERE event.id > %(upto)s)
            FROM uploads_uploadevent event
            JOIN uploads_upload upload ON upload.id = event.upload_id
            JOIN regions_contest contest ON contest.id = upload.contest_id
            WHERE contest.kind = %(kind)s AND event.id > %(after)s AND event.id <= %(until)s
            GROUP BY 1
            """,
            {"kind": kind, "after": after, "upto": upto, "until": until},
        )
        rows = cursor.fetchall()
    late = sum(old for *_, old, _ in rows) != window["count"]
    tps = {code for code, _, new in rows if new or late}
    count = sum(new for *_, new in rows)
    return _Events(
        areas={(kind, area) for code in tps for area in ["", *codes.lineage(code)]},
        next_window={"after": upto, "upto": until, "count": count},
    )


def _site_figures_since(kind: str, finished_at: float | None) -> set[tuple[str, str]]:
    """The areas of the contest kind whose public site figure the poller stored since the kind's
    last refresh."""
    if finished_at is None:
        return set()
    since = datetime.fromtimestamp(finished_at, tz=UTC) - SITE_FIGURE_OVERLAP
    figures = PublicAreaProgress.objects.filter(kind=kind, fetched_at__gte=since)
    return set(figures.values_list("kind", "area_code"))


def _merge(pending: list, changed: set[tuple[str, str]], *, now: float) -> list[list]:
    """The areas waiting, with the newly changed ones that were not, in rebuild order."""
    waiting = {(kind, code) for kind, code, *_ in pending}
    return _ordered(pending + [[kind, code, now] for kind, code in changed - waiting])


def _ordered(areas: list[list]) -> list[list]:
    """The longest waiting first; among those of one moment, the nation before the provinsi
    and so on down: the pages most read."""
    return sorted(areas, key=lambda area: (area[2], len(area[1]), area[0], area[1]))


# --- Rebuilding


def _rebuild(areas: list[list], *, deadline: float) -> tuple[int, int, list[list]]:
    """Rebuilds the entries the public reads of the areas in order until the deadline, and sets
    the others aside as outdated (_read_lately); (areas rebuilt, entries written, areas left).
    An area nobody asked for has no entries and costs nothing; one whose entries nobody read
    lately costs a rename each. The page data of the areas to rebuild is read REBUILD_BATCH at a
    time (entry_inputs_of_areas)."""
    rebuilt = entries = 0
    wants: list[mirror.Want] = []
    batch: dict[tuple[str, str], EntryInputs] = {}
    to_rebuild = _AreasToRebuild(areas)
    try:
        for position, kind, code, read in to_rebuild:
            if rebuilt and time.monotonic() >= deadline:
                return rebuilt, entries, areas[position:]
            if (kind, code) not in batch:
                batch = _inputs_batch(kind, code, to_rebuild)
            entries += _area_rebuild(batch.pop((kind, code)), read, wants=wants)
            rebuilt += 1
        return rebuilt, entries, []
    finally:
        # What the objects should be, in one statement per run, before its state is written.
        if wants:
            mirror.mirror_want(wants=wants)


# Areas whose page data one read brings (public.selectors.public_area_pages): a query per batch
# for their contest areas, site figures and stuck lists, not three per area; small enough that
# what a run reads past its deadline is little.
REBUILD_BATCH = 32


class _AreasToRebuild:
    """(position, kind, code, entries read lately) of each area with entries the public reads,
    in order; the entries of each that nobody read lately set aside as it is reached. The
    caller may look at the next few (ahead()) to read their page data together."""

    def __init__(self, areas: list[list]) -> None:
        self._found = self._each(areas)
        self._ahead: deque[tuple[int, str, str, list[str]]] = deque()

    @staticmethod
    def _each(areas: list[list]) -> Iterator[tuple[int, str, str, list[str]]]:
        for position, (kind, code, _, *mirrored) in enumerate(areas):
            if read := _entries_read(kind, code, mirrored[0] if mirrored else ()):
                yield position, kind, code, read

    def __iter__(self) -> "_AreasToRebuild":
        return self

    def __next__(self) -> tuple[int, str, str, list[str]]:
        return self._ahead.popleft() if self._ahead else next(self._found)

    def ahead(self, count: int) -> list[tuple[int, str, str, list[str]]]:
        """The next `count` areas (or fewer, at the end), which next() returns after."""
        self._ahead.extend(itertools.islice(self._found, max(count - len(self._ahead), 0)))
        return list(itertools.islice(self._ahead, count))


def _entries_read(kind: str, code: str, mirrored: Iterable[str]) -> list[str]:
    """The entries of the area read lately (mirrored: every one of them), the others set aside
    as outdated."""
    names = {
        name: last
        for name, last in snapshots.entries_last_read(kind, code).items()
        if name not in REBUILT_APART
    }
    for name in mirrored:
        names.setdefault(name, None)
    read = _read_lately(names)
    for name in names.keys() - set(read):
        snapshots.entry_outdate(Key(kind, code, name))
    return read


def _inputs_batch(
    kind: str, code: str, to_rebuild: _AreasToRebuild
) -> dict[tuple[str, str], EntryInputs]:
    """The EntryInputs of the area and of the next areas of its kind to rebuild, read together."""
    codes_ahead = [at for _, of, at, _ in to_rebuild.ahead(REBUILD_BATCH - 1) if of == kind]
    inputs = entry_inputs_of_areas(kind, [code, *codes_ahead])
    return {(kind, at): source for at, source in inputs.items()}


def _read_lately(names: dict[str, float | None]) -> list[str]:
    """The entries read within SNAPSHOT_READ_WINDOW_SECONDS; mirrored, every entry is read:
    through the CDN, where we cannot see it."""
    since = time.time() - settings.SNAPSHOT_READ_WINDOW_SECONDS
    return sorted(
        name for name, last in names.items() if mirror.mirror_on() or (last and last >= since)
    )


def _area_rebuild(source: EntryInputs, names: Iterable[str], *, wants: list) -> int:
    """Builds and stores the named entries of an area; an entry that is no more (None) is
    deleted."""
    kind, code = source.kind, source.code
    built = {Key(kind, code, name): entry_build(source, name) for name in names}
    if mirror.mirror_on():
        wants += [want for key, entry in built.items() for want in mirror.entry_wants(key, entry)]
    for key, entry in built.items():
        _entry_store(key, entry)
    return sum(entry is not None for entry in built.values())


# --- Before the night


def snapshot_prebuild(kind: str, *, down_to: int) -> int | None:
    """Builds the entries the public reads first (_first_read) of every area of the contest kind
    from the nation down to the level `down_to` (regions.codes' numbering), those not stored
    yet: before the night, so that the mirror's bucket has them before anyone asks through the
    CDN, and the first readers wait for nothing. How many entries it wrote; None when a refresh
    of the kind is running (nothing built)."""
    areas = ["", *area_codes_down_to(down_to)]
    home = progress_home()
    written = 0
    with advisory_lock(REFRESH_LOCK, kind) as alone:
        if not alone:
            return None
        if home is not None:
            # Stored first: the mirror puts a home page at / only for the home it has stored.
            snapshots.home_write(*home)
        for start in range(0, len(areas), REBUILD_BATCH):
            written += _prebuild_batch(kind, areas[start : start + REBUILD_BATCH], home=home)
    return written


def _prebuild_batch(kind: str, area_codes: list[str], *, home: tuple[str, str] | None) -> int:
    """snapshot_prebuild of a few areas, their page data read together."""
    wants: list[mirror.Want] = []
    written = 0
    for code, source in entry_inputs_of_areas(kind, area_codes).items():
        if source.page_data is None:
            continue  # no contest of the kind over or under the area
        stored = set(snapshots.entry_names(kind, code))
        wanted = _first_read(home=home == (kind, code))
        missing = [name for name in wanted if name not in stored]
        written += _area_rebuild(source, missing, wants=wants)
    mirror.mirror_want(wants=wants)
    return written


def _first_read(*, home: bool) -> list[str]:
    """What the public reads first of an area: each language's page, with the parts its polls
    ask for, and the KPU-shaped files; at the area the home page shows, the home page too.
    Other orders of a page and the TPS are built when first asked for."""
    pages = [
        page_name(language=language, part="page", sort="code") for language, _ in settings.LANGUAGES
    ]
    homes = [home_name(language) for language, _ in settings.LANGUAGES] if home else []
    parts = [part for page in pages for part in page_parts(page)]
    return [*pages, *parts, *homes, HHCW, WILAYAH, PROGRESS_CSV]


# --- What the refresh does not follow


def snapshot_candidates_rebuild(kind: str) -> None:
    """Rebuilds the contest kind's candidate list now, after an import replaced it (the refresh
    follows the uploads and leaves the list alone: entries.REBUILT_APART), whether or not
    anyone asked for it yet: a copy of the snapshot elsewhere should not wait for someone to."""
    wants: list[mirror.Want] = []
    _area_rebuild(EntryInputs(kind, ""), [CANDIDATES], wants=wants)
    if wants:
        mirror.mirror_want(wants=wants)
