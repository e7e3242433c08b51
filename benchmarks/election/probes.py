"""What people see during the night, asked for over HTTP like anyone would, at a low rate.

LatencyProbe: real pages, as a national KPU staff member logged in through the login page (the
dashboard: national, a provinsi, a kabupaten, a kabupaten's 5-second poll) and as the public
(home, a provinsi and a kabupaten page, a kabupaten's JSON), one request at a time, timed from
the client: what a person waits, queueing in gunicorn included.

VisibilityProbe: the snapshot lag. Now and then it takes an upload our poller has just marked
published and asks, every second, until each shows it: its TPS's JSON (images listed), its
kabupaten's JSON and public page, and the dashboard's poll of the kabupaten (each kabupaten figure
at least as many published as there were in the kabupaten when it was published). The lag is
the time from the upload's published_at to the sending of the first request whose answer shows
it (the answer's own wait is the latency, measured by LatencyProbe).
"""

import random
import re
import threading
import time
from dataclasses import dataclass, field

import httpx

from benchmarks.progress import KINDS

PUBLISHED_OF = re.compile(r"([\d.,]+)\s+of\s+([\d.,]+)\s+TPS\s+published")
VIEWS = ("TPS JSON", "area JSON", "area page", "dashboard")
GIVE_UP_SECONDS = 180


def staff_client(url: str, username: str, password: str) -> httpx.Client:
    """A client logged in through the login page, as a person is."""
    client = httpx.Client(base_url=url, timeout=30)
    form = client.get("/en/masuk/").raise_for_status().text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
    if token is None:
        raise SystemExit("error: the login page has no CSRF token")
    answer = client.post(
        "/en/masuk/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": token[1]},
    )
    if answer.status_code != 302:
        raise SystemExit(f"error: the staff login answered {answer.status_code}, not a redirect")
    return client


def published_shown(text: str) -> int | None:
    """The published count of a page's summary ("1,234 of 5,678 TPS published")."""
    found = PUBLISHED_OF.search(" ".join(text.split()))
    return int(re.sub(r"\D", "", found[1])) if found else None


@dataclass
class Timing:
    at: float
    group: str  # "dashboard" or "public"
    case: str
    ms: float
    status: int | None


class LatencyProbe(threading.Thread):
    def __init__(self, url: str, staff: tuple[str, str], areas, interval: float) -> None:
        super().__init__(name="latency-probe", daemon=True)
        self.url, self.staff, self.interval = url, staff, interval
        self.provinsi, self.kabupaten = areas
        self.timings: list[Timing] = []
        self.stopping = threading.Event()
        self.rng = random.Random(5)

    def cases(self):
        kind = self.rng.choice(KINDS)
        provinsi, kabupaten = self.rng.choice(self.provinsi), self.rng.choice(self.kabupaten)
        poll = {"HX-Request": "true"}
        return [
            ("dashboard", "national page", f"/dashboard/{kind}/", {}),
            ("dashboard", "provinsi page", f"/dashboard/{kind}/{provinsi}/", {}),
            ("dashboard", "kabupaten page", f"/dashboard/{kind}/{kabupaten}/", {}),
            ("dashboard", "kabupaten poll", f"/dashboard/{kind}/{kabupaten}/", poll),
            ("public", "home", "/", {}),
            ("public", "provinsi page", f"/progress/{kind}/{provinsi}/", {}),
            ("public", "kabupaten page", f"/progress/{kind}/{kabupaten}/", {}),
            ("public", "kabupaten JSON", f"/api/hhcw/{kind}/{kabupaten[:2]}/{kabupaten}.json", {}),
        ]

    def run(self) -> None:
        staff = staff_client(self.url, *self.staff)
        public = httpx.Client(base_url=self.url, timeout=30)
        while not self.stopping.is_set():
            for group, case, path, headers in self.cases():
                client = staff if group == "dashboard" else public
                timing = Timing(time.time(), group, case, *_timed(client, path, headers))
                self.timings.append(timing)
                if self.stopping.wait(self.interval):
                    break


def _timed(client: httpx.Client, path: str, headers: dict) -> tuple[float, int | None]:
    started = time.perf_counter()
    try:
        status = client.get(path, headers=headers).status_code
    except httpx.HTTPError:
        status = None
    return (time.perf_counter() - started) * 1000, status


