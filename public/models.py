"""What the public snapshot's mirror on object storage holds (public/mirror.py)."""

from django.db import models
from django.db.models import Q


class MirroredObject(models.Model):
    """One object of the bucket, by its key (the public path it is read at): what should be
    there, what we last put there, and how the last attempts went. `wanted` and `pushed` are
    validators (an entry's ETag, a file's digest); "" wanted: delete it."""

    key = models.CharField(primary_key=True, max_length=512)
    # Where its bytes come from: "entry <kind> <code> <name>", "document <page id>" or
    # "static <path>".
    source = models.CharField(max_length=512)
    wanted = models.CharField(max_length=100, blank=True)
    pushed = models.CharField(max_length=100, blank=True)
    # wanted differs from pushed: the pusher's work (a partial index keeps it a small scan).
    pending = models.BooleanField(default=True)
    changed_at = models.DateTimeField()
    pushed_at = models.DateTimeField(null=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True)
    last_error = models.TextField(blank=True)

    class Meta:
        indexes = [
            # The entries mirrored of an area or a contest kind (public.mirror.mirrored_entries).
            models.Index(
                fields=["source"], name="mirror_source", opclasses=["varchar_pattern_ops"]
            ),
            models.Index(
                fields=["next_attempt_at", "changed_at"],
                name="mirror_pending",
                condition=Q(pending=True),
            ),
        ]

    def __str__(self) -> str:
        return self.key
