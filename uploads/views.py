"""Intake: the API for upload clients (KPPS apps, scripts) and a plain form for a person; the
stored pages for staff."""

import json

from django.contrib.auth.decorators import login_required
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import render
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext_noop
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from accounts.guards import refusal_record, require
from accounts.models import AccessKind
from accounts.scope import Can, scope_of
from sirekap_tracker.proxies import client_address
from uploads.api import (
    IDEMPOTENCY_KEY_MAX,
    error_response,
    token_user,
    too_many_response,
)
from uploads.documents import EXTENSION, page_response
from uploads.forms import UploadForm
from uploads.limits import intake_rate_check
from uploads.models import Page, Upload
from uploads.selectors import tus_refusal_last, upload_with_pages
from uploads.services.actions import ActionConflict, ActionRefused, upload_act
from uploads.services.intake import Intent, Receipt, UploadRefused, upload_receive


def _receipt_body(receipt: Receipt) -> dict:
    upload = receipt.upload
    return {
        "id": upload.pk,
        "tps": upload.tps_id,
        "contest": upload.contest.kind,
        "status": upload.status,
        "sha256": receipt.document.sha256,
    }


def _upload_state(upload: Upload) -> dict:
    """An upload as the actions API answers it."""
    return {
        "id": upload.pk,
        "tps": upload.tps_id,
        "contest": upload.contest.kind,
        "status": upload.status,
        "status_since": upload.status_since.isoformat(),
        "stuck": upload.stuck,
        "stuck_reason": upload.stuck_reason,
        "stuck_note": upload.stuck_note,
        "taken_by": upload.taken_by.get_username() if upload.taken_by else None,
        "attempts": upload.attempts,
        "last_error": upload.last_error,
        "sha256": upload.document.sha256 if upload.document else None,
    }


# Token-authenticated like api_upload.
@csrf_exempt
def api_upload_action(request: HttpRequest, kind: str, code: str) -> JsonResponse:
    """POST {"action", "reason", "note"} as JSON: 200 and the upload's state, 400 for a bad
    request, 403 outside the user's region, 404 for no such upload, 409 when someone else
    changed it first (with what they did)."""
    if request.method != "POST":
        response = error_response(f"method {request.method} is not allowed; use POST", 405)
        response["Allow"] = "POST"
        return response
    user = token_user(request)
    if user is None:
        return error_response("a valid 'Authorization: Token <key>' header is required", 401)
    if not scope_of(user).acts_on(code):
        refusal_record(request, AccessKind.NOT_ALLOWED, code[:13], user=user)
        return error_response(
            f"TPS {code[:13]} is outside your region, or your role may not act", 403
        )
    upload = Upload.objects.filter(tps_id=code, contest__kind=kind).first()
    if upload is None:
        return error_response(f"no upload of contest {kind[:10]} at TPS {code[:13]}", 404)
    try:
        body = json.loads(request.body or b"{}")
    except ValueError as error:
        return error_response(f"the body is not JSON: {error}", 400)
    if not isinstance(body, dict) or not all(isinstance(v, str) for v in body.values()):
        return error_response(
            'the body must be a JSON object of strings: {"action": ..., "note": ...}', 400
        )
    try:
        upload = upload_act(
            upload=upload,
            action=body.get("action", ""),
            actor=user,
            ip=client_address(request),
            reason=body.get("reason", ""),
            note=body.get("note", ""),
        )
    except ActionRefused as refused:
        return error_response(str(refused), 400, pesan=refused.words.said_in("id"))
    except ActionConflict as conflict:
        return JsonResponse(_conflict_body(conflict), status=409)
    return JsonResponse(_upload_state(upload))


