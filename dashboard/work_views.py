"""The PPK work queue (/ppk/) and what a person does about one upload there or on its TPS page:
thin views over dashboard.work (the reads), uploads.services.actions (the writes) and
accounts.guards (who may).

An action answers an HTMX request with the TPS page, of which the upload's section is swapped in
(its status, history and actions, the outcome on top), and a plain form post with a redirect
back to the TPS page, the outcome as a message: the page works without JavaScript, and a reload
never posts twice.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone, translation
from django.utils.cache import get_conditional_response, patch_cache_control, patch_vary_headers
from django.views.decorators.http import require_GET, require_POST

from accounts.guards import require, require_acts_on, require_sees
from accounts.scope import Can
from dashboard.outcomes import action_outcome
from dashboard.views import tps_response
from dashboard.work import WIDEST, Filters, queue_areas, work_queue
from regions import codes
from regions.models import Area, Level
from regions.zones import zone_of_area
from sirekap_tracker.proxies import client_address
from sirekap_tracker.requests import HtmxHttpRequest
from uploads.models import Upload
from uploads.services.actions import ActionConflict, ActionRefused, upload_act


@login_required
@require_GET
def work(request: HtmxHttpRequest, code: str = "") -> HttpResponse:
    """The queue of the user's region, or of an area in it; a region wider than a kabupaten
    first picks one."""
    scope = require(request, Can.ACT)
    code = code or scope.region or ""
    if code and not codes.is_code(code):
        raise Http404("no such area")
    scope = require_sees(request, code, Can.ACT)
    if codes.level_of(code) < WIDEST:
        choices = {"choices": queue_areas(code), "region": scope.region, "code": code}
        return render(request, "dashboard/work/pick.html", choices)
    area = Area.objects.filter(code=code).first()
    if area is None or area.level >= Level.TPS:
        raise Http404("no such area")
    filters = Filters(
        category=request.GET.get("kategori", ""),
        area=request.GET.get("wilayah", ""),
        kind=request.GET.get("pemilihan", ""),
    )
    now = timezone.now()
    queue = work_queue(area=area, filters=filters, now=now)
    # The ages shown count in minutes: a new minute is a change too.
    etag = queue.etag(variant=f"{translation.get_language()}:{now:%Y%m%d%H%M}")
    response = get_conditional_response(request, etag=etag)
    if response is None:
        template = "dashboard/work/queue.html" + ("#live" if request.htmx else "")
        context = {"queue": queue, "zone": zone_of_area(code), "now": now, "region": scope.region}
        response = render(request, template, context)
    response["ETag"] = etag
    patch_vary_headers(response, ["HX-Request"])
    patch_cache_control(response, private=True, no_cache=True)
    return response


@login_required
@require_POST
def act(request: HtmxHttpRequest, kind: str, code: str) -> HttpResponse:
    """One action on the upload of a TPS and contest (the form's `action`, `reason`, `note`)."""
    scope = require_acts_on(request, code)
    upload = Upload.objects.filter(tps_id=code, contest__kind=kind).first()
    if upload is None:
        raise Http404("no such TPS, or no contest of this kind there")
    action = request.POST.get("action", "")
    try:
        upload = upload_act(
            upload=upload,
            action=action,
            actor=request.user,
            ip=client_address(request),
            reason=request.POST.get("reason", ""),
            note=request.POST.get("note", ""),
        )
        outcome, status = action_outcome(action, upload, None), 200
    except ActionRefused as refused:
        outcome, status = refused.text(), 400
    except ActionConflict as conflict:
        upload = conflict.upload
        outcome, status = action_outcome(action, upload, conflict), 409
    if not request.htmx:
        level = messages.SUCCESS if status == 200 else messages.ERROR
        messages.add_message(request, level, outcome)
        return redirect("dashboard:area", kind, code)
    after = {"outcome": outcome, "outcome_for": upload.pk, "failed": status != 200}
    return tps_response(request, kind, code, scope, after=after, status=status)
