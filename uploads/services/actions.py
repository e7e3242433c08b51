"""What a person does about an upload that needs one (the PPK's work queue, or KPU staff as the
higher tier): take it, flag it stuck, clear the flag, send a rejected one again, add a note.

Each is one conditional update (upload_transition): of two people acting at once exactly one
wins, and the other gets ActionConflict carrying the event that won, so they are told who did
what, when. Who may act where is the caller's check (accounts.scope); these only act.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from uploads.models import Action, Source, Status, StuckReason, Upload, UploadEvent
from uploads.refusals import Refused
from uploads.services.delivery import deliveries_enqueue
from uploads.services.stuck import upload_mark_stuck
from uploads.services.transitions import upload_transition

# A note, or what "other" means, is kept in full in the history up to this.
NOTE_MAX = 2000


class ActionRefused(Refused):
    """An action asked wrongly (an unknown action or reason, a missing note): 400."""


@dataclass
class ActionConflict(Exception):
    """Someone changed the upload first: `event` is what they did (None if nothing is known)."""

    upload: Upload
    event: UploadEvent | None


ACTIONS = ("take", "mark_stuck", "clear_stuck", "requeue", "note")


def upload_act(
    *, upload: Upload, action: str, actor, ip: str = "", reason: str = "", note: str = ""
) -> Upload:
    """Does one of ACTIONS and returns the upload as it is after it. ActionRefused for a wrong
    request, ActionConflict when someone else was first."""
    note = note.strip()
    if action not in ACTIONS:
        raise ActionRefused(
            gettext_noop("action: %(value)s is not one of %(actions)s"),
            value=repr(action[:40]),
            actions=", ".join(ACTIONS),
        )
    if len(note) > NOTE_MAX:
        raise ActionRefused(
            gettext_noop("note: %(length)s characters, at most %(limit)s"),
            length=len(note),
            limit=NOTE_MAX,
        )
    done = _ACT[action](upload=upload, actor=actor, ip=ip, reason=reason.strip(), note=note)
    if not done:
        raise ActionConflict(_fresh(upload), _last_event(upload, _BEATEN_BY[action]))
    return _fresh(upload)


def _take(*, upload: Upload, actor, ip: str, **_) -> bool:
    if upload.taken_by_id == actor.pk:
        return True  # already theirs: nothing to do, nothing to record
    old = upload_transition(
        upload_id=upload.pk,
        expected=Status.UNPUBLISHED,
        new=None,
        action=Action.TAKEN,
        source=Source.PPK,
        actor=actor,
        ip=ip,
        guard={"taken_by": None},
        changes={"taken_by": actor, "taken_at": timezone.now()},
    )
    return old is not None


def _mark_stuck(*, upload: Upload, actor, ip: str, reason: str, note: str) -> bool:
    if reason not in StuckReason.values:
        raise ActionRefused(
            gettext_noop("reason: %(value)s is not one of %(reasons)s"),
            value=repr(reason[:40]),
            reasons=", ".join(StuckReason.values),
        )
    if reason == StuckReason.OTHER and not note:
        raise ActionRefused(
            gettext_noop("note: the reason 'other' needs a note saying what is wrong")
        )
    return upload_mark_stuck(upload_id=upload.pk, reason=reason, actor=actor, ip=ip, note=note)


def _clear_stuck(*, upload: Upload, actor, ip: str, note: str, **_) -> bool:
    old = upload_transition(
        upload_id=upload.pk,
        expected=Status.UNPUBLISHED,
        new=None,
        action=Action.STUCK_CLEARED,
        source=Source.PPK,
        actor=actor,
        ip=ip,
        reason=note,
        guard={"stuck": True},
        changes={
            "stuck": False,
            "stuck_reason": "",
            "stuck_since": None,
            "stuck_note": "",
            # The automatic checks wait as long again before they flag it once more.
            "stuck_cleared_at": timezone.now(),
        },
    )
    return old is not None


def _requeue(*, upload: Upload, actor, ip: str, note: str, **_) -> bool:
    """A rejected upload sent again as it is, from its first attempt (the server may have
    refused it for a reason since fixed on its side)."""
    now = timezone.now()
    with transaction.atomic():
        old = upload_transition(
            upload_id=upload.pk,
            expected=(Status.REJECTED,),
            new=Status.QUEUED,
            action=Action.REQUEUED,
            source=Source.PPK,
            actor=actor,
            ip=ip,
            reason=note,
            changes={
                "attempts": 0,
                "queued_at": now,
                "next_attempt_at": now,
                "dispatched_at": now,
                "last_error": "",
                "failing_since": None,
            },
        )
        if old is not None:
            transaction.on_commit(partial(deliveries_enqueue, [upload.pk]))
    return old is not None


def _note(*, upload: Upload, actor, ip: str, note: str, **_) -> bool:
    if not note:
        raise ActionRefused(gettext_noop("note: empty; write what you found or did"))
    old = upload_transition(
        upload_id=upload.pk,
        expected=tuple(Status.values),
        new=None,
        action=Action.NOTE,
        source=Source.PPK,
        actor=actor,
        ip=ip,
        reason=note,
    )
    return old is not None


# What someone else may have done first, which an action then tells its loser about.
_BEATEN_BY = {
    "take": (Action.TAKEN, Action.PUBLISHED),
    "mark_stuck": (Action.STUCK, Action.PUBLISHED),
    "clear_stuck": (Action.STUCK_CLEARED, Action.PUBLISHED),
    "requeue": (Action.REQUEUED, Action.RECEIVED, Action.REPLACED, Action.PUBLISHED),
    "note": (),
}

_ACT: dict[str, Callable[..., bool]] = {
    "take": _take,
    "mark_stuck": _mark_stuck,
    "clear_stuck": _clear_stuck,
    "requeue": _requeue,
    "note": _note,
}


def _fresh(upload: Upload) -> Upload:
    return Upload.objects.select_related("tps", "contest", "taken_by", "document").get(pk=upload.pk)


def _last_event(upload: Upload, actions: tuple[str, ...]) -> UploadEvent | None:
    return (
        UploadEvent.objects.filter(upload_id=upload.pk, action__in=actions)
        .select_related("actor")
        .order_by("-id")
        .first()
    )
