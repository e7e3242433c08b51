"""Links between the public pages, and the rows they list."""

from django import template
from django.urls import reverse, translate_url

from public.entries import page_file
from regions.templatetags.regions import area_url

register = template.Library()


@register.simple_tag
def progress_url(kind: str, code: str = "") -> str:
    """The public page of an area or a TPS of a contest kind ("" the nation)."""
    return area_url("progress", kind, code)


@register.simple_tag
def progress_part_url(kind: str, code: str, part: str, sort: str = "code") -> str:
    """A part (or sort) of the public page of an area or TPS as a file beside the page
    (public.entries.page_file): what the polls ask for, an object on a static host too."""
    file = page_file(part=part, sort=sort)
    if code:
        return reverse("progress:area-file", args=[kind, code, file])
    return reverse("progress:nation-file", args=[kind, file])


@register.simple_tag
def progress_csv_url(kind: str, code: str = "") -> str:
    """The open data CSV of an area's children (docs/api.md)."""
    name = f"{kind}/{code}.csv" if code else f"{kind}.csv"
    return reverse("public:progress", kwargs={"rest": name})


@register.simple_tag(takes_context=True)
def this_page_in(context: template.Context, language: str) -> str:
    """The page being shown in another language (its /en/ twin), query string kept."""
    return translate_url(context["request"].get_full_path(), language)
