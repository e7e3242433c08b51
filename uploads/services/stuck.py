"""The stuck flag: beside the status, never a status, always with a reason; cleared when the
upload is published (uploads.services.publication)."""

from django.utils import timezone

from uploads.models import Action, Status
from uploads.services.transitions import upload_transition


def upload_mark_stuck(*, upload_id: int, reason: str, actor=None, note: str = "") -> bool:
    """Flags an upload stuck; False when it is published or stuck already (someone was first)."""
    old = upload_transition(
        upload_id=upload_id,
        expected=Status.UNPUBLISHED,
        new=None,
        action=Action.STUCK,
        actor=actor,
        reason=note,
        guard={"stuck": False},
        changes={"stuck": True, "stuck_reason": reason, "stuck_since": timezone.now()},
    )
    return old is not None
