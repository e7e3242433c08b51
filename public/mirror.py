"""The public snapshot mirrored to S3-compatible object storage, so that a CDN or any static host
serves the public pages and open data without our web servers (docs/deploy.md).

Every object is kept at the public path it is read at: `api/hhcw/pkwkk/64/6409.json` (and the
KPU's own `api/pilkada/hhcw/...`), `api/wilayah/...`, `api/progress/...csv`,
`progress/pkwkk/6409/index.html` for the page /progress/pkwkk/6409/ and `live.html` beside it for
its poll (public.entries.page_file), `en/...` for English, `index.html` for the home page, the
document pages the open data links to (`api/dokumen/<id>.jpg`) and the static files the pages
use (`static/...`); each with the Content-Type and Cache-Control our views send.

Two steps, so that the bucket never slows the snapshot down: whoever writes an entry (the
refresh, a first request) says what each of its objects should now be (`mirror_want`: a row of
MirroredObject per key, with the entry's ETag), in PostgreSQL beside everything else; a worker
of its own (`mirror_push`, every PUBLIC_MIRROR_SECONDS) puts the pending ones from the snapshot's
files and deletes the ones no longer wanted. A put happens only when what is wanted differs from
what was pushed: an entry rebuilt with the same data (same ETag) is not put again. A failing
bucket leaves the rows pending with their error, retried with a growing wait; nothing is lost,
and the system page and /metrics show it.
"""

import functools
import hashlib
import json
import logging
import mimetypes
import re
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone, translation

from public import snapshots
from public.entries import (
    CANDIDATES,
    HHCW,
    LONG_CACHE,
    PROGRESS_CSV,
    SHORT_CACHE,
    WILAYAH,
    page_file,
)
from public.locks import advisory_lock
from public.models import MirroredObject
from public.selectors import public_page
from public.snapshots import Entry, Key
from regions import codes
from regions.models import ContestKind
from uploads.documents import EXTENSION

logger = logging.getLogger(__name__)

# One pusher at a time in the whole deployment: an advisory lock of this class.
PUSH_LOCK = 0x5EE7_0002
BATCH = 100
# Puts at once: each waits for the bucket's answer (tens of milliseconds on a real one).
PUT_THREADS = 8
RETRY_CAP = timedelta(minutes=5)
# Static files whose names carry no content hash (those WhiteNoise caches for a minute).
STATIC_CACHE = "public, max-age=60"
# collectstatic's list of hashed names: read here, not served.
MANIFEST = "staticfiles.json"
DOCUMENT_LINK = re.compile(rb"/api/dokumen/(\d+)\.(jpg|png|pdf)")


def mirror_on() -> bool:
    return settings.PUBLIC_S3 is not None


def _s3() -> dict:
    if settings.PUBLIC_S3 is None:
        raise RuntimeError("the public mirror is off: PUBLIC_S3_BUCKET is not set")
    return settings.PUBLIC_S3


def _static_root() -> Path:
    # Settings refuse a bucket without STATIC_ROOT.
    return Path(settings.STATIC_ROOT or ".")


# --- What each object should be


@dataclass(frozen=True)
class Want:
    key: str
    source: str
    wanted: str  # a validator of what should be there; "" to delete it


def entry_keys(key: Key) -> list[str]:
    """The public paths an entry is read at (none for names the mirror does not know)."""
    kind, code, name = key.kind, key.code, key.name
    chain = "/".join([kind, *codes.lineage(code)])
    pilkada = kind in codes.PILKADA_KINDS
    if name == HHCW:
        return [f"api/{root}/{chain}.json" for root in ["hhcw", *["pilkada/hhcw"] * pilkada]]
    if name == WILAYAH:
        tail = f"{chain}.json" if code else f"{kind}/0.json"
        return [f"api/{root}/{tail}" for root in ["wilayah", *["wilayah/pilkada"] * pilkada]]
    if name == PROGRESS_CSV:
        return [f"api/progress/{kind}/{code}.csv" if code else f"api/progress/{kind}.csv"]
    if name == CANDIDATES:
        return [f"api/{root}/{kind}.json" for root in ["paslon", *["pilkada/paslon"] * pilkada]]
    stem, *variant = name.split(".")[:-1]
    if stem == "page" and len(variant) == 3:
        language, part, sort = variant
        return [_page_key(language, kind, code, page_file(part=part, sort=sort))]
    if stem == "home" and len(variant) == 1 and snapshots.home_read() == (kind, code):
        with translation.override(variant[0]):
            return [reverse("home").lstrip("/") + "index.html"]
    return []


