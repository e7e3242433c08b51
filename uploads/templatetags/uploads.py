from django import template

from uploads import delivery
from uploads.models import Action

register = template.Library()


@register.filter
def failure_label(reason: str) -> str:
    """What a failed delivery's reason means, in the active language; "" for other reasons."""
    return delivery.failure_label(reason or "")


@register.filter
def action_label(action: str) -> str:
    """An event's action as people read it, in the active language."""
    return str(Action(action).label) if action in Action.values else action