def api_upload_state(request: HttpRequest, kind: str, code: str) -> JsonResponse:
    """GET: the state of the upload of a contest at a TPS, for a client that sent it (or may
    see it): its status and since when, stuck or not and why, its current document's SHA-256 and
    pages, and the last refusal of a document sent over tus. A token or a session; 401 without
    either, 403 outside the user's region, 404 for no such upload."""
    if request.method not in ("GET", "HEAD"):
        response = error_response(f"method {request.method} is not allowed; use GET", 405)
        response["Allow"] = "GET, HEAD"
        return response
    user = token_user(request) if "Authorization" in request.headers else request.user
    if user is None or not user.is_authenticated:
        message = "a valid 'Authorization: Token <key>' header or a logged-in session is required"
        return error_response(message, 401)
    if not scope_of(user).sees(code):
        refusal_record(request, AccessKind.NOT_VISIBLE, code[:13], user=user)
        return error_response(f"TPS {code[:13]} is outside your region", 403)
    upload = upload_with_pages(kind=kind, tps_code=code)
    if upload is None:
        return error_response(f"no upload of contest {kind[:10]} at TPS {code[:13]}", 404)
    response = JsonResponse(_upload_state_with_pages(upload))
    response["Cache-Control"] = "private, no-store"
    return response


def _upload_state_with_pages(upload: Upload) -> dict:
    document = upload.document
    pages: list[Page] = list(document.pages.all()) if document else []
    refused = tus_refusal_last(upload_id=upload.pk)
    return {
        **_upload_state(upload),
        "document_id": (document.idempotency_key or None) if document else None,
        "pages": [
            {
                "number": page.number,
                "sha256": page.sha256,
                "size": page.size,
                "original_sha256": page.original_sha256 or None,
            }
            for page in pages
        ],
        "refusal": {
            "document_id": refused.key,
            "status": refused.refusal_status,
            "error": refused.refusal_error,
            "pesan": refused.refusal_pesan,
            "at": refused.refused_at.isoformat(),
        }
        if refused and refused.refused_at
        else None,
    }


def _conflict_body(conflict: ActionConflict) -> dict:
    event = conflict.event
    first = None
    if event is not None:
        first = {
            "action": event.action,
            "by": event.actor.get_username() if event.actor else event.source,
            "at": event.created_at.isoformat(),
        }
    return {
        "error": "the upload changed before your action; nothing was done",
        "first": first,
        "upload": _upload_state(conflict.upload),
    }


def _form_data(request: HttpRequest):
    """The parsed fields and files; UploadRefused saying why when the body cannot be read (Django
    would answer its HTML error page)."""
    try:
        return request.POST, request.FILES
    except RequestDataTooBig:
        message = gettext_noop("the form fields are too large; send the pages as 'file' parts")
        raise UploadRefused(message) from None
    except SuspiciousOperation as error:  # too many fields or files
        raise UploadRefused(
            gettext_noop("the body cannot be taken: %(error)s"), error=error
        ) from None
    except MultiPartParserError as error:
        raise UploadRefused(
            gettext_noop("the body is not readable multipart/form-data: %(error)s"), error=error
        ) from None


# Token-authenticated, no session or cookie involved, so CSRF does not apply.
@csrf_exempt
def api_upload(request: HttpRequest) -> JsonResponse:
    if request.method != "POST":
        response = error_response(f"method {request.method} is not allowed; use POST", 405)
        response["Allow"] = "POST"
        return response
    # The address first, so that attempts without a valid token count too.
    if retry_after := intake_rate_check(address=client_address(request)):
        return too_many_response(retry_after)
    user = token_user(request)
    if user is None:
        return error_response("a valid 'Authorization: Token <key>' header is required", 401)
    if retry_after := intake_rate_check(user_id=user.pk):
        return too_many_response(retry_after)
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > IDEMPOTENCY_KEY_MAX:
        message = f"Idempotency-Key: {len(key)} characters, at most {IDEMPOTENCY_KEY_MAX}"
        return error_response(message, 400)
    try:
        fields, files = _form_data(request)
        receipt = upload_receive(
            tps_code=fields.get("tps", "").strip(),
            kind=fields.get("contest", "").strip(),
            files=files.getlist("file"),
            user=user,
            ip=client_address(request),
            idempotency_key=key,
            intent=Intent(
                based_on=fields["based_on"].strip() if "based_on" in fields else None,
                reason=fields.get("reason", "").strip(),
            ),
        )
    except UploadRefused as refused:
        if refused.status == 403:
            refusal_record(request, AccessKind.NOT_ALLOWED, fields.get("tps", "")[:13], user=user)
        return error_response(str(refused), refused.status, pesan=refused.words.said_in("id"))
    return JsonResponse(_receipt_body(receipt), status=201 if receipt.created else 200)


