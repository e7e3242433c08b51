"""One expected upload per (TPS, contest), created when the contest opens so totals are exact."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Status(models.TextChoices):
    MISSING = "missing", _("missing")
    QUEUED = "queued", _("queued")
    SENDING = "sending", _("sending")
    RETRYING = "retrying", _("retrying")
    DELIVERED = "delivered", _("in the server queue")
    PUBLISHED = "published", _("published")
    REJECTED = "rejected", _("rejected")


class Upload(models.Model):
    tps = models.ForeignKey(
        "regions.Area", verbose_name=_("TPS"), on_delete=models.PROTECT, related_name="uploads"
    )
    contest = models.ForeignKey(
        "regions.Contest",
        verbose_name=_("contest"),
        on_delete=models.PROTECT,
        related_name="uploads",
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.MISSING
    )

    class Meta:
        verbose_name = _("upload")
        verbose_name_plural = _("uploads")
        constraints = [
            models.UniqueConstraint(
                fields=["contest", "tps"], name="one_upload_per_tps_and_contest"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contest_id}/{self.tps_id} {self.status}"
