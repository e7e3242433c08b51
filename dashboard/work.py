"""Reads for the work queue (/ppk/): the uploads of an area that need a person, worst first.

An upload needs a person when it is flagged stuck, still missing well after the polls closed,
rejected by the publication server, failing for long, or long in the server queue without being
flagged. Each is in one category, the first that applies in that order, and the queue lists
categories in that order, the oldest trouble first within each.

The queue covers one area at most a kabupaten/kota wide (its uploads are a range of one index);
a user whose region is wider picks one first.
"""

import datetime
import hashlib
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Case, Count, F, IntegerField, Q, QuerySet, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from regions import codes
from regions.models import Area
from regions.selectors import area_children, contest_kinds_held
from uploads.models import Status, Upload

# The widest area one queue covers.
WIDEST = codes.KABUPATEN
# Rows shown at once; the counts on top stay exact.
ROWS_SHOWN = 100


class Category:
    STUCK = "stuck"
    MISSING = "missing"
    REJECTED = "rejected"
    FAILING = "failing"
    SERVER_QUEUE = "server_queue"

    # Worst first: the order of the queue and of the counts on top.
    ORDER = (STUCK, MISSING, REJECTED, FAILING, SERVER_QUEUE)
    LABELS = {
        STUCK: _("Stuck"),
        MISSING: _("Missing after the polls closed"),
        REJECTED: _("Rejected by the server"),
        FAILING: _("Failing to send for long"),
        SERVER_QUEUE: _("Long in the server queue"),
    }


@dataclass(frozen=True)
class Filters:
    category: str = ""
    area: str = ""  # a desa (or, for a kabupaten, a kecamatan) inside the queue's area
    kind: str = ""

    def query(self) -> str:
        """As a query string, for links that keep the filters."""
        pairs = [("kategori", self.category), ("wilayah", self.area), ("pemilihan", self.kind)]
        return "&".join(f"{name}={value}" for name, value in pairs if value)


@dataclass(frozen=True)
class WorkQueue:
    area: Area
    filters: Filters
    counts: list[tuple[str, str, int]]  # (category, label, uploads), worst first
    rows: list[Any]  # uploads, each with .category and .trouble_at annotated
    total: int  # uploads needing a person under the filters (all categories)
    areas: list[Area]  # what the area filter offers
    kinds: list[tuple[str, str]]  # (kind, name) of the contests held here

    @property
    def shown(self) -> int:
        return len(self.rows)

    @property
    def next(self) -> Upload | None:
        """The worst one: where "next" jumps."""
        return self.rows[0] if self.rows else None

    def etag(self, variant: str) -> str:
        """Changes when anything the page shows changes (ages are shown from the times), or the
        variant (the language)."""
        state = repr(
            (
                variant,
                self.counts,
                [
                    (
                        row.pk,
                        row.category,
                        row.status,
                        row.stuck_reason,
                        row.taken_by_id,
                        row.attempts,
                        row.last_error[:200],
                        row.status_since,
                    )
                    for row in self.rows
                ],
            )
        )
        return '"' + hashlib.sha256(state.encode()).hexdigest()[:32] + '"'


def queue_areas(region: str) -> list[Area]:
    """The areas a user whose region is wider than a queue picks from (a provinsi's kabupaten,
    or the nation's provinsi)."""
    return list(area_children(region or None))


def work_queue(*, area: Area, filters: Filters, now: datetime.datetime | None = None) -> WorkQueue:
    """The queue of one area (a kabupaten/kota or narrower) under the filters."""
    now = now or timezone.now()
    needing = _needing_person(_uploads_of(area.code, filters), now)
    by_category = dict(needing.values_list("category").annotate(uploads=Count("pk")))
    counts = [
        (category, str(Category.LABELS[category]), by_category.get(category, 0))
        for category in Category.ORDER
    ]
    listed = needing.filter(category=filters.category) if filters.category else needing
    rows = list(
        listed.select_related("tps__parent", "contest", "taken_by").order_by(
            "rank", "trouble_at", "tps_id", "contest_id"
        )[:ROWS_SHOWN]
    )
    return WorkQueue(
        area=area,
        filters=filters,
        counts=counts,
        rows=rows,
        total=sum(by_category.values()),
        areas=list(area_children(area.code)) if area.level < codes.DESA else [],
        kinds=contest_kinds_held(area.code),
    )


def _uploads_of(code: str, filters: Filters) -> QuerySet[Upload]:
    rows = Upload.objects.within(filters.area if filters.area.startswith(code) else code)
    return rows.filter(contest__kind=filters.kind) if filters.kind else rows


def _needing_person(rows: QuerySet[Upload], now: datetime.datetime) -> QuerySet[Any]:
    """The rows that need a person, each with its category, its rank and since when it is in
    trouble."""
    minutes = datetime.timedelta(minutes=1)
    conditions = {
        Category.STUCK: (Q(stuck=True), Coalesce("failing_since", "delivered_at", "stuck_since")),
        Category.MISSING: (
            Q(
                status=Status.MISSING,
                contest__closes_at__lt=now - settings.MISSING_GRACE_MINUTES * minutes,
            ),
            F("contest__closes_at"),
        ),
        Category.REJECTED: (Q(status=Status.REJECTED), F("status_since")),
        Category.FAILING: (
            Q(
                status__in=Status.ON_ITS_WAY,
                failing_since__lt=now - settings.FAILING_LONG_MINUTES * minutes,
            ),
            F("failing_since"),
        ),
        Category.SERVER_QUEUE: (
            Q(
                status=Status.DELIVERED,
                delivered_at__lt=now - settings.SERVER_QUEUE_LONG_MINUTES * minutes,
            ),
            F("delivered_at"),
        ),
    }
    category = Case(*(When(q, then=Value(name)) for name, (q, _) in conditions.items()))
    rank = Case(
        *(
            When(category=name, then=Value(position))
            for position, name in enumerate(Category.ORDER)
        ),
        output_field=IntegerField(),
    )
    trouble_at = Case(*(When(q, then=since) for q, since in conditions.values()))
    annotated = rows.annotate(category=category).exclude(category=None)
    return annotated.annotate(rank=rank, trouble_at=trouble_at)
