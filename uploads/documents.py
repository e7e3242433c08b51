"""Checking and storing the pages of a result form.

A page is accepted by what its bytes are (JPEG, PNG or PDF magic numbers), never by its name or
the Content-Type a client claims; each page's SHA-256 is computed while reading it in chunks.
"""

import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile

# The first bytes of each accepted type, and the extension its stored copy gets.
SIGNATURES = (
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (b"%PDF-", "application/pdf", "pdf"),
)
EXTENSION = {content_type: extension for _, content_type, extension in SIGNATURES}


class PageRefused(ValueError):
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
        raise PageRefused("no file: send the form's pages as one or more 'file' parts")
    if len(files) > settings.UPLOAD_MAX_PAGES:
        raise PageRefused(
            f"too many pages: {len(files)}, at most {settings.UPLOAD_MAX_PAGES} per document"
        )
    return [_check_page(file, number) for number, file in enumerate(files, start=1)]


def _check_page(file: UploadedFile, number: int) -> CheckedPage:
    where = f"page {number} ({file.name})"
    limit = settings.UPLOAD_MAX_PAGE_BYTES
    if file.size == 0:
        raise PageRefused(f"{where}: the file is empty")
    if file.size > limit:
        raise PageRefused(f"{where}: {file.size} bytes, more than the {limit} allowed per page")
    digest = hashlib.sha256()
    head = b""
    for chunk in file.chunks():
        if len(head) < 8:
            head += chunk[:8]
        digest.update(chunk)
    content_type = sniff(head)
    if content_type is None:
        raise PageRefused(f"{where}: not a JPEG, PNG or PDF file (judged by its content)")
    file.seek(0)
    return CheckedPage(file, number, content_type, digest.hexdigest(), file.size)


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


def page_read(name: str) -> bytes:
    with default_storage.open(name, "rb") as stored:
        return stored.read()
