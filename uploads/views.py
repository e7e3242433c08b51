"""Intake: the API for upload clients (KPPS apps, scripts) and a plain form for a person; the
stored pages for staff."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import get_object_or_404, render
from django.utils.cache import patch_cache_control
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from accounts.selectors import user_for_token
from sirekap_tracker.proxies import client_address
from uploads.documents import EXTENSION, page_response
from uploads.forms import UploadForm
from uploads.limits import intake_rate_check
from uploads.models import Page, Source
from uploads.services.intake import Receipt, UploadRefused, upload_receive

# Document.idempotency_key holds this much; a longer key is refused, never cut (two keys that
# share their first 200 characters would collide).
IDEMPOTENCY_KEY_MAX = 200


def _receipt_body(receipt: Receipt) -> dict:
    upload = receipt.upload
    return {
        "id": upload.pk,
        "tps": upload.tps_id,
        "contest": upload.contest.kind,
        "status": upload.status,
        "sha256": receipt.document.sha256,
    }


def _error(message: str, status: int) -> JsonResponse:
    response = JsonResponse({"error": message}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Token realm="sirekap-tracker"'
    return response


def _token_user(request: HttpRequest):
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme != "Token" or not key.strip():
        return None
    return user_for_token(key.strip())


def _too_many(retry_after: int) -> JsonResponse:
    response = _error(f"too many uploads; try again in {retry_after} s", 429)
    response["Retry-After"] = str(retry_after)
    return response


def _form_data(request: HttpRequest):
    """The parsed fields and files; UploadRefused saying why when the body cannot be read (Django
    would answer its HTML error page)."""
    try:
        return request.POST, request.FILES
    except RequestDataTooBig:
        message = "the form fields are too large; send the pages as 'file' parts"
        raise UploadRefused(message) from None
    except SuspiciousOperation as error:  # too many fields or files
        raise UploadRefused(f"the body cannot be taken: {error}") from None
    except MultiPartParserError as error:
        raise UploadRefused(f"the body is not readable multipart/form-data: {error}") from None


# Token-authenticated, no session or cookie involved, so CSRF does not apply.
@csrf_exempt
def api_upload(request: HttpRequest) -> JsonResponse:
    if request.method != "POST":
        response = _error(f"method {request.method} is not allowed; use POST", 405)
        response["Allow"] = "POST"
        return response
    # The address first, so that attempts without a valid token count too.
    if retry_after := intake_rate_check(address=client_address(request)):
        return _too_many(retry_after)
    user = _token_user(request)
    if user is None:
        return _error("a valid 'Authorization: Token <key>' header is required", 401)
    if retry_after := intake_rate_check(user_id=user.pk):
        return _too_many(retry_after)
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > IDEMPOTENCY_KEY_MAX:
        message = f"Idempotency-Key: {len(key)} characters, at most {IDEMPOTENCY_KEY_MAX}"
        return _error(message, 400)
    try:
        fields, files = _form_data(request)
        receipt = upload_receive(
            tps_code=fields.get("tps", "").strip(),
            kind=fields.get("contest", "").strip(),
            files=files.getlist("file"),
            user=user,
            source=Source.KPPS,
            idempotency_key=key,
        )
    except UploadRefused as refused:
        return _error(str(refused), refused.status)
    return JsonResponse(_receipt_body(receipt), status=201 if receipt.created else 200)


@login_required
@require_http_methods(["GET", "POST"])
def upload_form(request: HttpRequest) -> HttpResponse:
    if request.method == "POST" and (
        retry_after := intake_rate_check(address=client_address(request), user_id=request.user.pk)
    ):
        # Not validated: checking the pages is the work the limit saves.
        context = {"form": UploadForm(), "retry_after": retry_after}
        response = render(request, "uploads/form.html", context, status=429)
        response["Retry-After"] = str(retry_after)
        return response
    form = UploadForm(request.POST or None, request.FILES or None)
    receipt, status = None, 200
    if request.method == "POST" and form.is_valid():
        try:
            receipt = upload_receive(
                tps_code=form.cleaned_data["tps"],
                kind=form.cleaned_data["contest"],
                files=form.cleaned_data["file"],
                user=request.user,
                source=Source.KPPS,
            )
        except UploadRefused as refused:
            form.add_error(None, str(refused))
            status = refused.status
    elif request.method == "POST":
        status = 400
    context = {"form": form, "receipt": receipt}
    return render(request, "uploads/form.html", context, status=status)


@login_required
@require_GET
def document_page_file(request: HttpRequest, pk: int) -> FileResponse:
    """One stored page, from whatever storage holds it (local folder or S3), for KPU staff."""
    if not request.user.is_staff:
        raise PermissionDenied
    page = get_object_or_404(Page.objects.select_related("document__upload"), pk=pk)
    extension = EXTENSION[page.content_type]
    response = page_response(
        name=str(page.file.name),
        content_type=page.content_type,
        filename=f"{page.document.upload.tps_id}-{page.number}.{extension}",
    )
    # A page is never overwritten (a replacement is a new page), so the browser may keep it.
    patch_cache_control(response, private=True, max_age=86400, immutable=True)
    return response
