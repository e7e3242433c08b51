"""One delivery attempt over HTTP to the publication server, and what its answer means.

A worker holds a Lease on the upload while it sends; the server's answer is an Outcome:
accepted, transient (try again: timeouts, connection errors, 5xx, 429 with its Retry-After) or
permanent (a person must act: any other 4xx). The Idempotency-Key lets the server keep one write
however many times the same document is sent, e.g. after a response lost on the way back. The
services write what an Outcome means (uploads.services.delivery).
"""

import datetime
import email.utils
import os
import time
import uuid
from dataclasses import dataclass

import httpx
from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from uploads import documents


@dataclass(frozen=True)
class PageFile:
    """A page as a delivery sends it: its stored file and its type."""

    name: str
    content_type: str


@dataclass
class Lease:
    """One worker's right to send one upload's current document once (Upload.lease_token)."""

    upload_id: int
    token: uuid.UUID
    kind: str
    tps_code: str
    sha256: str
    pages: list[PageFile]
    attempt: int
    # The first failed attempt of this document, if any (Upload.failing_since).
    failing_since: datetime.datetime | None = None

    @property
    def idempotency_key(self) -> str:
        return f"{self.upload_id}:{self.sha256}"


class OutcomeKind(models.TextChoices):
    ACCEPTED = "accepted", _("accepted")
    TRANSIENT = "transient", _("failed, to be tried again")
    PERMANENT = "permanent", _("refused for good")


@dataclass
class Outcome:
    """What the publication server said."""

    kind: OutcomeKind
    reason: str = ""
    # The server's Retry-After, in seconds, when it gave one.
    retry_after: float | None = None
    # A network failure (no answer) rather than the server refusing: names the stuck reason.
    network: bool = False


ACCEPTED = (200, 201, 202)
NOT_CONFIGURED = "PUBLICATION_URL is not set: nowhere to deliver to"

# What a failed attempt's reason (as `deliver` writes it, kept in the event and in last_error)
# means to a person, by how the reason starts; the first that matches.
FAILURES = (
    ("timeout:", _("no answer in time (network)")),
    ("connection:", _("no connection (network)")),
    ("HTTP 429", _("the publication server is busy")),
    ("HTTP 5", _("the publication server had an error")),
    ("HTTP 4", _("refused by the publication server")),
    (NOT_CONFIGURED, _("no publication server is configured")),
)


def deliver(lease: Lease) -> Outcome:
    if not settings.PUBLICATION_URL:
        return Outcome(OutcomeKind.TRANSIENT, NOT_CONFIGURED)
    url = f"{settings.PUBLICATION_URL}/documents/{lease.kind}/{lease.tps_code}"
    files = [
        (
            "file",
            (
                page.name.rsplit("/", 1)[-1],
                documents.page_read(page.name),
                page.content_type,
            ),
        )
        for page in lease.pages
    ]
    try:
        response = _client().put(
            url, files=files, headers={"Idempotency-Key": lease.idempotency_key}
        )
    except httpx.TimeoutException as error:
        reason = f"timeout: {error or type(error).__name__}"
        return Outcome(OutcomeKind.TRANSIENT, reason, network=True)
    except httpx.TransportError as error:
        reason = f"connection: {error or type(error).__name__}"
        return Outcome(OutcomeKind.TRANSIENT, reason, network=True)
    return classify(response)


_clients: dict[int, httpx.Client] = {}


def _client() -> httpx.Client:
    """One client per process, kept: it reuses connections, and building one costs ~20 ms (its
    TLS context). Keyed by process id, since Celery forks workers after import."""
    pid = os.getpid()
    if pid not in _clients:
        _clients.clear()
        _clients[pid] = httpx.Client(timeout=settings.DELIVERY_TIMEOUT_SECONDS)
    return _clients[pid]


def classify(response: httpx.Response) -> Outcome:
    status = response.status_code
    reason = f"HTTP {status}: {_server_reason(response)}"
    if status in ACCEPTED:
        return Outcome(OutcomeKind.ACCEPTED)
    if status == 429:
        return Outcome(OutcomeKind.TRANSIENT, reason, retry_after=retry_after_seconds(response))
    if status >= 500:
        return Outcome(OutcomeKind.TRANSIENT, reason, retry_after=retry_after_seconds(response))
    kind = OutcomeKind.PERMANENT if 400 <= status < 500 else OutcomeKind.TRANSIENT
    return Outcome(kind, reason)


def _server_reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    if isinstance(body, dict) and body.get("error"):
        return str(body["error"])[:500]
    return response.text[:500]


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Retry-After as seconds, from either of its forms (a number or an HTTP date)."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def failure_label(reason: str) -> str:
    """What a failed delivery's reason means, in the reader's language; "" when it is not one."""
    return next((str(label) for start, label in FAILURES if reason.startswith(start)), "")
