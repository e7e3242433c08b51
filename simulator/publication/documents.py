"""The pages of a PUT: its multipart body, parsed with python-multipart, and each page's type."""

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError, ParseError
from python_multipart.multipart import parse_options_header

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

PAGE_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "application/pdf": "pdf"}
MAGIC_BYTES = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"%PDF-", "application/pdf"),
)


class DocumentError(Exception):
    """A PUT that cannot be accepted as it is; status says whether it is malformed (400) or
    refused (422)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Part:
    name: str
    content_type: str
    data: bytes


class PartCollector:
    """python-multipart's callbacks, gathering the parts of one body in memory."""

    def __init__(self) -> None:
        self.parts: list[Part] = []
        self.in_headers = self.ended = False
        self._headers: dict[str, str] = {}
        self._name, self._value = bytearray(), bytearray()
        self._data: list[bytes] = []

    def callbacks(self) -> "MultipartCallbacks":
        return {
            "on_part_begin": self.part_begin,
            "on_header_field": self.header_field,
            "on_header_value": self.header_value,
            "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished,
            "on_part_data": self.part_data,
            "on_part_end": self.part_end,
            "on_end": self.end,
        }

    def part_begin(self) -> None:
        self.in_headers = True
        self._headers, self._data = {}, []

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self._name += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def header_end(self) -> None:
        name = self._name.decode("latin-1").strip().lower()
        self._headers[name] = self._value.decode("latin-1").strip()
        self._name.clear()
        self._value.clear()

    def headers_finished(self) -> None:
        self.in_headers = False

    def part_data(self, data: bytes, start: int, end: int) -> None:
        self._data.append(data[start:end])

    def part_end(self) -> None:
        _, disposition = parse_options_header(self._headers.get("content-disposition", ""))
        content_type, _ = parse_options_header(
            self._headers.get("content-type", "application/octet-stream")
        )
        name = disposition.get(b"name", b"").decode("utf-8", "replace")
        self.parts.append(Part(name, content_type.decode("latin-1"), b"".join(self._data)))

    def end(self) -> None:
        self.ended = True


def multipart_parse(content_type: str, body: bytes) -> list[Part]:
    kind, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise DocumentError(400, "body must be multipart/form-data with a boundary")
    collector = PartCollector()
    try:
        MultipartParser(boundary, collector.callbacks()).write(body)
    except ParseError as error:
        if collector.in_headers:
            line = line_at(body, error.offset)
            raise DocumentError(400, f"unparseable multipart header: {line!r}") from error
        raise DocumentError(400, "unparseable multipart part") from error
    except FormParserError as error:  # a boundary longer than any client sends
        raise DocumentError(400, "body must be multipart/form-data with a boundary") from error
    if not collector.ended:
        raise DocumentError(400, "unparseable multipart body (no closing boundary)")
    return collector.parts


def line_at(body: bytes, offset: int) -> str:
    """The line of body around offset (the whole body when offset is unknown, -1)."""
    start = body.rfind(b"\n", 0, max(offset, 0)) + 1
    end = body.find(b"\r", start)
    return body[start : end if end >= 0 else None].decode("utf-8", "replace")


def page_type(part: Part) -> str:
    """The declared type when it is one we take, else the type the first bytes show."""
    if not part.data:
        raise DocumentError(422, "halaman kosong (empty page)")
    if part.content_type in PAGE_EXTENSIONS:
        return part.content_type
    for magic, content_type in MAGIC_BYTES:
        if part.data.startswith(magic):
            return content_type
    raise DocumentError(422, "format tidak didukung (a page is not JPEG, PNG or PDF)")


def pages_parse(content_type: str, body: bytes) -> list[tuple[str, bytes]]:
    """(content type, bytes) of each part named `file`."""
    files = [part for part in multipart_parse(content_type, body) if part.name == "file"]
    if not files:
        raise DocumentError(400, "no part named 'file'")
    return [(page_type(part), part.data) for part in files]


def page_digests(content_type: str, body: bytes) -> list[str]:
    """The SHA-256 of each page of a PUT (none when it cannot be read)."""
    try:
        return [hashlib.sha256(data).hexdigest() for _, data in pages_parse(content_type, body)]
    except DocumentError:
        return []
