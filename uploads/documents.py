"""Checking and storing the pages of a result form.

A page is accepted by what its bytes are, never by its name or the Content-Type a client claims:
its magic numbers say which format it claims to be (JPEG, PNG or PDF), then it must decode as
that format. An image must open and decode within a pixel limit (a small file may declare a
gigantic canvas); a PDF must parse and carry no active content (scripts, actions run on opening,
launched programs, attached files). Each page's SHA-256 is computed while reading it in chunks.
"""

import hashlib
from dataclasses import dataclass

import pypdf
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.http import FileResponse
from django.utils.translation import gettext_noop
from PIL import Image

from uploads.refusals import Refused, Words

# The first bytes of each accepted type, and the extension its stored copy gets.
SIGNATURES = (
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (b"%PDF-", "application/pdf", "pdf"),
)
EXTENSION = {content_type: extension for _, content_type, extension in SIGNATURES}
PILLOW_FORMAT = {"image/jpeg": "JPEG", "image/png": "PNG"}
# What a PDF viewer may run or open by itself: scripts, actions on opening or on events,
# launched programs, other files it fetches or carries, forms that send data, XFA forms.
ACTIVE_PDF_KEYS = frozenset(
    {
        "/JavaScript",
        "/JS",
        "/OpenAction",
        "/AA",
        "/Launch",
        "/EmbeddedFile",
        "/EmbeddedFiles",
        "/RichMedia",
        "/XFA",
        "/SubmitForm",
        "/ImportData",
        "/GoToE",
        "/GoToR",
    }
)
# Objects a PDF page may hold before we stop reading it: a scan has a handful per page.
PDF_MAX_OBJECTS = 20_000
# A file name shown in an error is cut to this many characters.
NAME_SHOWN = 80


class PageRefused(Refused):
    """A page that cannot be accepted; the message says which and why."""


@dataclass
class CheckedPage:
    file: UploadedFile
    number: int
    content_type: str
    sha256: str
    size: int


def sniff(head: bytes) -> str | None:
    for signature, content_type, _ in SIGNATURES:
        if head.startswith(signature):
            return content_type
    return None


def pages_check(files: list[UploadedFile]) -> list[CheckedPage]:
    """Checks every page before anything is written; raises PageRefused on the first bad one."""
    if not files:
        raise PageRefused(
            gettext_noop("no file: send the form's pages as one or more 'file' parts")
        )
    pages_count_check(len(files))
    return [_check_page(file, number) for number, file in enumerate(files, start=1)]


def pages_count_check(pages: int) -> None:
    """Refuses more pages than a document may have (UPLOAD_MAX_PAGES)."""
    if pages > settings.UPLOAD_MAX_PAGES:
        raise PageRefused(
            gettext_noop("too many pages: %(pages)s, at most %(limit)s per document"),
            pages=pages,
            limit=settings.UPLOAD_MAX_PAGES,
        )


def page_size_check(*, number: int, name: str | None, size: int) -> None:
    """Refuses an empty page (400) and one larger than UPLOAD_MAX_PAGE_BYTES (413: the intake
    API answers it 400 with the rest of the document's faults; tus before any byte is sent)."""
    where = page_where(number, name)
    limit = settings.UPLOAD_MAX_PAGE_BYTES
    if size == 0:
        raise PageRefused(gettext_noop("%(where)s: the file is empty"), where=where)
    if size > limit:
        raise PageRefused(
            gettext_noop("%(where)s: %(size)s bytes, more than the %(limit)s allowed per page"),
            status=413,
            where=where,
            size=size,
            limit=limit,
        )


def _check_page(file: UploadedFile, number: int) -> CheckedPage:
    where = page_where(number, file.name)
    size = file.size or 0
    page_size_check(number=number, name=file.name, size=size)
    digest = hashlib.sha256()
    head = b""
    for chunk in file.chunks():
        if len(head) < 8:
            head += chunk[:8]
        digest.update(chunk)
    content_type = sniff(head)
    if content_type is None:
        raise PageRefused(
            gettext_noop("%(where)s: not a JPEG, PNG or PDF file (judged by its content)"),
            where=where,
        )
    file.seek(0)
    if content_type == "application/pdf":
        pdf_check(file, where)
    else:
        image_check(file, where, content_type)
    file.seek(0)
    return CheckedPage(file, number, content_type, digest.hexdigest(), size)


def page_where(number: int, name: str | None) -> Words:
    name = name or ""
    shown = name if len(name) <= NAME_SHOWN else f"{name[:NAME_SHOWN]}…"
    return Words(gettext_noop("page %(number)s (%(name)s)"), number=number, name=shown)


