"""tus 1.0.0 (https://tus.io/protocols/resumable-upload) at /api/uploads/tus/: creation (POST),
an upload's offset (HEAD), appending (PATCH), termination (DELETE), and what the server offers
(OPTIONS). The protocol's headers are read and answered here; every write is in
uploads.services.tus. docs/uploads.md describes it for clients.

Who: an `Authorization: Token <key>` as for the intake API, or a logged-in session whose
unsafe requests carry the CSRF token (X-CSRFToken), as a page of ours using tus-js-client sends.
An upload answers its owner only; anyone else's id is unknown (404).
"""

import base64
import binascii
import functools
import hashlib
import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils.http import http_date
from django.utils.translation import gettext_noop
from django.views.decorators.csrf import csrf_exempt

from accounts.guards import refusal_record
from accounts.models import AccessKind
from sirekap_tracker.proxies import client_address
from uploads.api import IDEMPOTENCY_KEY_MAX, TOKEN_CHALLENGE, csrf_failure, token_user
from uploads.limits import intake_rate_check
from uploads.models import TusUpload
from uploads.refusals import Refused, Words
from uploads.services.tus import (
    Appended,
    Checksum,
    PageSpec,
    TusRefused,
    tus_upload_append,
    tus_upload_create,
    tus_upload_live,
    tus_upload_terminate,
)

TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,creation-with-upload,expiration,checksum,termination"
# Names as the protocol spells them, which are hashlib's.
CHECKSUM_ALGORITHMS = ("sha1", "sha256", "sha512", "md5")
BODY_TYPE = "application/offset+octet-stream"
# Every page says these about itself and its document (docs/uploads.md).
REQUIRED_KEYS = ("tps", "contest", "document", "page", "pages", "filename")
FILENAME_MAX = 255
REASON_MAX = 2000
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")


