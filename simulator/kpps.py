"""Simulated KPPS officers: the demo's TPS upload their result forms over a few minutes.

Each upload goes through the real API (`POST /api/uploads/` with a token), so a newcomer running
`make run` sees the whole story move: queued, in the server queue, published. A few TPS in
Kecamatan Babulu get a network that keeps failing (the stand-in is told to drop their deliveries
for a long time), so they end up stuck, as three did in Penajam Paser Utara in 2024.
"""

import hashlib
import logging
import random
import struct
import time
import zlib
from dataclasses import dataclass

import httpx
from django.contrib.auth import get_user_model

from accounts.models import ApiToken, Role
from accounts.services import api_token_create, operator_create
from regions import demo
from uploads.models import Status, Upload

logger = logging.getLogger(__name__)

# The simulator's KPPS accounts: this and the TPS code.
SIMULATOR_USER = "kpps-"
BABULU = demo.BABULU
# The grey levels of form_png's ink and paper.
DARK, LIGHT = 40, 235


@dataclass
class Plan:
    uploads: list[tuple[str, str]]  # (tps code, contest kind), in upload order
    unlucky: list[str]  # TPS whose deliveries keep failing


def plan_make(*, seed: int, unlucky: int, limit: int | None = None) -> Plan:
    """The uploads still missing here, shuffled, and the unlucky Babulu TPS among them: one in
    each desa of the story first (demo.STUCK_DESA), then any other Babulu TPS. The unlucky TPS
    upload first, so that their failures have the whole run to build up to stuck."""
    rng = random.Random(seed)
    missing = list(
        Upload.objects.filter(status=Status.MISSING)
        .order_by("tps_id", "contest__kind")
        .values_list("tps_id", "contest__kind")
    )
    rng.shuffle(missing)
    chosen = _unlucky_choose(rng, {tps for tps, _ in missing}, unlucky)
    first = [upload for upload in missing if upload[0] in chosen]
    rest = [upload for upload in missing if upload[0] not in chosen]
    uploads = (first + rest)[:limit]
    sent = {tps for tps, _ in uploads}
    return Plan(uploads, [tps for tps in chosen if tps in sent])


def _unlucky_choose(rng: random.Random, missing: set[str], count: int) -> list[str]:
    """count Babulu TPS among the missing: one of each story desa first, then others."""
    babulu = sorted(tps for tps in missing if tps.startswith(BABULU))
    story = [
        rng.choice(in_desa)
        for desa in demo.STUCK_DESA
        if (in_desa := [tps for tps in babulu if tps.startswith(desa)])
    ]
    others = [tps for tps in babulu if tps not in story]
    return (story + rng.sample(others, len(others)))[:count]


def kpps_tokens(tps_codes: set[str]) -> dict[str, str]:
    """A fresh token for each TPS's own KPPS account (kpps-<code>, made on first use), as in the
    field: each TPS's officers upload for their TPS only, and the uploads are theirs (source
    KPPS) in every history."""
    users = get_user_model().objects
    have = set(
        users.filter(username__in=[SIMULATOR_USER + code for code in tps_codes]).values_list(
            "username", flat=True
        )
    )
    tokens = {}
    for code in sorted(tps_codes):
        username = SIMULATOR_USER + code
        if username not in have:
            operator_create(username=username, role=Role.KPPS, region_code=code)
        ApiToken.objects.filter(user__username=username, revoked_at__isnull=True).delete()
        tokens[code] = api_token_create(username=username)
    return tokens


def bad_network_script(publication_url: str, plan: Plan, kinds: set[str], drops: int) -> None:
    """Tells the stand-in to drop the next deliveries of the unlucky TPS's own photos without an
    answer. Only those photos: another one, uploaded on the TPS's behalf by its PPK operator,
    goes through, as the PPK account did for the last three of Penajam Paser Utara in 2024."""
    with httpx.Client(base_url=publication_url, timeout=10) as client:
        for tps in plan.unlucky:
            for kind in kinds:
                script = {
                    "path": f"/documents/{kind}/{tps}",
                    "sha256": hashlib.sha256(form_png(f"{kind}/{tps}")).hexdigest(),
                    "responses": [{"status": "drop"}] * drops,
                }
                client.post("/_control/script", json=script)


def upload_send(client: httpx.Client, tps: str, kind: str, tries: int = 3) -> int:
    """Posts one TPS's form; told to slow down (429), waits as Retry-After says and tries again,
    as a well-behaved KPPS app does."""
    page = form_png(f"{kind}/{tps}")
    for _ in range(tries):
        response = client.post(
            "/api/uploads/",
            data={"tps": tps, "contest": kind},
            files={"file": (f"{tps}-c-hasil.png", page, "image/png")},
        )
        if response.status_code != 429:
            break
        time.sleep(float(response.headers.get("Retry-After", "1")))
    if response.status_code not in (200, 201):
        logger.warning("%s %s: HTTP %s %s", kind, tps, response.status_code, response.text[:200])
    return response.status_code


def uploads_run(*, url: str, tokens: dict[str, str], plan: Plan, minutes: float, seed: int) -> int:
    """Sends the planned uploads spread over `minutes`, each with its TPS's token; returns how
    many were taken."""
    rng = random.Random(seed)
    pause = minutes * 60 / max(len(plan.uploads), 1)
    taken = 0
    with httpx.Client(base_url=url, timeout=30) as client:
        for tps, kind in plan.uploads:
            client.headers["Authorization"] = f"Token {tokens[tps]}"
            taken += upload_send(client, tps, kind) in (200, 201)
            time.sleep(rng.uniform(0.2, 1.8) * pause)
    return taken


def form_png(label: str, width: int = 240, height: int = 160) -> bytes:
    """A small grey PNG with a pattern drawn from the label: a stand-in photo of the form whose
    bytes (and so SHA-256) differ for every TPS and contest."""
    rng = random.Random(label)
    bars = [rng.randrange(2) for _ in range(width // 6)]
    # Three kinds of row, each built once (the replay benchmark draws 200 forms a second):
    # ruled lines, the bars near the bottom, and blank paper. Each row starts with its filter.
    ruled = b"\x00" + bytes([DARK]) * width
    barred = b"\x00" + bytes(DARK if bars[x // 6] else LIGHT for x in range(width))
    blank = b"\x00" + bytes([LIGHT]) * width
    rows = (ruled if y % 16 == 0 else barred if y > height - 30 else blank for y in range(height))
    return _png(width, height, b"".join(rows))


def _png(width: int, height: int, raw: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )
