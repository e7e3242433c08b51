"""What a person is told after an action: what happened, or who was first and what they did,
when (in the TPS's zone), in the user's language."""

from django.utils.translation import gettext as _

from regions.zones import in_zone_text, zone_of_area
from uploads.models import Action, Upload
from uploads.services.actions import ActionConflict

DONE = {
    "take": lambda: _("You are on it: the others see your name."),
    "mark_stuck": lambda: _("Flagged stuck."),
    "clear_stuck": lambda: _("The stuck flag is cleared."),
    "requeue": lambda: _("Sent again: it is back in the queue."),
    "note": lambda: _("Note added."),
}


def action_outcome(action: str, upload: Upload, conflict: ActionConflict | None) -> str:
    """The line shown after an action: done, or beaten to it."""
    if conflict is None:
        return DONE[action]()
    event = conflict.event
    if event is None:
        return _("Nothing done: the upload is %(status)s now.") % {
            "status": upload.get_status_display()
        }
    who = event.actor.get_username() if event.actor else event.get_source_display()
    return _("Nothing done: %(who)s was first (%(what)s, %(when)s). It is %(status)s now.") % {
        "who": who,
        "what": Action(event.action).label,
        "when": in_zone_text(event.created_at, zone_of_area(upload.tps_id)),
        "status": upload.get_status_display(),
    }
