"""Small but real page files for tests: the magic numbers the intake sniffs, plus unique bytes."""

import hashlib
import uuid

from django.core.files.uploadedfile import SimpleUploadedFile

JPEG_HEAD = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
PDF_HEAD = b"%PDF-1.7\n"


def page_bytes(head: bytes = JPEG_HEAD, size: int = 2048) -> bytes:
    """Bytes that start like the real format and differ on every call."""
    body = uuid.uuid4().bytes * (size // 16 + 1)
    return (head + body)[:size]


def page_file(data: bytes | None = None, name: str = "c-hasil.jpg", content_type="image/jpeg"):
    return SimpleUploadedFile(name, data if data is not None else page_bytes(), content_type)


def sha256(*pages: bytes) -> str:
    return hashlib.sha256(b"".join(pages)).hexdigest()
