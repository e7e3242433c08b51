"""Intake: the API for upload clients (KPPS apps, scripts) and a plain form for a person; the
stored pages for staff."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.utils.cache import patch_cache_control
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.selectors import user_for_token
from uploads.forms import UploadForm
from uploads.models import Page, Source
from uploads.services import Receipt, UploadRefused, upload_receive


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


# Token-authenticated, no session or cookie involved, so CSRF does not apply.
@csrf_exempt
@require_POST
def api_upload(request: HttpRequest) -> JsonResponse:
    user = _token_user(request)
    if user is None:
        return _error("a valid 'Authorization: Token <key>' header is required", 401)
    try:
        receipt = upload_receive(
            tps_code=request.POST.get("tps", "").strip(),
            kind=request.POST.get("contest", "").strip(),
            files=request.FILES.getlist("file"),
            user=user,
            source=Source.KPPS,
            idempotency_key=request.headers.get("Idempotency-Key", "").strip()[:200],
        )
    except UploadRefused as refused:
        return _error(str(refused), refused.status)
    return JsonResponse(_receipt_body(receipt), status=201 if receipt.created else 200)


@login_required
@require_http_methods(["GET", "POST"])
def upload_form(request: HttpRequest) -> HttpResponse:
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
def page_file(request: HttpRequest, pk: int) -> FileResponse:
    """One stored page, from whatever storage holds it (local folder or S3), for KPU staff."""
    if not request.user.is_staff:
        raise PermissionDenied
    page = get_object_or_404(Page, pk=pk)
    response = FileResponse(
        default_storage.open(page.file.name, "rb"), content_type=page.content_type
    )
    # A page is never overwritten (a replacement is a new page), so the browser may keep it.
    patch_cache_control(response, private=True, max_age=86400, immutable=True)
    return response