@dataclass
class Sample:
    tps: str
    kind: str
    published_at: float
    rank: int  # published uploads of the kind in its kabupaten by then, itself included
    seen: dict[str, float] = field(default_factory=dict)

    @property
    def kabupaten(self) -> str:
        return self.tps[:4]

    def paths(self) -> dict[str, str]:
        chain = "/".join(self.tps[:length] for length in (2, 4, 6, 10))
        return {
            "TPS JSON": f"/api/hhcw/{self.kind}/{chain}/{self.tps}.json",
            "area JSON": f"/api/hhcw/{self.kind}/{self.tps[:2]}/{self.kabupaten}.json",
            "area page": f"/en/progress/{self.kind}/{self.kabupaten}/",
            "dashboard": f"/en/dashboard/{self.kind}/{self.kabupaten}/",
        }

    def shows(self, view: str, response: httpx.Response) -> bool:
        if response.status_code != 200:
            return False
        if view == "TPS JSON":
            return bool(response.json().get("images"))
        if view == "area JSON":
            return response.json()["tracker"]["published"] >= self.rank
        return (published_shown(response.text) or 0) >= self.rank


class VisibilityProbe(threading.Thread):
    def __init__(self, url: str, staff: tuple[str, str], every: float, at_once: int) -> None:
        super().__init__(name="visibility-probe", daemon=True)
        self.url, self.staff, self.every, self.at_once = url, staff, every, at_once
        self.samples: list[Sample] = []
        self.stopping = threading.Event()
        self.rng = random.Random(6)
        self.last_event: int | None = None  # events are read by id: a range scan of the new
        # When the publications were last looked at (the start of a read that succeeded): the
        # night ends only after a look that began once everything had settled.
        self.looked_at = 0.0
        self.failure: str | None = None

    def run(self) -> None:
        try:
            self._watch()
        except BaseException as error:  # SystemExit too: a failed login ends the probe
            self.failure = repr(error)
            raise

    def _watch(self) -> None:
        from django.db import Error, connection

        staff = staff_client(self.url, *self.staff)
        public = httpx.Client(base_url=self.url, timeout=30)
        next_sample = time.monotonic()
        while not self.stopping.wait(1.0):
            pending = self.pending()
            try:
                if time.monotonic() >= next_sample and len(pending) < self.at_once:
                    next_sample = time.monotonic() + self.every
                    self._sample()
            except Error:  # PostgreSQL restarting (or just restarted): again on the next round
                connection.close()
            for sample in pending:
                for view, path in sample.paths().items():
                    if view not in sample.seen:
                        client = staff if view == "dashboard" else public
                        headers = {"HX-Request": "true"} if view == "dashboard" else {}
                        asked = time.time()
                        try:
                            if sample.shows(view, client.get(path, headers=headers)):
                                sample.seen[view] = asked
                        except (httpx.HTTPError, ValueError, KeyError):
                            continue
        connection.close()

    def pending(self) -> list[Sample]:
        """The samples not yet seen in every view, and not given up on."""
        return [
            sample
            for sample in self.samples
            if len(sample.seen) < len(VIEWS) and time.time() - sample.published_at < GIVE_UP_SECONDS
        ]

    def _sample(self) -> None:
        from uploads.models import Action, Status, Upload, UploadEvent

        looking = time.time()
        if self.last_event is None:
            newest_first = UploadEvent.objects.order_by("-pk").values_list("pk", flat=True)
            self.last_event = newest_first.first() or 0
        newest = list(
            UploadEvent.objects.filter(pk__gt=self.last_event, action=Action.PUBLISHED)
            .order_by("-pk")
            .values_list("pk", "upload__tps_id", "upload__contest__kind", "created_at")[:20]
        )
        if not newest:
            self.looked_at = looking
            return
        self.last_event = newest[0][0]
        _, tps, kind, published_at = self.rng.choice(newest)
        rank = Upload.objects.filter(
            contest__kind=kind,
            tps__gte=tps[:4] + "0" * 9,
            tps__lte=tps[:4] + "9" * 9,
            status=Status.PUBLISHED,
            published_at__lte=published_at,
        ).count()
        self.samples.append(Sample(tps, kind, published_at.timestamp(), rank))
        self.looked_at = looking
