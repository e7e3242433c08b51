"""How many TPS of a contest an area has, in each upload status, and how many are stuck.

Exact at any instant, yet no transaction in the country waits on a national or provinsi row
(docs/design.md, "Progress"):

- A status or stuck change appends a ProgressChange (its desa, -1 on the old status, +1 on the new)
  in the transaction that changes the upload: an insert, so no row is shared between writers.
- One folder (`progress_fold`, every 2 s from beat) moves the pending changes into AreaProgress
  rows at every level, from desa up to the nation, in one transaction. It is the only writer of
  the upper rows.
- A read adds the changes still pending to the folded rows in one statement (one snapshot), so it
  is exact whether or not the folder has run.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

from regions.models import CODE_LENGTH, Contest, Level
from uploads.models import Status

# What a change moves (one column per status, then the stuck flag), and what a count row holds.
COUNTED = (*Status.values, "stuck")
COLUMNS = ("total", *COUNTED)

# Snapshots are taken of the nation, provinsi, kabupaten and kecamatan, not of desa. Nationally
# that is 7,830 areas per contest (39,150 for the 5 Pemilu contests) to compare every minute.
# Desa would add 83,763 per contest (418,815), over ten times the work each minute, and up to
# about 40 rows each (a desa has about ten TPS, each changing status a few times): some 17 million
# rows, for a chart of ten TPS that the desa page shows better as its TPS with status and age.
SNAPSHOT_MAX_CODE_LENGTH = CODE_LENGTH[Level.KECAMATAN]
# What a snapshot keeps of the counts: what the timeline draws and describes.
SNAPSHOT_COLUMNS = ("total", "published", "delivered", "stuck")


class AreaProgress(models.Model):
    """The folded counts of one area (desa, kecamatan, kabupaten, provinsi or the nation)."""

    pk = models.CompositePrimaryKey("contest", "area_code")
    # Indexed as the first column of the primary key.
    contest = models.ForeignKey(
        Contest,
        verbose_name=_("contest"),
        on_delete=models.CASCADE,
        db_index=False,
        related_name="+",
    )
    # The area's KPU code; "" is the nation. Not a foreign key: the nation is no Area.
    area_code = models.CharField(_("area"), max_length=13, db_collation="C", blank=True)
    # One level up: a page reads an area's children by it. A provinsi's parent is the nation, "";
    # the nation has none, NULL, so that it is no child of its own.
    parent_code = models.CharField(  # noqa: DJ001
        max_length=13, db_collation="C", null=True, blank=True
    )
    # Plain integers, no CHECK >= 0: a count gone wrong must never stop the folder; the recount
    # reports and repairs it.
    total = models.IntegerField(_("TPS"), db_default=0)
    missing = models.IntegerField(Status.MISSING.label, db_default=0)
    queued = models.IntegerField(Status.QUEUED.label, db_default=0)
    sending = models.IntegerField(Status.SENDING.label, db_default=0)
    retrying = models.IntegerField(Status.RETRYING.label, db_default=0)
    delivered = models.IntegerField(Status.DELIVERED.label, db_default=0)
    published = models.IntegerField(Status.PUBLISHED.label, db_default=0)
    rejected = models.IntegerField(Status.REJECTED.label, db_default=0)
    stuck = models.IntegerField(_("stuck"), db_default=0)

    class Meta:
        verbose_name = _("area progress")
        verbose_name_plural = _("area progress")
        indexes = [models.Index(fields=["contest", "parent_code"], name="progress_children")]

    def __str__(self) -> str:
        return f"{self.contest_id} {self.area_code or 'national'} {self.published}/{self.total}"


class ProgressChange(models.Model):
    """A change to one desa's counts, waiting for the folder. Each column is -1, 0 or +1."""

    # No foreign-key constraint: checking it would take a share lock on the contest row in every
    # transaction of the country, a hot row by another name.
    contest = models.ForeignKey(
        Contest, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    desa = models.CharField(max_length=10, db_collation="C")
    missing = models.SmallIntegerField(db_default=0)
    queued = models.SmallIntegerField(db_default=0)
    sending = models.SmallIntegerField(db_default=0)
    retrying = models.SmallIntegerField(db_default=0)
    delivered = models.SmallIntegerField(db_default=0)
    published = models.SmallIntegerField(db_default=0)
    rejected = models.SmallIntegerField(db_default=0)
    stuck = models.SmallIntegerField(db_default=0)

    class Meta:
        # A read adds the pending changes under one area: an index range scan by code prefix.
        indexes = [models.Index(fields=["contest", "desa"], name="progress_pending")]

    def __str__(self) -> str:
        return f"{self.contest_id} {self.desa}"


class ProgressSnapshot(models.Model):
    """An area's counts from this moment until its next snapshot: the series is a step function.

    Written by `progress_snapshot_take` (every minute) only when the counts changed, and thinned
    as it ages by `progress_snapshots_compact`. The nation, provinsi, kabupaten and kecamatan
    only (SNAPSHOT_MAX_CODE_LENGTH).
    """

    # The series of one area is read by the key: contest, area, then time.
    pk = models.CompositePrimaryKey("contest", "area_code", "taken_at")
    contest = models.ForeignKey(
        Contest,
        verbose_name=_("contest"),
        on_delete=models.CASCADE,
        db_index=False,
        related_name="+",
    )
    # The area's KPU code; "" is the nation.
    area_code = models.CharField(_("area"), max_length=13, db_collation="C", blank=True)
    taken_at = models.DateTimeField(_("taken at"))
    total = models.IntegerField(_("TPS"))
    published = models.IntegerField(Status.PUBLISHED.label)
    delivered = models.IntegerField(Status.DELIVERED.label)
    stuck = models.IntegerField(_("stuck"))

    class Meta:
        verbose_name = _("progress snapshot")
        verbose_name_plural = _("progress snapshots")

    def __str__(self) -> str:
        area = self.area_code or "national"
        return f"{self.contest_id} {area} {self.taken_at:%Y-%m-%d %H:%M} {self.published}"