def _page_key(language: str, kind: str, code: str, file: str) -> str:
    with translation.override(language):
        if code:
            path = reverse("progress:area-file", args=[kind, code, file])
        else:
            path = reverse("progress:nation-file", args=[kind, file])
    return path.lstrip("/")


def entry_wants(key: Key, entry: Entry | None) -> list[Want]:
    """What the objects of an entry should now be (entry None: gone), and the document pages
    it links to."""
    source = f"entry {key.kind} {key.code} {key.name}"
    wanted = "" if entry is None else _entry_validator(entry)
    wants = [Want(object_key, source, wanted) for object_key in entry_keys(key)]
    if entry is not None and wants:
        for number, extension in set(DOCUMENT_LINK.findall(entry.body)):
            name = f"{number.decode()}.{extension.decode()}"
            wants.append(Want(f"api/dokumen/{name}", f"document {number.decode()}", "page"))
    return wants


def _entry_validator(entry: Entry) -> str:
    # An entry's ETag says what it shows (an hhcw file's leaves its build time out); where the
    # body names the site's address, that address is part of what was put.
    if not entry.base_url_token:
        return entry.etag
    return entry.etag + " " + _digest(_s3()["base_url"].encode())[:8]


_UPSERT = """
    INSERT INTO public_mirroredobject
        (key, source, wanted, pushed, pending, changed_at, attempts, last_error)
    SELECT key, source, wanted, '', wanted <> '', %(now)s, 0, ''
    FROM unnest(%(keys)s::text[], %(sources)s::text[], %(wanted)s::text[]) AS w(key, source, wanted)
    ON CONFLICT (key) DO UPDATE SET
        source = EXCLUDED.source,
        wanted = EXCLUDED.wanted,
        pending = public_mirroredobject.pushed <> EXCLUDED.wanted,
        changed_at = EXCLUDED.changed_at,
        attempts = 0,
        next_attempt_at = NULL
    WHERE public_mirroredobject.wanted <> EXCLUDED.wanted
"""


def mirror_want(*, wants: Iterable[Want]) -> None:
    """Records what the objects should be: one statement; a row whose wish did not change is
    left as it is (so an unchanged entry is not put again)."""
    found = {want.key: want for want in wants}  # the last wish for a key counts
    if not found:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            _UPSERT,
            {
                "now": timezone.now(),
                "keys": list(found),
                "sources": [want.source for want in found.values()],
                "wanted": [want.wanted for want in found.values()],
            },
        )


def mirror_want_static() -> int:
    """Records the collected static files (STATIC_ROOT, without WhiteNoise's compressed copies:
    a CDN compresses); how many there are. Those of an earlier deploy stay on the bucket: pages
    cached somewhere still name them."""
    root = _static_root()
    wants = [
        Want(f"static/{path.relative_to(root).as_posix()}", f"static {path.relative_to(root)}",
             _digest(path.read_bytes()))
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.suffix not in (".gz", ".br") and path.name != MANIFEST
    ]  # fmt: skip
    mirror_want(wants=wants)
    return len(wants)


def mirrored_kinds() -> set[str]:
    """The contest kinds with entries on the bucket: an index probe for each kind there is."""
    entries = MirroredObject.objects.exclude(wanted="")
    return {
        kind
        for kind in ContestKind.values
        if entries.filter(source__startswith=f"entry {kind} ").exists()
    }