def image_check(file: UploadedFile, where: Words, content_type: str) -> None:
    """The image opens as its format, declares at most UPLOAD_MAX_PAGE_PIXELS, and decodes.

    The size is read from the header before any pixel is decoded, so a file declaring a huge
    canvas costs nothing. A JPEG is then decoded at 1/8 scale (its whole data is still read),
    a PNG in full (at most the pixel limit).
    """
    kind = PILLOW_FORMAT[content_type]
    limit = settings.UPLOAD_MAX_PAGE_PIXELS
    try:
        file.seek(0)
        with Image.open(file, formats=[kind]) as image:
            width, height = image.size
            if width * height > limit:
                raise PageRefused(
                    gettext_noop(
                        "%(where)s: %(width)s x %(height)s pixels, more than the %(limit)s "
                        "allowed per page; send a smaller photo"
                    ),
                    where=where,
                    width=width,
                    height=height,
                    limit=limit,
                )
            image.verify()
        file.seek(0)
        with Image.open(file, formats=[kind]) as image:
            image.draft("RGB", (max(width // 8, 1), max(height // 8, 1)))
            image.load()
    except PageRefused:
        raise
    except Image.DecompressionBombError as error:
        raise PageRefused(
            gettext_noop(
                "%(where)s: more pixels than the %(limit)s allowed per page (%(reason)s); "
                "send a smaller photo"
            ),
            where=where,
            limit=limit,
            reason=_reason(error),
        ) from None
    # A decoder fed hostile bytes may fail in any way (OSError, SyntaxError, ValueError, a
    # decompression bomb, ...): whatever it is, the page is not a readable image.
    except Exception as error:
        raise PageRefused(
            gettext_noop("%(where)s: not a readable %(kind)s image (%(reason)s)"),
            where=where,
            kind=kind,
            reason=_reason(error),
        ) from None


def pdf_check(file: UploadedFile, where: Words) -> None:
    """The PDF parses, has pages, is not encrypted, and nothing in it is active content."""
    try:
        file.seek(0)
        reader = pypdf.PdfReader(file)
        if reader.is_encrypted:
            raise PageRefused(
                gettext_noop("%(where)s: the PDF is encrypted; send it without a password"),
                where=where,
            )
        if len(reader.pages) == 0:
            raise PageRefused(gettext_noop("%(where)s: the PDF has no pages"), where=where)
        active = _active_content(reader)
    except PageRefused:
        raise
    # pypdf reading hostile bytes may fail in any way (PdfReadError, KeyError, ValueError,
    # RecursionError, ...): whatever it is, the page is not a readable PDF.
    except Exception as error:
        raise PageRefused(
            gettext_noop("%(where)s: not a readable PDF (%(reason)s)"),
            where=where,
            reason=_reason(error),
        ) from None
    if active:
        raise PageRefused(
            gettext_noop(
                "%(where)s: the PDF carries active content (%(found)s); send a plain scan or photo"
            ),
            where=where,
            found=", ".join(sorted(active)),
        )


def _active_content(reader: pypdf.PdfReader) -> set[str]:
    """The active-content names of every object reachable from the trailer (keys, and action
    types such as /S /JavaScript), following references once each."""
    found: set[str] = set()
    seen: set[tuple[int, int]] = set()
    pending: list = [reader.trailer]
    while pending:
        item = pending.pop()
        if isinstance(item, pypdf.generic.IndirectObject):
            if (item.idnum, item.generation) in seen:
                continue
            seen.add((item.idnum, item.generation))
            if len(seen) > PDF_MAX_OBJECTS:
                raise ValueError(f"more than {PDF_MAX_OBJECTS} objects")
            item = item.get_object()
        if isinstance(item, pypdf.generic.DictionaryObject):
            found |= ACTIVE_PDF_KEYS & set(item.keys())
            if item.get("/S") in ACTIVE_PDF_KEYS:
                found.add(str(item["/S"]))
            pending.extend(item.values())
        elif isinstance(item, pypdf.generic.ArrayObject):
            pending.extend(item)
    return found


def _reason(error: Exception) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[:200]


def document_sha256(pages: list[CheckedPage]) -> str:
    """SHA-256 of the pages' bytes in order: for one page, the file's own SHA-256."""
    if len(pages) == 1:
        return pages[0].sha256
    digest = hashlib.sha256()
    for page in pages:
        page.file.seek(0)
        for chunk in page.file.chunks():
            digest.update(chunk)
        page.file.seek(0)
    return digest.hexdigest()


def page_store(*, page: CheckedPage, kind: str, tps_code: str, sha256: str) -> str:
    """Saves a page and returns its storage name; an existing name is never overwritten."""
    extension = EXTENSION[page.content_type]
    name = f"documents/{kind}/{tps_code}/{sha256[:16]}-{page.number:02d}.{extension}"
    return default_storage.save(name, page.file)


# A stored page is served as what it is and nothing else: no script in it may run (sandbox: an
# opaque origin, so nothing it does reaches our cookies or pages), no browser may take it for
# another type (nosniff), and a PDF is downloaded rather than opened in a viewer of our origin.
DOCUMENT_CSP = "sandbox"


def page_response(*, name: str, content_type: str, filename: str) -> FileResponse:
    """The stored page `name` as an answer, with the headers that keep its content inert."""
    response = FileResponse(
        default_storage.open(name, "rb"),
        content_type=content_type,
        as_attachment=content_type == "application/pdf",
        filename=filename,
    )
    response["Content-Security-Policy"] = DOCUMENT_CSP
    response["X-Content-Type-Options"] = "nosniff"
    return response


def page_read(name: str) -> bytes:
    with default_storage.open(name, "rb") as stored:
        return stored.read()
