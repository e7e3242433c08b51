"""One upload per (TPS, contest), its documents and its history; the documents on their way in
over tus (resumable, page by page).

The upload is created when the contest opens (status `missing`), so totals are exact from the
start. Its status only changes through `uploads.services.transitions.upload_transition` (or
`upload_transition_many`, the same for many at once), which writes an UploadEvent in the same
statement.
"""

import enum
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now
from django.utils.translation import gettext_lazy as _

from accounts.models import Role
from accounts.scope import ScopedQuerySet


class Status(models.TextChoices):
    """Where an upload is. The groups below are named sets of statuses (not members)."""

    MISSING = "missing", _("missing")
    QUEUED = "queued", _("queued")
    SENDING = "sending", _("sending")
    RETRYING = "retrying", _("retrying")
    DELIVERED = "delivered", _("in the server queue")
    PUBLISHED = "published", _("published")
    REJECTED = "rejected", _("rejected")

    # Waiting for a worker to send it: what the sweeper looks at for due rows.
    WAITING_TO_SEND = enum.nonmember(("queued", "retrying"))
    # Received here and on its way to the publication server: one phase, however often it
    # flips between sending and retrying.
    ON_ITS_WAY = enum.nonmember(("queued", "sending", "retrying"))
    # Everything but published: what may still be published, replaced, or flagged stuck.
    UNPUBLISHED = enum.nonmember(
        ("missing", "queued", "sending", "retrying", "delivered", "rejected")
    )


class StuckReason(models.TextChoices):
    NETWORK = "network", _("network")
    SERVER_QUEUE = "server_queue", _("server queue")
    DEVICE = "device", _("device")
    BLURRY = "blurry", _("blurry photo")
    OTHER = "other", _("other")


class Action(models.TextChoices):
    """What an event records. The values are stored; the labels are what people read."""

    RECEIVED = "received", _("document received")
    REPLACED = "replaced", _("document replaced")
    CLAIMED = "claimed", _("sending")
    DELIVERED = "delivered", _("accepted into the server queue")
    RETRY = "retry", _("sending failed, will retry")
    REJECTED = "rejected", _("rejected by the publication server")
    LEASE_EXPIRED = "lease expired", _("sender stopped, handed to another")
    STUCK = "stuck", _("flagged stuck")
    STUCK_CLEARED = "stuck cleared", _("stuck flag cleared")
    PUBLISHED = "published", _("published on the public site")
    # A person's actions on the work queue (uploads.services.actions).
    TAKEN = "taken", _("taken in hand")
    REQUEUED = "requeued", _("sent again after a rejection")
    NOTE = "note", _("note")


class Source(models.TextChoices):
    KPPS = "kpps", _("KPPS")
    PPK = "ppk", _("PPK")
    PUBLIC_SITE = "public_site", _("public site")
    SYSTEM = "system", _("system")


class UploadQuerySet(ScopedQuerySet):
    scope_field = "tps__code"


