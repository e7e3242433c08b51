"""Links between the public pages, and the rows they list."""

from django import template
from django.urls import reverse, translate_url

register = template.Library()


@register.simple_tag
def progress_url(kind: str, code: str = "") -> str:
    """The public page of an area or a TPS of a contest kind ("" the nation)."""
    if code:
        return reverse("progress:area", args=[kind, code])
    return reverse("progress:nation", args=[kind])


@register.simple_tag
def progress_csv_url(kind: str, code: str = "") -> str:
    """The open data CSV of an area's children (docs/api.md)."""
    name = f"{kind}/{code}.csv" if code else f"{kind}.csv"
    return reverse("public:progress", kwargs={"rest": name})


@register.simple_tag(takes_context=True)
def this_page_in(context: template.Context, language: str) -> str:
    """The page being shown in another language (its /en/ twin), query string kept."""
    return translate_url(context["request"].get_full_path(), language)
