"""Documents are decoded, not only sniffed, and served so that nothing in them can run.

Each hostile page below was accepted before (a signature followed by HTML, a PDF that runs
JavaScript on opening, a PNG declaring 100,000 x 100,000 pixels); each is now a 400 naming the
page, and leaves nothing behind.
"""

import io
import struct
import time
import tracemalloc
import zlib
from pathlib import Path

import pypdf
import pytest

from accounts.services import api_token_create
from tests.documents import JPEG_HEAD, PDF_HEAD, PNG_HEAD, page_bytes, page_file
from tests.world import LABANGKA_TPS, move, person
from uploads.models import Document, Page, Status, UploadEvent
from uploads.services.intake import upload_receive

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("small_world")]


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width x height pixels (its data is a few bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def pdf_written(build) -> bytes:
    writer = pypdf.PdfWriter()
    writer.add_blank_page(595, 842)
    build(writer)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def open_action(writer: pypdf.PdfWriter, kind: str, **entries: str) -> None:
    """An action the viewer runs on opening the file."""
    from pypdf.generic import DictionaryObject, NameObject, TextStringObject

    action = DictionaryObject({NameObject("/S"): NameObject(kind)})
    for name, value in entries.items():
        action[NameObject(f"/{name}")] = TextStringObject(value)
    writer._root_object[NameObject("/OpenAction")] = writer._add_object(action)


def pdf_opening_javascript(writer: pypdf.PdfWriter) -> None:
    open_action(writer, "/JavaScript", JS="app.alert('halo');")


def pdf_with_open_action(writer: pypdf.PdfWriter) -> None:
    open_action(writer, "/Launch", F="calc.exe")


def pdf_with_attachment(writer: pypdf.PdfWriter) -> None:
    writer.add_attachment("c-hasil.html", b"<script>alert(1)</script>")


def pdf_encrypted(writer: pypdf.PdfWriter) -> None:
    writer.encrypt("rahasia")


def truncated_jpeg() -> bytes:
    data = page_bytes(JPEG_HEAD, 4000)
    return data[: len(data) - 200]


HOSTILE = {
    "jpeg signature then html": (
        JPEG_HEAD + b"<html><script>alert(document.cookie)</script></html>",
        "not a readable JPEG image",
    ),
    "png signature then html": (
        PNG_HEAD + b"<html><script>alert(1)</script></html>",
        "not a readable PNG image",
    ),
    "pdf signature then html": (
        PDF_HEAD + b"1.7\n<html><script>alert(1)</script></html>",
        "not a readable PDF",
    ),
    "truncated jpeg": (truncated_jpeg(), "not a readable JPEG image"),
    "pdf running javascript": (
        pdf_written(pdf_opening_javascript),
        "the PDF carries active content (/JS, /JavaScript, /OpenAction)",
    ),
    "pdf hiding its javascript behind escaped names": (
        pdf_written(pdf_opening_javascript).replace(b"/JavaScript", b"/J#61vaScript"),
        "the PDF carries active content (/JS, /JavaScript, /OpenAction)",
    ),
    "pdf launching a program on opening": (
        pdf_written(pdf_with_open_action),
        "the PDF carries active content (/Launch, /OpenAction)",
    ),
    "pdf carrying a file": (
        pdf_written(pdf_with_attachment),
        "the PDF carries active content (/EmbeddedFiles)",
    ),
    "encrypted pdf": (
        pdf_written(pdf_encrypted),
        "the PDF is encrypted",
    ),
}


@pytest.fixture
def kpu(db):
    # No password: hashing one costs about a second, and a token or force_login needs none.
    return person("kpu", "staff")


@pytest.fixture
def token(kpu):
    return api_token_create(username=kpu.username)


def post(client, token, *files):
    data = {"tps": LABANGKA_TPS, "contest": "pkwkk", "file": list(files)}
    return client.post("/api/uploads/", data, headers={"Authorization": f"Token {token}"})


def nothing_left(media) -> bool:
    files = [path for path in media.rglob("*") if path.is_file()] if media.exists() else []
    return (
        not Document.objects.exists()
        and not Page.objects.exists()
        and not UploadEvent.objects.exists()
        and files == []
    )


@pytest.mark.parametrize("case", HOSTILE)
def test_a_page_that_does_not_decode_is_refused_naming_it_and_leaves_nothing(
    client, token, settings, case
):
    data, reason = HOSTILE[case]
    response = post(client, token, page_file(page_bytes()), page_file(data, "hostile.bin"))
    assert response.status_code == 400
    assert response.json()["error"].startswith(f"page 2 (hostile.bin): {reason}")
    assert nothing_left(Path(settings.MEDIA_ROOT))


def test_a_png_declaring_100000_by_100000_pixels_is_refused_without_decoding_it(client, token):
    data = png_declaring(100_000, 100_000)
    tracemalloc.start()
    started = time.perf_counter()
    response = post(client, token, page_file(data, "bom.png", "image/png"))
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert response.status_code == 400
    error = response.json()["error"]
    assert error.startswith("page 1 (bom.png): more pixels than the 50000000 allowed per page")
    # Decoding it would take 30 GB; refusing it takes what reading the header does.
    assert peak < 20 * 1024 * 1024 and elapsed < 5


def test_an_image_over_the_pixel_limit_is_refused_with_its_size(client, token, settings):
    settings.UPLOAD_MAX_PAGE_PIXELS = 200
    response = post(client, token, page_file(page_bytes(PNG_HEAD), "p.png", "image/png"))
    assert response.status_code == 400
    assert response.json()["error"] == (
        "page 1 (p.png): 16 x 16 pixels, more than the 200 allowed per page; send a smaller photo"
    )


def test_a_plain_scan_as_pdf_and_real_photos_are_taken(client, token):
    pages = [page_bytes(JPEG_HEAD), page_bytes(PNG_HEAD), page_bytes(PDF_HEAD, 3000)]
    response = post(client, token, *(page_file(data, f"p{n}") for n, data in enumerate(pages)))
    assert response.status_code == 201


def test_a_long_file_name_is_cut_in_the_message(client, token):
    name = "x" * 300 + ".jpg"
    response = post(client, token, page_file(b"GIF89a", name))
    assert response.json()["error"].startswith(f"page 1 ({'x' * 80}…): not a JPEG")


# --- Serving


@pytest.fixture
def published(kpu):
    pages = [page_bytes(JPEG_HEAD), page_bytes(PDF_HEAD)]
    files = [page_file(pages[0]), page_file(pages[1], "p2.pdf", "application/pdf")]
    receipt = upload_receive(tps_code=LABANGKA_TPS, kind="pkwkk", files=files, user=kpu)
    move(LABANGKA_TPS, Status.PUBLISHED)
    return list(receipt.document.pages.order_by("number"))


def assert_inert(response, attachment: bool) -> None:
    assert response.status_code == 200
    assert response["Content-Security-Policy"] == "sandbox"
    assert response["X-Content-Type-Options"] == "nosniff"
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment;" if attachment else "inline;")


def test_published_pages_are_served_sandboxed_and_a_pdf_as_a_download(client, published):
    jpeg, pdf = published
    assert_inert(client.get(f"/api/dokumen/{jpeg.pk}.jpg"), attachment=False)
    assert_inert(client.get(f"/api/dokumen/{pdf.pk}.pdf"), attachment=True)


def test_staff_read_stored_pages_sandboxed_and_a_pdf_as_a_download(client, published):
    client.force_login(person("kpu-2", "staff"))
    jpeg, pdf = published
    assert_inert(client.get(f"/dokumen/halaman/{jpeg.pk}/"), attachment=False)
    assert_inert(client.get(f"/dokumen/halaman/{pdf.pk}/"), attachment=True)