class Upload(models.Model):
    # Defaults live in the database too (db_default): contest_open inserts rows in bulk with SQL.
    tps = models.ForeignKey(
        "regions.Area", verbose_name=_("TPS"), on_delete=models.PROTECT, related_name="uploads"
    )
    # No index of its own: one_upload_per_tps_and_contest leads with it. Every status change
    # writes a new entry into each index of this table (a status in a partial index's condition
    # rules out PostgreSQL's in-place HOT updates), so an index too many costs every upload.
    contest = models.ForeignKey(
        "regions.Contest",
        verbose_name=_("contest"),
        on_delete=models.PROTECT,
        related_name="uploads",
        db_index=False,
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, db_default=Status.MISSING
    )
    status_since = models.DateTimeField(_("status since"), db_default=Now())
    source = models.CharField(
        _("source"), max_length=12, choices=Source.choices, blank=True, db_default=""
    )
    document = models.ForeignKey(
        "Document",
        verbose_name=_("current document"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )

    stuck = models.BooleanField(_("stuck"), db_default=False)
    stuck_reason = models.CharField(
        _("stuck reason"), max_length=12, choices=StuckReason.choices, blank=True, db_default=""
    )
    stuck_since = models.DateTimeField(_("stuck since"), null=True, blank=True)
    # What a person wrote when flagging it (the reason "other" needs one).
    stuck_note = models.TextField(_("stuck note"), blank=True, db_default="")
    # When a person last cleared the flag: the system's checks wait before flagging it again.
    stuck_cleared_at = models.DateTimeField(_("stuck cleared at"), null=True, blank=True)
    # Who said "I'm on it", so that the others at the kecamatan office do not chase it too.
    taken_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("taken by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,  # upload_taken_by: only the few taken
    )
    taken_at = models.DateTimeField(_("taken at"), null=True, blank=True)

    # Delivery bookkeeping. Retry waits live here, not in broker ETAs.
    attempts = models.PositiveIntegerField(_("attempts"), db_default=0)
    queued_at = models.DateTimeField(_("queued at"), null=True, blank=True)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    # When a delivery task was last sent for this row; the sweeper sends one again only
    # when that message had time to be taken and was not.
    dispatched_at = models.DateTimeField(null=True, blank=True)
    lease_token = models.UUIDField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True, db_default="")
    # The first failed attempt to deliver the current document; cleared once it is delivered or
    # replaced. How long an upload has really been failing, whatever the retries in between.
    failing_since = models.DateTimeField(_("failing since"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    published_at = models.DateTimeField(_("published at"), null=True, blank=True)
    # Image URLs of the pages as the public site lists them.
    public_images = models.JSONField(_("public images"), null=True, blank=True)

    objects = UploadQuerySet.as_manager()

    class Meta:
        verbose_name = _("upload")
        verbose_name_plural = _("uploads")
        constraints = [
            models.UniqueConstraint(
                fields=["contest", "tps"], name="one_upload_per_tps_and_contest"
            ),
        ]
        indexes = [
            # The sweeper's two questions are index scans over the few rows in flight.
            models.Index(
                fields=["next_attempt_at"],
                name="upload_due",
                condition=Q(status__in=Status.WAITING_TO_SEND),
            ),
            models.Index(
                fields=["lease_expires_at"],
                name="upload_lease",
                condition=Q(status=Status.SENDING),
            ),
            models.Index(
                fields=["status_since"],
                name="upload_delivered",
                condition=Q(status=Status.DELIVERED, stuck=False),
            ),
            # Who has which taken (a user's deletion checks it): the few taken, not every row.
            models.Index(
                fields=["taken_by"], name="upload_taken_by", condition=Q(taken_by__isnull=False)
            ),
            # The stuck list of any area, down from the nation: per contest of the page, a range
            # of the few stuck by TPS code (contest first: a national page's 38 contests are 38
            # short ranges, where the TPS code alone made it read every stuck row of the country).
            models.Index(fields=["contest", "tps"], name="upload_stuck", condition=Q(stuck=True)),
            # The oldest document waiting to be sent, for the system page and /metrics.
            models.Index(
                fields=["status", "queued_at"],
                name="upload_waiting",
                condition=Q(status__in=Status.WAITING_TO_SEND),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contest_id}/{self.tps_id} {self.status}"

    @property
    def phase_since(self):
        """Since when the upload is where it is, as a person reads it: on its way since it was
        received (or since its first failed attempt), not since its latest retry."""
        if self.status in Status.ON_ITS_WAY:
            return self.failing_since or self.queued_at or self.status_since
        return self.status_since

    @property
    def trouble_since(self):
        """Since when a stuck upload has really been in trouble: its first failed attempt, or
        its arrival in the server queue; else when it was flagged."""
        if self.failing_since:
            return self.failing_since
        if self.status == Status.DELIVERED:
            return self.delivered_at or self.status_since
        return self.stuck_since or self.status_since


class DocumentQuerySet(ScopedQuerySet):
    scope_field = "upload__tps__code"


class Document(models.Model):
    """One version of an upload's result form: one or more pages. Never overwritten."""

    upload = models.ForeignKey(Upload, on_delete=models.PROTECT, related_name="documents")
    # SHA-256 of the pages' bytes in order (for one page, the file's own SHA-256).
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    source = models.CharField(_("source"), max_length=12, choices=Source.choices)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("uploaded by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    idempotency_key = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(_("uploaded at"), auto_now_add=True)
    # Why a person replaced a published document (required then; see services.intake).
    reason = models.TextField(_("reason"), blank=True, db_default="")

    objects = DocumentQuerySet.as_manager()

    class Meta:
        verbose_name = _("document")
        verbose_name_plural = _("documents")
        ordering = ["upload", "created_at"]
        # By content alone: a document's versions, and the same pages sent for another TPS.
        indexes = [models.Index(fields=["sha256"], name="document_sha256")]

    def __str__(self) -> str:
        return f"{self.upload_id} {self.sha256[:12]}"


class PageQuerySet(ScopedQuerySet):
    scope_field = "document__upload__tps__code"


class Page(models.Model):
    document = models.ForeignKey(Document, on_delete=models.PROTECT, related_name="pages")
    number = models.PositiveSmallIntegerField(_("page"))
    file = models.FileField(_("file"), max_length=300)
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    size = models.PositiveIntegerField(_("size"))
    content_type = models.CharField(_("type"), max_length=40)
    # SHA-256 of the photo before the sender's browser shrank it ("" unknown): what the phone
    # kept, so that staff can match a page with the original on the phone.
    original_sha256 = models.CharField(
        _("original SHA-256"), max_length=64, blank=True, db_default=""
    )
    # What the original photo's EXIF said, as the phone page read it ("" unknown): when the
    # camera's clock says it was taken (ISO 8601, with the zone when the camera gave one; a
    # camera's clock may be wrong) and where ("latitude,longitude" in decimal degrees).
    original_taken_at = models.CharField(
        _("photo taken at (camera clock)"), max_length=25, blank=True, db_default=""
    )
    original_location = models.CharField(
        _("photo location"), max_length=40, blank=True, db_default=""
    )

    objects = PageQuerySet.as_manager()

    class Meta:
        verbose_name = _("page")
        verbose_name_plural = _("pages")
        ordering = ["document", "number"]
        constraints = [
            models.UniqueConstraint(fields=["document", "number"], name="one_page_per_number"),
        ]

    def __str__(self) -> str:
        return f"{self.document_id} p{self.number}"


class UploadEventQuerySet(ScopedQuerySet):
    scope_field = "upload__tps__code"


class UploadEvent(models.Model):
    """Append-only history: every transition and every human action (a trigger forbids edits):
    what, before and after, who in which role from which address, why, when."""

    # Indexed with the id below: an upload's history, and its last event, are one index range.
    upload = models.ForeignKey(
        Upload, on_delete=models.PROTECT, related_name="events", db_index=False
    )
    action = models.CharField(_("action"), max_length=20, choices=Action.choices)
    old_status = models.CharField(_("from"), max_length=10, choices=Status.choices, blank=True)
    new_status = models.CharField(_("to"), max_length=10, choices=Status.choices, blank=True)
    # The stuck flag's reason after the event ("" when not stuck): what a "stuck" event flagged.
    stuck_reason = models.CharField(
        _("stuck reason"), max_length=12, choices=StuckReason.choices, blank=True, db_default=""
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("actor"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    actor_role = models.CharField(
        _("role"), max_length=5, choices=Role.choices, blank=True, db_default=""
    )
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    source = models.CharField(_("source"), max_length=12, choices=Source.choices)
    reason = models.TextField(_("reason"), blank=True)
    created_at = models.DateTimeField(_("time"), auto_now_add=True)

    objects = UploadEventQuerySet.as_manager()

    class Meta:
        verbose_name = _("upload event")
        verbose_name_plural = _("upload events")
        ordering = ["upload", "id"]
        indexes = [
            models.Index(fields=["upload", "id"], name="upload_history"),
            # The audit, newest first, and its "older" pages: a range, not a sort of the night.
            models.Index(fields=["created_at", "id"], name="upload_event_time"),
        ]

    def __str__(self) -> str:
        return f"{self.upload_id} {self.action} {self.old_status}->{self.new_status}"


class PublicAreaProgress(models.Model):
    """What the public site last said about an area, kept beside our own counts.

    Also the poller's memory: the ETag and Last-Modified of the area's file for conditional GETs,
    and the children's published counts as last seen, to descend only where something changed.
    """

    kind = models.CharField(_("contest"), max_length=6)
    # The area's code; "" is the national file of the contest.
    area_code = models.CharField(_("area"), max_length=13, db_collation="C", blank=True)
    total = models.PositiveIntegerField(_("total"), null=True)
    published = models.PositiveIntegerField(_("published"), null=True)
    site_ts = models.CharField(_("time on the site"), max_length=40, blank=True)
    children = models.JSONField(default=dict, blank=True)
    etag = models.CharField(max_length=200, blank=True)
    last_modified = models.CharField(max_length=100, blank=True)
    fetched_at = models.DateTimeField(_("fetched at"), auto_now=True)

    class Meta:
        verbose_name = _("public site figure")
        verbose_name_plural = _("public site figures")
        constraints = [
            models.UniqueConstraint(fields=["kind", "area_code"], name="one_public_figure"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.area_code or 'national'} {self.published}/{self.total}"


class TusDocumentQuerySet(ScopedQuerySet):
    scope_field = "upload__tps__code"


class TusDocument(models.Model):
    """A document a client sends over tus, one tus upload per page (uploads.services.tus).

    `key` is the client's id for the whole document (Upload-Metadata `document`), and serves as
    the intake's Idempotency-Key when the pages are all in and the document is taken in as
    POST /api/uploads/ takes one. The outcome of the last time it was taken in is kept here:
    the Document, or the refusal in the words the client was answered with.
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("sent by"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    key = models.CharField(_("document id"), max_length=200)
    upload = models.ForeignKey(
        Upload, verbose_name=_("upload"), on_delete=models.PROTECT, related_name="tus_documents"
    )
    pages = models.PositiveSmallIntegerField(_("pages"))
    # The intake's Intent: the SHA-256 of the document the sender saw as current, "" none, None
    # not said (three answers, hence NULL), and why a published document is replaced.
    based_on = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    reason = models.TextField(_("reason"), blank=True, db_default="")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    # Every page of the document expires together; each PATCH of any page moves this on.
    expires_at = models.DateTimeField(_("expires at"))
    document = models.ForeignKey(
        Document,
        verbose_name=_("document"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    taken_at = models.DateTimeField(_("taken in at"), null=True, blank=True)
    refusal_status = models.PositiveSmallIntegerField(_("refusal status"), null=True, blank=True)
    refusal_error = models.TextField(_("refusal"), blank=True, db_default="")
    refusal_pesan = models.TextField(blank=True, db_default="")
    refused_at = models.DateTimeField(_("refused at"), null=True, blank=True)
    # When the expiry sweep removed its pages' bytes (uploads.services.tus); None while alive.
    expired_at = models.DateTimeField(_("expired at"), null=True, blank=True)

    objects = TusDocumentQuerySet.as_manager()

    class Meta:
        verbose_name = _("tus document")
        verbose_name_plural = _("tus documents")
        constraints = [
            models.UniqueConstraint(fields=["owner", "key"], name="one_tus_document_per_key"),
        ]
        indexes = [
            # The expiry sweep's two questions are range scans over the rows they concern.
            models.Index(
                fields=["expires_at"],
                name="tus_document_expiry",
                condition=Q(expired_at__isnull=True),
            ),
            models.Index(
                fields=["expired_at"],
                name="tus_document_expired",
                condition=Q(expired_at__isnull=False),
            ),
            # An upload's last refusal: one index lookup.
            models.Index(
                fields=["upload", "refused_at"],
                name="tus_document_refusal",
                condition=Q(refused_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.upload_id} {self.key}"

    @property
    def is_refused(self) -> bool:
        """Whether the last time it was taken in, it was refused."""
        if self.refused_at is None:
            return False
        return self.taken_at is None or self.taken_at < self.refused_at


class TusState(models.TextChoices):
    OPEN = "open", _("receiving")
    COMPLETE = "complete", _("complete")
    TAKEN = "taken", _("taken in")
    REFUSED = "refused", _("refused")
    TERMINATED = "terminated", _("terminated")
    EXPIRED = "expired", _("expired")

    # Whose bytes are in a part file of their own (the others are stored with their document,
    # or gone).
    WITH_PART = enum.nonmember(("open", "complete", "refused"))
    # All their bytes arrived: a page the document may be taken in with.
    ARRIVED = enum.nonmember(("complete", "taken", "refused"))
    # Gone: answered 410 until the row is purged.
    ENDED = enum.nonmember(("terminated", "expired"))


class TusUpload(models.Model):
    """One page of a TusDocument on its way in: the tus resource at /api/uploads/tus/<id>.

    The id is random (uuid4: 122 random bits), so an upload's URL cannot be guessed. The bytes
    are in a part file (uploads.tus_parts) until the document is taken in; `offset` only moves
    on once they are written and fsynced.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tus_document = models.ForeignKey(
        TusDocument, verbose_name=_("document"), on_delete=models.CASCADE, related_name="parts"
    )
    page = models.PositiveSmallIntegerField(_("page"))
    filename = models.CharField(_("file name"), max_length=255)
    original_sha256 = models.CharField(_("original SHA-256"), max_length=64, blank=True)
    # As Page's: the original photo's EXIF time and place (Upload-Metadata taken_at, location).
    original_taken_at = models.CharField(max_length=25, blank=True, default="")
    original_location = models.CharField(max_length=40, blank=True, default="")
    # Upload-Metadata as the client sent it: HEAD answers it back.
    metadata = models.TextField()
    length = models.PositiveIntegerField(_("length"))
    offset = models.PositiveIntegerField(_("offset"), default=0)
    # Every byte read from a PATCH body, kept or discarded (a checksum mismatch): more than
    # `length` means bytes were sent twice.
    received = models.PositiveBigIntegerField(_("bytes received"), default=0)
    state = models.CharField(
        _("state"), max_length=10, choices=TusState.choices, default=TusState.OPEN
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)

    class Meta:
        verbose_name = _("tus upload")
        verbose_name_plural = _("tus uploads")
        ordering = ["tus_document", "page", "created_at"]

    def __str__(self) -> str:
        return f"{self.tus_document_id} p{self.page} {self.offset}/{self.length}"
