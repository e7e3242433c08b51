from decimal import Decimal

from django import template
from django.utils.formats import number_format

from uploads.progress.selectors import Counts, CountsPage

register = template.Library()


@register.filter(is_safe=True)
def percent(value: Decimal | None) -> str:
    """A cut percentage (uploads.progress.percent.cut_percent) in the active language: 98,97% in
    Indonesian, 98.97% in English; a dash when there is nothing to count (no TPS)."""
    if value is None:
        return "\N{EN DASH}"
    return f"{number_format(value, decimal_pos=2)}%"


@register.filter
def on_the_way(counts: Counts) -> int:
    """The TPS of an area whose document is here and not yet accepted by the publication
    server: queued, being sent or waiting to be sent again."""
    return counts.queued + counts.sending + counts.retrying


@register.filter
def children_by(page_data: CountsPage, sort: str) -> list[tuple[Counts, int | None]]:
    """An area's children in a CHILD_SORTS order, each with the public site's count."""
    return page_data.children(sort)
