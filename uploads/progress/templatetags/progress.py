"""The progress pages' filters, and the rows of their two tables built in Python.

A national page lists 38 provinsi and 25 stuck TPS. Django's template engine renders a row of
those tables in about 0.3 ms (each variable, filter and tag a node of its own); built as an HTML
fragment (sirekap_tracker.fragments) a row takes a tenth of that. Django's admin builds its
change list's cells in Python too (django/contrib/admin/templatetags/admin_list.py). The
tables' headings and empty states stay in the templates.
"""

from collections.abc import Sequence
from decimal import Decimal

from django import template
from django.utils.formats import number_format
from django.utils.safestring import SafeString, mark_safe
from django.utils.timesince import timesince

from regions.selectors import ContestArea
from regions.templatetags.regions import area_url
from regions.zones import Zone, in_zone_text
from sirekap_tracker.fragments import fragment
from uploads.progress.selectors import Counts, CountsPage
from uploads.selectors import StuckTps
from uploads.templatetags.uploads import action_reason

register = template.Library()


@register.filter(is_safe=True)
def percent(value: Decimal | None) -> str:
    """A cut percentage (uploads.progress.percent.cut_percent) in the active language: 98,97% in
    Indonesian, 98.97% in English; a dash when there is nothing to count (no TPS)."""
    if value is None:
        return "\N{EN DASH}"
    return f"{number_format(value, decimal_pos=2)}%"


_CHILD_ROW = """
          <tr id="area-{code}">
            <th scope="row">
              <a href="{url}">{name}</a>
              <span class="code">{code}</span>
            </th>
            <td class="progress-cell">
              <progress max="{most}" value="{published}"
                aria-label="{name}" aria-valuetext="{percent}">{percent}</progress>
              <span class="percent">{percent}</span>
              <span class="of">{published}/{total}</span>
            </td>{staff_cells}
            <td class="num">{stuck}</td>{site_cell}
          </tr>"""
_STAFF_CELLS = """
            <td class="num">{delivered}</td>
            <td class="num">{on_the_way}</td>
            <td class="num">{rejected}</td>
            <td class="num">{missing}</td>"""
_STUCK_COUNT = '<span class="status status-stuck">{stuck}</span>'
_SITE_CELL = '\n            <td class="num">{published}</td>'


@register.simple_tag
def children_rows(
    data: CountsPage, sort: str, contest_area: ContestArea, site: str, staff: bool
) -> SafeString:
    """The rows of an area's children table (progress/parts/children.html) in a CHILD_SORTS
    order: each child's link, bar, percentage, published of total and stuck TPS; for staff
    where the rest are; the KPU public site's published count where the poller read it."""
    with_site = data.site is not None
    rows = (
        _child_row(child, site_count, contest_area.kind, site, staff, with_site)
        for child, site_count in data.children(sort)
    )
    return mark_safe("".join(rows))


def _child_row(
    child: Counts, site_count: int | None, kind: str, site: str, staff: bool, with_site: bool
) -> str:
    staff_cells = ""
    if staff:
        staff_cells = fragment(
            _STAFF_CELLS,
            delivered=child.delivered,
            on_the_way=child.on_the_way,
            rejected=child.rejected,
            missing=child.missing,
        )
    site_cell = ""
    if with_site:
        read = "\N{EN DASH}" if site_count is None else site_count
        site_cell = fragment(_SITE_CELL, published=read)
    return fragment(
        _CHILD_ROW,
        code=child.code,
        url=area_url(site, kind, child.code),
        name=child.name or child.code,
        most=child.total or 1,
        published=child.published,
        total=child.total,
        percent=percent(child.percent),
        staff_cells=staff_cells,
        stuck=fragment(_STUCK_COUNT, stuck=child.stuck) if child.stuck else 0,
        site_cell=site_cell,
    )


_STUCK_ROW = """
            <tr>
              <th scope="row">
                <a href="{url}">{name}</a>
                <span class="where">{desa}, {kecamatan}</span>
                <span class="code">{code}</span>
              </th>
              <td><span class="status status-stuck">{stuck_label}</span></td>
              <td class="when">{since}
                <span class="muted">({ago})</span></td>
              <td class="wide-only">{status_cell}</td>{last_event}
            </tr>"""
_STATUS = '<span class="status status-{status}">{label}</span>'
_LAST_EVENT = """
              <td>{action}{reason}
                <span class="muted">{at}</span></td>"""


@register.simple_tag
def stuck_rows(
    stuck: Sequence[StuckTps], contest_area: ContestArea, site: str, staff: bool
) -> SafeString:
    """The rows of a stuck list (progress/parts/stuck.html): where each TPS is, why, since when
    it is in trouble and how long that is, its status; for staff its last event."""
    zone = contest_area.zone
    rows = (_stuck_row(tps, contest_area.kind, zone, site, staff) for tps in stuck)
    return mark_safe("".join(rows))


def _stuck_row(tps: StuckTps, kind: str, zone: Zone, site: str, staff: bool) -> str:
    last_event = ""
    if staff:
        last_event = fragment(
            _LAST_EVENT,
            action=tps.last_action_label,
            reason=action_reason(tps.last_reason),
            at=in_zone_text(tps.last_event_at, zone),
        )
    return fragment(
        _STUCK_ROW,
        url=area_url(site, kind, tps.code),
        name=tps.name,
        desa=tps.desa,
        kecamatan=tps.kecamatan,
        code=tps.code,
        stuck_label=tps.stuck_label,
        since=in_zone_text(tps.trouble_since, zone),
        ago=timesince(tps.trouble_since),
        status_cell=fragment(_STATUS, status=tps.status, label=tps.status_label),
        last_event=last_event,
    )
