"""The audit list for KPU staff (/audit/) and its CSV export, both within the user's region:
thin views over dashboard.audit. Read-only: there is no way here to change an event."""

import csv
import datetime
from collections.abc import Iterator

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import render
from django.utils.cache import patch_cache_control
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from accounts.guards import require
from accounts.scope import Can, Scope
from dashboard.audit import (
    CSV_HEADER,
    PAGE_ROWS,
    AuditFilters,
    action_choices,
    audit_page,
    audit_rows,
    csv_values,
    cursor_of,
    key_of_cursor,
)
from regions.zones import zone_of_area

# A spreadsheet runs a cell that starts with one of these as a formula: such a cell is quoted.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@login_required
@require_GET
def audit(request: HttpRequest) -> HttpResponse:
    scope = require(request, Can.AUDIT)
    filters, problems = _filters(request, scope)
    rows = [] if problems else audit_page(scope, filters)
    context = {
        "rows": rows,
        "filters": filters,
        "problems": problems,
        "actions": action_choices(),
        "zone": zone_of_area(scope.region or ""),
        "older": cursor_of(rows[-1]) if len(rows) >= PAGE_ROWS else "",
        "query": request.GET.urlencode(),
    }
    response = render(request, "dashboard/audit.html", context, status=400 if problems else 200)
    patch_cache_control(response, private=True, no_cache=True)
    return response


@login_required
@require_GET
def audit_csv(request: HttpRequest) -> HttpResponseBase:
    """Every row under the filters, streamed (a whole night's events do not sit in memory)."""
    scope = require(request, Can.AUDIT)
    filters, problems = _filters(request, scope)
    if problems:
        return HttpResponse("\n".join(problems), status=400, content_type="text/plain")
    response = StreamingHttpResponse(
        _csv_lines(audit_rows(scope, filters)), content_type="text/csv"
    )
    response["Content-Disposition"] = 'attachment; filename="audit.csv"'
    patch_cache_control(response, private=True, no_cache=True)
    return response


class _Line:
    def write(self, value: str) -> str:
        return value


def _csv_lines(rows) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield writer.writerow(CSV_HEADER)
    for row in rows:
        yield writer.writerow([_cell(value) for value in csv_values(row)])


def _cell(value: str) -> str:
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def _filters(request: HttpRequest, scope: Scope) -> tuple[AuditFilters, list[str]]:
    """The filters of the query (wilayah, pelaku, aksi, dari, sampai; sebelum for "older"),
    and what is wrong with them."""
    problems = []
    zone = zone_of_area(scope.region or "").info
    area = request.GET.get("wilayah", "").strip()
    if area and not scope.covers(area):
        problems.append(_("Area: %(code)s is not in your region.") % {"code": area[:20]})
    action = request.GET.get("aksi", "")
    if action and action not in dict(action_choices()):
        problems.append(_("Action: %(value)s is not an action.") % {"value": action[:40]})
    days = {}
    for name in ("dari", "sampai"):
        text = request.GET.get(name, "")
        day = parse_date(text) if text else None
        if text and day is None:
            problems.append(
                _("%(field)s: %(value)s is not a date (YYYY-MM-DD).")
                % {"field": name, "value": text[:20]}
            )
        days[name] = day
    since = _start_of(days["dari"], zone)
    before = (
        _start_of(days["sampai"] + datetime.timedelta(days=1), zone) if days["sampai"] else None
    )
    after = None
    older = request.GET.get("sebelum", "")
    if older:
        try:
            after = key_of_cursor(older)
        except ValueError:
            problems.append(_("sebelum: %(value)s is not a time.") % {"value": older[:40]})
    filters = AuditFilters(
        area=area, actor=request.GET.get("pelaku", "").strip(), action=action,
        since=since, before=before, after=after,
    )  # fmt: skip
    return filters, problems


def _start_of(day: datetime.date | None, zone) -> datetime.datetime | None:
    return None if day is None else datetime.datetime.combine(day, datetime.time(), tzinfo=zone)