def _tus_view(*methods: str):
    """A tus view answering `methods` (and OPTIONS): the method a POST overrides with
    X-HTTP-Method-Override, the client's version checked, refusals answered as JSON, and the
    headers every answer carries. CSRF is the view's to check: a token needs none."""

    def wrap(handler: Callable[..., HttpResponse]):
        @csrf_exempt
        @functools.wraps(handler)
        def view(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            method = _method(request)
            try:
                if method == "OPTIONS":
                    response = _options()
                elif method not in methods:
                    response = _not_allowed(method, methods)
                else:
                    _check_version(request)
                    response = handler(request, method, *args, **kwargs)
            except Refused as refused:
                response = _refused_response(refused)
            response["Tus-Resumable"] = TUS_VERSION
            response["Cache-Control"] = "no-store"
            if method == "HEAD":
                response.content = b""
            return response

        return view

    return wrap


def _method(request: HttpRequest) -> str:
    """The request's method, or the one a POST names in X-HTTP-Method-Override (for clients
    that cannot send PATCH or DELETE). Only a POST: it is checked for CSRF like the methods it
    stands for, where an overridden GET would not be."""
    override = request.headers.get("X-HTTP-Method-Override", "").strip().upper()
    return override if request.method == "POST" and override else request.method or "GET"


def _options() -> HttpResponse:
    response = HttpResponse(status=204)
    response["Tus-Version"] = TUS_VERSION
    response["Tus-Extension"] = EXTENSIONS
    response["Tus-Max-Size"] = str(settings.UPLOAD_MAX_PAGE_BYTES)
    response["Tus-Checksum-Algorithm"] = ",".join(CHECKSUM_ALGORITHMS)
    return response


def _not_allowed(method: str, methods: tuple[str, ...]) -> HttpResponse:
    allowed = ", ".join(("OPTIONS", *methods))
    response = JsonResponse(
        {"error": f"method {method[:20]} is not allowed here; one of {allowed}"}, status=405
    )
    response["Allow"] = allowed
    return response


def _check_version(request: HttpRequest) -> None:
    given = request.headers.get("Tus-Resumable", "")
    if given != TUS_VERSION:
        raise TusRefused(
            gettext_noop(
                "Tus-Resumable: %(given)s is not a version this server speaks; it speaks "
                "%(version)s"
            ),
            status=412,
            headers={"Tus-Version": TUS_VERSION},
            given=repr(given[:20]) if given else "(none)",
            version=TUS_VERSION,
        )


def _refused_response(refused: Refused) -> JsonResponse:
    """A refusal as the intake API answers one: `error` in English, `pesan` in Indonesian."""
    response = JsonResponse(
        {"error": str(refused), "pesan": refused.words.said_in("id")}, status=refused.status
    )
    if isinstance(refused, TusRefused):
        for name, value in refused.headers.items():
            response[name] = value
    return response


def _user(request: HttpRequest):
    """The user of the request's token, else of its session (unsafe methods with the CSRF
    token); TusRefused 401 or 403 otherwise."""
    if "Authorization" in request.headers:
        user = token_user(request)
        if user is None:
            raise _unauthorized()
        return user
    if not request.user.is_authenticated:
        raise _unauthorized()
    if reason := csrf_failure(request):
        raise TusRefused(
            gettext_noop(
                "CSRF check failed (%(reason)s): a session's request sends the csrftoken "
                "cookie's value in an X-CSRFToken header"
            ),
            status=403,
            reason=reason,
        )
    return request.user


def _unauthorized() -> TusRefused:
    return TusRefused(
        gettext_noop(
            "a valid 'Authorization: Token <key>' header or a logged-in session is required"
        ),
        status=401,
        headers={"WWW-Authenticate": TOKEN_CHALLENGE},
    )


def _rate_check(**who) -> None:
    if retry_after := intake_rate_check(**who):
        raise TusRefused(
            gettext_noop("too many uploads; try again in %(seconds)s s"),
            status=429,
            headers={"Retry-After": str(retry_after)},
            seconds=retry_after,
        )


@_tus_view("POST")
def tus_uploads(request: HttpRequest, method: str) -> HttpResponse:
    """POST: a new upload of one page (creation), with its first bytes if the body has any
    (creation-with-upload). 201 and its Location."""
    # The address first, so that attempts without a valid token count too.
    _rate_check(address=client_address(request))
    user = _user(request)
    _rate_check(user_id=user.pk)
    length = _whole_number(request, "Upload-Length")
    metadata = request.headers.get("Upload-Metadata", "")
    spec = _page_spec(_metadata_parse(metadata))
    size = _body_size(request, method)
    checksum = _checksum(request) if size else None
    try:
        upload = tus_upload_create(user=user, spec=spec, length=length, metadata=metadata)
    except Refused as refused:
        if refused.status == 403:
            refusal_record(request, AccessKind.NOT_ALLOWED, spec.tps[:13], user=user)
        raise
    # A path without the host: right behind any proxy, and the protocol allows it.
    created = {"Location": reverse("tus-upload", args=[upload.pk.hex])}
    if not size:
        response = HttpResponse(status=201)
        response["Upload-Expires"] = _expires(upload)
        for name, value in created.items():
            response[name] = value
        return response
    try:
        appended = _append(request, user, upload.pk, offset=0, size=size, checksum=checksum)
    except TusRefused as refused:
        refused.headers |= created
        raise
    return _appended_response(request, appended, status=201, headers=created)


@_tus_view("HEAD", "PATCH", "DELETE")
def tus_upload(request: HttpRequest, method: str, upload_id: str) -> HttpResponse:
    """HEAD: where the upload stands. PATCH: bytes at its offset. DELETE: its end."""
    user = _user(request)
    known = _upload_id(upload_id)
    if method == "HEAD":
        return _head(tus_upload_live(upload_id=known, user=user))
    if method == "DELETE":
        tus_upload_terminate(upload_id=known, user=user)
        return HttpResponse(status=204)
    size = _body_size(request, method)
    offset = _whole_number(request, "Upload-Offset")
    checksum = _checksum(request)
    appended = _append(request, user, known, offset=offset, size=size, checksum=checksum)
    return _appended_response(request, appended, status=204)


def _upload_id(given: str) -> uuid.UUID:
    try:
        return uuid.UUID(given)
    except ValueError:
        raise TusRefused(
            gettext_noop("no upload %(id)s of yours"), status=404, id=repr(given[:40])
        ) from None


def _head(upload: TusUpload) -> HttpResponse:
    response = HttpResponse(status=200)
    response["Upload-Offset"] = str(upload.offset)
    response["Upload-Length"] = str(upload.length)
    if upload.metadata:
        response["Upload-Metadata"] = upload.metadata
    response["Upload-Expires"] = _expires(upload)
    return response


def _expires(upload: TusUpload) -> str:
    return http_date(upload.tus_document.expires_at.timestamp())


def _append(
    request: HttpRequest,
    user,
    upload_id: uuid.UUID,
    *,
    offset: int,
    size: int,
    checksum: Checksum | None,
) -> Appended:
    return tus_upload_append(
        upload_id=upload_id,
        user=user,
        offset=offset,
        read=request.read,
        size=size,
        checksum=checksum,
        ip=client_address(request),
    )


def _appended_response(
    request: HttpRequest, appended: Appended, *, status: int, headers: dict | None = None
) -> HttpResponse:
    """The answer to a request that carried bytes: `status` with the new offset; a body that
    ended early says so (400, what arrived is kept); the document refused by the intake when
    these bytes completed it, with its status and words as POST /api/uploads/ answers them, and
    the document's id (which no other refusal carries)."""
    response: HttpResponse
    if appended.refusal is not None:
        refusal = appended.refusal
        tus_document = appended.upload.tus_document
        if refusal.status == 403:
            tps = tus_document.upload.tps_id
            refusal_record(request, AccessKind.NOT_ALLOWED, tps, user=tus_document.owner)
        body = {"error": refusal.error, "pesan": refusal.pesan, "document_id": tus_document.key}
        response = JsonResponse(body, status=refusal.status)
    elif not appended.whole:
        response = _refused_response(
            TusRefused(
                gettext_noop(
                    "the body ended after %(offset)s bytes of the upload; they were kept: "
                    "continue from Upload-Offset"
                ),
                offset=appended.upload.offset,
            )
        )
    else:
        response = HttpResponse(status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    response["Upload-Offset"] = str(appended.upload.offset)
    response["Upload-Expires"] = _expires(appended.upload)
    return response


def _whole_number(request: HttpRequest, header: str) -> int:
    value = request.headers.get(header)
    if value is None:
        if header == "Upload-Length" and "Upload-Defer-Length" in request.headers:
            raise TusRefused(
                gettext_noop(
                    "Upload-Length is required: a page's length is known when it is sent "
                    "(deferring it is not offered)"
                )
            )
        raise TusRefused(gettext_noop("%(header)s is required"), header=header)
    number = _digits(value.strip())
    if number is None:
        raise TusRefused(
            gettext_noop("%(header)s: expected a whole number of bytes, got %(value)s"),
            header=header,
            value=repr(value[:40]),
        )
    return number


def _digits(value: str) -> int | None:
    """A whole number written in at most 18 ASCII digits (more is no size we take, and Python
    refuses to read thousands), else None."""
    if value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    return None


def _body_size(request: HttpRequest, method: str) -> int:
    """The body's announced length. Bytes come as application/offset+octet-stream: a PATCH's
    always, a creation's when it has any."""
    size = _digits(request.META.get("CONTENT_LENGTH") or "0") or 0
    media_type = request.content_type or ""
    if (size or method == "PATCH") and media_type != BODY_TYPE:
        raise TusRefused(
            gettext_noop("Content-Type: the bytes are sent as %(expected)s, not %(given)s"),
            status=415,
            expected=BODY_TYPE,
            given=repr(media_type[:60]),
        )
    return size


def _checksum(request: HttpRequest) -> Checksum | None:
    header = request.headers.get("Upload-Checksum")
    if header is None:
        return None
    algorithm, _, encoded = header.strip().partition(" ")
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise TusRefused(
            gettext_noop("Upload-Checksum: %(algorithm)s is not supported; one of %(supported)s"),
            algorithm=repr(algorithm[:20]),
            supported=", ".join(CHECKSUM_ALGORITHMS),
        )
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error:
        digest = b""
    if len(digest) != hashlib.new(algorithm).digest_size:
        raise TusRefused(
            gettext_noop("Upload-Checksum: not the Base64 of a %(algorithm)s digest: %(value)s"),
            algorithm=algorithm,
            value=repr(encoded[:100]),
        )
    return Checksum(algorithm, digest)


def _metadata_parse(header: str) -> dict[str, str]:
    """Upload-Metadata: comma-separated pairs of a key and its value in Base64 (UTF-8 text
    here), a space between; a value may be empty and its space left out."""
    pairs: dict[str, str] = {}
    for item in header.split(","):
        if not item.strip():
            continue
        key, _, value = item.strip().partition(" ")
        if not (key.isascii() and key.isprintable()):
            raise TusRefused(
                gettext_noop("Upload-Metadata: the key %(key)s is not printable ASCII"),
                key=repr(key[:40]),
            )
        if key in pairs:
            raise _metadata_refused(key, gettext_noop("given twice"))
        try:
            pairs[key] = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise _metadata_refused(key, gettext_noop("not the Base64 of UTF-8 text")) from None
    return pairs


def _metadata_refused(key: str, problem: str, **values) -> TusRefused:
    return TusRefused(
        gettext_noop("Upload-Metadata %(key)s: %(problem)s"),
        key=key[:40],
        problem=Words(problem, **values),
    )


def _page_spec(pairs: dict[str, str]) -> PageSpec:
    """What the metadata says about the page and its document, each value checked and named
    when it is wrong. The TPS and contest are the intake's to check."""
    for key in REQUIRED_KEYS:
        if key not in pairs:
            raise _metadata_refused(
                key,
                gettext_noop("missing; every page names %(keys)s"),
                keys=", ".join(REQUIRED_KEYS),
            )
    pages = _count(pairs, "pages", 1, None)
    return PageSpec(
        tps=pairs["tps"].strip(),
        contest=pairs["contest"].strip(),
        document=_text(pairs, "document", IDEMPOTENCY_KEY_MAX),
        page=_count(pairs, "page", 1, pages),
        pages=pages,
        filename=_text(pairs, "filename", FILENAME_MAX),
        original_sha256=_sha256(pairs, "original_sha256") or "",
        based_on=_sha256(pairs, "based_on", empty=True) if "based_on" in pairs else None,
        reason=pairs.get("reason", "").strip()[:REASON_MAX] if "reason" in pairs else "",
    )


def _count(pairs: dict[str, str], key: str, low: int, high: int | None) -> int:
    value = pairs[key].strip()
    number = _digits(value) or 0
    if number < low or (high is not None and number > high):
        upper = f"{high}" if high is not None else "…"
        raise _metadata_refused(
            key,
            gettext_noop("expected a whole number from %(low)s to %(high)s, got %(value)s"),
            low=low,
            high=upper,
            value=repr(value[:20]),
        )
    return number


def _text(pairs: dict[str, str], key: str, longest: int) -> str:
    value = pairs[key].strip()
    if not value or len(value) > longest or not value.isprintable():
        raise _metadata_refused(
            key,
            gettext_noop("expected 1 to %(longest)s printable characters, got %(value)s"),
            longest=longest,
            value=repr(value[:60]),
        )
    return value


def _sha256(pairs: dict[str, str], key: str, empty: bool = False) -> str | None:
    if key not in pairs:
        return None
    value = pairs[key].strip().lower()
    if (empty and not value) or SHA256_PATTERN.fullmatch(value):
        return value
    raise _metadata_refused(
        key,
        gettext_noop("expected a SHA-256 as 64 hexadecimal digits, got %(value)s"),
        value=repr(value[:80]),
    )
