"""The bytes of tus uploads on their way in: one part file per upload, under TUS_ROOT (by default
MEDIA_ROOT/tus), in a local folder whatever the document storage is.

Bytes are written at the upload's offset and made durable (flushed and fsynced) before the
offset in the database moves on (uploads.services.tus), so a crash never leaves an offset
claiming bytes the file does not have. A crash between the fsync and the database's update
leaves bytes past the offset: the next write at that offset overwrites them and cuts the file
there.
"""

import hashlib
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

# What one read of a request body asks for: enough to stream, little held in memory.
READ_BYTES = 64 * 1024


def root() -> Path:
    return Path(settings.TUS_ROOT or Path(settings.MEDIA_ROOT) / "tus")


def part_path(upload_id: uuid.UUID) -> Path:
    return root() / upload_id.hex


def part_create(upload_id: uuid.UUID) -> None:
    """An empty part file, its name made durable in its folder."""
    folder = root()
    folder.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(part_path(upload_id), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(descriptor)
    _fsync_folder(folder)


@dataclass(frozen=True)
class Written:
    size: int  # bytes read from the body and written
    whole: bool  # the body held all the bytes it announced
    digest: bytes | None  # the checksum of what was read, when one was asked for


def part_write(
    upload_id: uuid.UUID,
    *,
    offset: int,
    read: Callable[[int], bytes],
    size: int,
    algorithm: str | None = None,
) -> Written:
    """Writes up to `size` bytes that `read(n)` returns, at `offset`, cuts the file after them
    and fsyncs it. A body that ends early (the client went away) keeps what arrived.
    FileNotFoundError when the part is not in the folder."""
    hasher = hashlib.new(algorithm) if algorithm else None
    written = 0
    with part_path(upload_id).open("r+b") as part:
        part.seek(offset)
        while written < size:
            chunk = _read(read, min(READ_BYTES, size - written))
            if not chunk:
                break
            part.write(chunk)
            if hasher is not None:
                hasher.update(chunk)
            written += len(chunk)
        part.truncate()
        part.flush()
        os.fsync(part.fileno())
    digest = hasher.digest() if hasher is not None else None
    return Written(size=written, whole=written == size, digest=digest)


def _read(read: Callable[[int], bytes], size: int) -> bytes:
    try:
        return read(size)
    except OSError:  # the connection broke mid-body (reset, timeout): what arrived is kept
        return b""


def part_cut(upload_id: uuid.UUID, *, size: int) -> None:
    """Discards whatever the part holds past `size` bytes (a chunk refused after it was read)."""
    with part_path(upload_id).open("r+b") as part:
        part.truncate(size)
        part.flush()
        os.fsync(part.fileno())


def part_open(upload_id: uuid.UUID, *, name: str, size: int) -> UploadedFile:
    """The part as the intake reads a file that came in a form."""
    return UploadedFile(part_path(upload_id).open("rb"), name=name, size=size)


def part_remove(upload_id: uuid.UUID) -> None:
    part_path(upload_id).unlink(missing_ok=True)


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
