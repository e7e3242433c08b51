"""Small but real page files for tests: images that decode and PDFs that parse, of an exact size,
different on every call (so each is a new document)."""

import hashlib
import io
import random
import struct
import uuid
import zlib

import pypdf
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, ImageDraw
from PIL.TiffImagePlugin import IFDRational

# Which format page_bytes makes: the magic numbers the intake sniffs first.
JPEG_HEAD = b"\xff\xd8\xff"
PNG_HEAD = b"\x89PNG\r\n\x1a\n"
PDF_HEAD = b"%PDF-"


def page_bytes(head: bytes = JPEG_HEAD, size: int = 2048) -> bytes:
    """A real JPEG, PNG or PDF (by `head`) of exactly `size` bytes, unique to this call."""
    unique = uuid.uuid4()
    if head == PDF_HEAD:
        return _pdf(unique.hex, size)
    colour = tuple(unique.bytes[:3])
    image = Image.new("RGB", (16, 16), colour)
    image.putpixel((unique.bytes[3] % 16, unique.bytes[4] % 16), (255, 255, 255))
    encoded = io.BytesIO()
    image.save(encoded, "PNG" if head == PNG_HEAD else "JPEG", quality=50)
    padded = _png_padded if head == PNG_HEAD else _jpeg_padded
    return padded(encoded.getvalue(), size)


def _jpeg_padded(data: bytes, size: int) -> bytes:
    """Comment segments (FF FE, at most 65,533 bytes each) right after the start marker fill
    the file up to size."""
    missing = size - len(data)
    assert missing >= 4, f"a JPEG page of {size} bytes cannot be made"
    segments = []
    while missing:
        # Each segment costs 4 bytes of marker and length; never leave fewer than 4 for the next.
        body = min(missing - 4, 65533)
        if 0 < missing - 4 - body < 4:
            body -= 4
        segments.append(b"\xff\xfe" + struct.pack(">H", body + 2) + b"x" * body)
        missing -= body + 4
    return data[:2] + b"".join(segments) + data[2:]


def _png_padded(data: bytes, size: int) -> bytes:
    """A tEXt chunk before IEND fills the file up to size."""
    text = b"Comment\x00" + b"x" * (size - len(data) - 12 - 8)
    assert len(text) >= 8, f"a PNG page of {size} bytes cannot be made"
    chunk = b"tEXt" + text
    extra = struct.pack(">I", len(text)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return data[:-12] + extra + data[-12:]


def _pdf(unique: str, size: int) -> bytes:
    """A one-page blank PDF whose title (unique, then padding) makes it `size` bytes."""

    def written(title: str) -> bytes:
        writer = pypdf.PdfWriter()
        writer.add_blank_page(595, 842)
        writer.add_metadata({"/Title": title})
        out = io.BytesIO()
        writer.write(out)
        return out.getvalue()

    padding = 0
    for _ in range(3):  # the digits of the final offset may grow with the padding: converge
        data = written(unique + "x" * padding)
        padding += size - len(data)
        assert padding >= 0, f"a PDF page of {size} bytes cannot be made"
    assert len(data) == size
    return data


def page_file(data: bytes | None = None, name: str = "c-hasil.jpg", content_type="image/jpeg"):
    return SimpleUploadedFile(name, data if data is not None else page_bytes(), content_type)


def sha256(*pages: bytes) -> str:
    return hashlib.sha256(b"".join(pages)).hexdigest()


def phone_photo(
    seed: int,
    size: tuple[int, int] = (4032, 3024),
    orientation: int = 1,
    taken_at: str = "",
    zone: str = "",
    gps: tuple[tuple, tuple] | None = None,
) -> bytes:
    """A phone's photo of a result form, as a 12 MP camera makes one: about 1.5 MB of JPEG,
    ruled lines of dark marks on grey paper with the grain of a sensor, different per seed.
    With EXIF when asked: an orientation (6: the camera was held upright, the pixels lie on
    their side), when it was taken (`2024:11:27 13:05:10`, with its zone `+08:00`), and where
    (((1, 27, 22.04), "S"), ((116, 24, 7.56), "E")): degrees, minutes, seconds and reference)."""
    width, height = size
    rng = random.Random(seed)
    paper = Image.new("L", size, 225)
    draw = ImageDraw.Draw(paper)
    for y in range(height // 20, height, height // 40):
        x = width // 12
        while x < width * 11 // 12:
            length = rng.randrange(width // 60, width // 12)
            draw.rectangle([x, y, x + length, y + height // 120], fill=60)
            x += length + rng.randrange(width // 100, width // 30)
    grain = Image.effect_noise(size, 64)
    image = Image.blend(paper, grain, 0.05).convert("RGB")
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    if taken_at:
        camera = exif.get_ifd(0x8769)
        camera[0x9003] = taken_at
        if zone:
            camera[0x9011] = zone
    if gps:
        (latitude, north_south), (longitude, east_west) = gps
        place = exif.get_ifd(0x8825)
        place[1], place[3] = north_south, east_west
        place[2] = tuple(IFDRational(round(part * 100), 100) for part in latitude)
        place[4] = tuple(IFDRational(round(part * 100), 100) for part in longitude)
    encoded = io.BytesIO()
    image.save(encoded, "JPEG", quality=85, exif=exif)
    return encoded.getvalue()