def mirrored_entries(kind: str, code: str | None = None) -> dict[str, set[str]]:
    """The entries of a contest kind (of one area, with code) that are on the bucket, by area
    code: a build of the code that has not written them yet (a deploy) must, since the CDN
    keeps answering them and never asks us."""
    prefix = f"entry {kind} " if code is None else f"entry {kind} {code} "
    sources = (
        MirroredObject.objects.filter(source__startswith=prefix)
        .exclude(wanted="")
        .values_list("source", flat=True)
        .distinct()
    )
    found: dict[str, set[str]] = {}
    for source in sources:
        _, _, area, name = source.split(" ")
        found.setdefault(area, set()).add(name)
    return found


# --- Putting it there


@dataclass(frozen=True)
class Push:
    put: int
    deleted: int
    failed: int
    left: int  # still pending (waiting for a retry, or beyond the budget)
    seconds: float


def mirror_push(*, budget_seconds: float | None = None) -> Push | None:
    """Puts the pending objects and deletes those no longer wanted, the oldest wish first,
    PUT_THREADS at once, for at most the budget; None when another push is running. A round
    whose every put failed means the bucket is down: the run stops there."""
    started = time.monotonic()
    budget = settings.PUBLIC_MIRROR_BUDGET_SECONDS if budget_seconds is None else budget_seconds
    counted = {"put": 0, "deleted": 0, "failed": 0}
    with advisory_lock(PUSH_LOCK, "mirror") as alone:
        if not alone:
            return None
        _static_wanted_once()
        client = _client(**_client_settings())
        with ThreadPoolExecutor(PUT_THREADS) as threads:
            for rows in _due(deadline=started + budget):
                done = _push_round(threads, client, rows)
                for outcome in counted:
                    counted[outcome] += done[outcome]
                if done["down"]:
                    break
    left = MirroredObject.objects.filter(pending=True).count()
    return Push(**counted, left=left, seconds=time.monotonic() - started)


def _due(*, deadline: float) -> Iterator[list[MirroredObject]]:
    """The due rows, oldest wish first, PUT_THREADS at a time, until the deadline."""
    tried: set[str] = set()
    while time.monotonic() < deadline:
        rows = list(
            MirroredObject.objects.filter(pending=True)
            .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=timezone.now()))
            .exclude(key__in=tried)
            .order_by("changed_at", "key")[:BATCH]
        )
        if not rows:
            return
        for start in range(0, len(rows), PUT_THREADS):
            if time.monotonic() >= deadline:
                return
            round_ = rows[start : start + PUT_THREADS]
            tried.update(row.key for row in round_)
            yield round_


def _push_round(threads: ThreadPoolExecutor, client, rows: list[MirroredObject]) -> dict:
    """Puts or deletes a round of objects at once; the database is read and written here, in
    this thread, the bucket's requests in the threads. How many were put, deleted, failed, and
    whether the bucket refused every one it was asked (down)."""
    done = {"put": 0, "deleted": 0, "failed": 0}
    sending = {}
    for row in rows:
        try:
            found = _object_of(row) if row.wanted else None
            if row.wanted and found is None:
                raise SourceMissing(f"{row.source}: not in this build's snapshot (yet)")
        except (SourceMissing, OSError) as error:
            _failed(row, error)
            done["failed"] += 1
            continue
        sending[threads.submit(_send, client, row, found)] = (row, found)
    refused = 0
    for future in as_completed(sending):
        row, found = sending[future]
        try:
            future.result()
        except (BotoCoreError, ClientError) as error:
            _failed(row, error)
            refused += 1
            continue
        _pushed(row, found[0] if found else "")
        done["put" if found else "deleted"] += 1
    done["failed"] += refused
    return done | {"down": bool(sending) and refused == len(sending)}


class SourceMissing(Exception):
    """An object's source is not there: an entry this build has not written yet (after a
    deploy, until its refresh), or a document page no longer public."""


