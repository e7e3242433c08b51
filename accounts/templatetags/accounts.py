from django import template

from accounts.scope import Can, scope_of

register = template.Library()


@register.filter
def can(user, what: str) -> bool:
    """Whether the user's role may do this at all: `{% if user|can:"audit" %}`."""
    return scope_of(user).may(Can(what))
