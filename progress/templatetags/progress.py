from decimal import Decimal

from django import template
from django.utils.formats import number_format

register = template.Library()


@register.filter(is_safe=True)
def percent(value: Decimal | None) -> str:
    """A cut percentage (progress.percent.cut_percent) in the active language: 98,97% in
    Indonesian, 98.97% in English; a dash when there is nothing to count (no TPS)."""
    if value is None:
        return "\N{EN DASH}"
    return f"{number_format(value, decimal_pos=2)}%"