@login_required
@require_http_methods(["GET", "POST"])
def upload_form(request: HttpRequest) -> HttpResponse:
    """A person's upload: a KPPS for their TPS, a PPK operator or KPU staff on a TPS's behalf
    (opened from a TPS page with ?tps=&pemilihan=, the document they saw kept in based_on)."""
    scope = require(request, Can.UPLOAD)
    region = scope.region or ""
    if request.method == "POST" and (
        retry_after := intake_rate_check(address=client_address(request), user_id=request.user.pk)
    ):
        # Not validated: checking the pages is the work the limit saves.
        context = {"form": UploadForm(region=region), "retry_after": retry_after}
        response = render(request, "uploads/form.html", context, status=429)
        response["Retry-After"] = str(retry_after)
        return response
    form = UploadForm(
        request.POST or None, request.FILES or None, region=region, initial=_form_initial(request)
    )
    receipt, status = None, 200
    if request.method == "POST" and form.is_valid():
        try:
            receipt = upload_receive(
                tps_code=form.cleaned_data["tps"],
                kind=form.cleaned_data["contest"],
                files=form.cleaned_data["file"],
                user=request.user,
                ip=client_address(request),
                intent=Intent(
                    based_on=form.cleaned_data["based_on"] or None,
                    reason=form.cleaned_data["reason"].strip(),
                ),
            )
        except UploadRefused as refused:
            if refused.status == 403:
                refusal_record(request, AccessKind.NOT_ALLOWED, form.cleaned_data["tps"])
            form.add_error(None, refused.text())
            status = refused.status
    elif request.method == "POST":
        status = 400
    context = {"form": form, "receipt": receipt, "may_watch": scope.may(Can.DASHBOARD)}
    return render(request, "uploads/form.html", context, status=status)


def _form_initial(request: HttpRequest) -> dict:
    """The TPS and contest a TPS page asked for, and the document it showed, if the user may
    see it."""
    tps, kind = request.GET.get("tps", ""), request.GET.get("pemilihan", "")
    initial = {"tps": tps, "contest": kind}
    upload = (
        Upload.objects.visible_to(request.user)
        .filter(tps_id=tps, contest__kind=kind)
        .select_related("document")
        .first()
    )
    if upload is not None and upload.document is not None:
        initial["based_on"] = upload.document.sha256
    return initial


@login_required
@require_GET
def document_page_file(request: HttpRequest, pk: int) -> FileResponse:
    """One stored page, from whatever storage holds it (local folder or S3), for the people who
    may read its TPS."""
    require(request, Can.DASHBOARD)
    pages = Page.objects.visible_to(request.user).select_related("document__upload")
    page = pages.filter(pk=pk).first()
    if page is None:
        refusal_record(request, AccessKind.NOT_VISIBLE)
        raise Http404("no such page in your region")
    extension = EXTENSION[page.content_type]
    response = page_response(
        name=str(page.file.name),
        content_type=page.content_type,
        filename=f"{page.document.upload.tps_id}-{page.number}.{extension}",
    )
    # A page is never overwritten (a replacement is a new page), so the browser may keep it.
    patch_cache_control(response, private=True, max_age=86400, immutable=True)
    return response
