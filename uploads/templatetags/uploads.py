from django import template
from django.utils.safestring import SafeString
from django.utils.text import Truncator
from django.utils.translation import gettext

from sirekap_tracker.fragments import fragment
from uploads import delivery
from uploads.models import Action

register = template.Library()


@register.filter
def action_label(action: str) -> str:
    """An event's action as people read it, in the active language."""
    return str(Action(action).label) if action in Action.values else action


_FAILURE = """{meaning}
<details class="raw"><summary>{summary}</summary><code>{reason}</code></details>
"""
_REASON = '<span class="reason">{reason}</span>'


@register.simple_tag
def event_reason(reason: str) -> SafeString | str:
    """What an event (or an upload's last error) says beyond its action, for staff, on its own
    (a column, a field): a failed delivery's meaning in the reader's language with the server's
    own words behind a details element; any other reason as written, cut at 160 characters;
    nothing when there is none. Built here, not in a template: a stuck list has one a row."""
    if not reason:
        return ""
    if meaning := delivery.failure_label(reason):
        return fragment(
            _FAILURE,
            meaning=meaning,
            summary=gettext("technical detail"),
            reason=reason,
        )
    return fragment(_REASON, reason=Truncator(reason).chars(160))


@register.simple_tag
def action_reason(reason: str) -> SafeString | str:
    """event_reason right after the action's label, behind a colon ("delivery failed: ...");
    nothing when there is none."""
    return fragment(": {reason}", reason=event_reason(reason)) if reason else ""