def _send(client, row: MirroredObject, found: tuple[str, bytes, dict] | None) -> None:
    bucket = _s3()["bucket"]
    if found is None:
        client.delete_object(Bucket=bucket, Key=row.key)
    else:
        _, body, headers = found
        client.put_object(Bucket=bucket, Key=row.key, Body=body, **headers)


def _object_of(row: MirroredObject) -> tuple[str, bytes, dict] | None:
    """(validator, body, put_object's headers) of a row's source as it is now."""
    kind, _, rest = row.source.partition(" ")
    if kind == "entry":
        entry_kind, code, name = rest.split(" ") if rest.count(" ") == 2 else ("", "", "")
        entry = snapshots.entry_read(Key(entry_kind, code, name))
        if entry is None:
            return None
        body = entry.body
        if entry.base_url_token:
            base_url = _s3()["base_url"].encode()
            body = body.replace(entry.base_url_token.encode(), base_url)
        headers = {"ContentType": entry.content_type, "CacheControl": SHORT_CACHE}
        if "Content-Disposition" in entry.headers:
            headers["ContentDisposition"] = entry.headers["Content-Disposition"]
        return _entry_validator(entry), body, headers
    if kind == "document":
        page = public_page(pk=int(rest))
        if page is None or not row.key.endswith("." + EXTENSION[page.content_type]):
            return None
        with page.file.open("rb") as file:
            body = file.read()
        return row.wanted, body, {"ContentType": page.content_type, "CacheControl": LONG_CACHE}
    path = _static_root() / rest
    body = path.read_bytes()
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    cache = LONG_CACHE if rest in _hashed_static_names() else STATIC_CACHE
    return _digest(body), body, {"ContentType": content_type, "CacheControl": cache}


def _pushed(row: MirroredObject, validator: str, *, error: str = "") -> None:
    """What is in the bucket now; still pending if another wish came meanwhile."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE public_mirroredobject SET pushed = %(pushed)s, pending = wanted <> %(pushed)s,
                pushed_at = %(now)s, attempts = 0, next_attempt_at = NULL, last_error = %(error)s
            WHERE key = %(key)s
            """,
            {"pushed": validator, "now": timezone.now(), "error": error, "key": row.key},
        )
    if not row.wanted:
        MirroredObject.objects.filter(key=row.key, wanted="", pending=False).delete()


def _failed(row: MirroredObject, error: Exception) -> None:
    attempts = row.attempts + 1
    wait = min(timedelta(seconds=2**attempts), RETRY_CAP)
    MirroredObject.objects.filter(key=row.key).update(
        attempts=attempts, next_attempt_at=timezone.now() + wait, last_error=str(error)[:500]
    )
    logger.warning("public mirror: %s failed (attempt %d): %s", row.key, attempts, error)


_static_wanted_for: set[str] = set()


def _static_wanted_once() -> None:
    """The static files, once per build of the code in this process (a deploy brings new ones;
    old ones stay: pages still cached somewhere name them)."""
    if snapshots.build() not in _static_wanted_for:
        mirror_want_static()
        _static_wanted_for.add(snapshots.build())


@functools.cache
def _hashed_static_names() -> frozenset[str]:
    manifest = _static_root() / MANIFEST
    try:
        return frozenset(json.loads(manifest.read_bytes())["paths"].values())
    except (OSError, ValueError, KeyError):
        return frozenset()


def _client_settings() -> dict:
    s3 = _s3()
    return {name: s3[name] for name in ("endpoint_url", "region", "access_key", "secret_key")}


@functools.cache
def _client(*, endpoint_url: str | None, region: str | None, access_key: str, secret_key: str):
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region or "us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(
            connect_timeout=5,
            read_timeout=15,
            retries={"max_attempts": 2, "mode": "standard"},
            # An endpoint of its own (MinIO, a provider's) takes the bucket in the path.
            s3={"addressing_style": "path" if endpoint_url else "auto"},
        ),
    )


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]
