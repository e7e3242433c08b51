"""The stuck flag: beside the status, never a status, always with a reason; cleared when the
upload is published (uploads.services.publication)."""

import datetime

from django.db.models import Q
from django.utils import timezone

from uploads.models import Action, Source, Status
from uploads.services.transitions import upload_transition


def upload_mark_stuck(
    *, upload_id: int, reason: str, actor=None, ip: str = "", note: str = ""
) -> bool:
    """Flags an upload stuck, by a person (actor) or by the system's own checks; False when it
    is published or stuck already (someone was first). A person's note is shown with the flag;
    the system's (the server's last error) stays in the history."""
    old = upload_transition(
        upload_id=upload_id,
        expected=Status.UNPUBLISHED,
        new=None,
        action=Action.STUCK,
        source=Source.PPK if actor is not None else Source.SYSTEM,
        actor=actor,
        ip=ip,
        reason=note,
        guard={"stuck": False},
        changes={
            "stuck": True,
            "stuck_reason": reason,
            "stuck_since": timezone.now(),
            "stuck_note": note if actor is not None else "",
        },
    )
    return old is not None


def flag_again_after(minutes: int):
    """Uploads the system may flag: never cleared by a person, or cleared at least `minutes`
    ago (a person who cleared the flag said "leave it"; if it still sits, it comes back)."""
    since = timezone.now() - datetime.timedelta(minutes=minutes)
    return Q(stuck_cleared_at__isnull=True) | Q(stuck_cleared_at__lt=since)
