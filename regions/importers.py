"""Reading region lists: the Kemendagri/KPU CSV and the KPU's region-list JSON folders.

Each reader yields AreaRow(code, name, level, source) one at a time, without holding a file in
memory, and raises ImportError_ with `file:line: reason` on the first row it cannot accept.
Checks that need every row (parents, duplicates) are made by the service, in the database.
"""

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from regions import codes
from regions.models import LEVEL_WORD, Level

DOTTED_CODE = re.compile(r"^\d{2}(\.\d{2}(\.\d{2}(\.\d{4}(\.\d{3})?)?)?)?$")
BPS_DESA_LENGTH = 7  # BPS numbers kecamatan with 7 digits; they cannot be joined to KPU codes


class RegionImportError(Exception):
    """A row that cannot be imported; the message starts with `file:line:`."""


@dataclass(frozen=True)
class AreaRow:
    code: str
    name: str
    level: int
    source: str  # "file:line", for error messages


def read_paths(paths: Iterable[Path]) -> Iterator[AreaRow]:
    for path in paths:
        if path.is_dir():
            yield from read_json_folder(path)
        elif path.suffix.lower() == ".json":
            yield from read_json_file(path, parent=_parent_from_file_name(path))
        elif path.exists():
            yield from read_csv(path)
        else:
            raise RegionImportError(f"{path}: no such file or folder")


def normalise_code(raw: str, where: str) -> tuple[str, int]:
    """The undotted KPU code and its level, or an error saying what is wrong with it."""
    text = raw.strip()
    if "." in text:
        if not DOTTED_CODE.match(text):
            raise RegionImportError(f"{where}: code {raw!r} is not a dotted Kemendagri code")
        text = text.replace(".", "")
    if not (text.isascii() and text.isdigit()):
        raise RegionImportError(f"{where}: code {raw!r} must contain digits only")
    if len(text) == BPS_DESA_LENGTH:
        raise RegionImportError(
            f"{where}: code {raw!r} has 7 digits, like a BPS code; BPS codes cannot be joined "
            "to KPU codes: use the Kemendagri/KPU code (2/4/6/10/13 digits)"
        )
    if not codes.is_code(text):
        raise RegionImportError(
            f"{where}: code {raw!r} has {len(text)} digits; a KPU code has 2, 4, 6, 10 or 13"
        )
    return text, codes.level_of(text)


def _row(code: str, name: str, where: str) -> AreaRow:
    clean_code, level = normalise_code(code, where)
    clean_name = " ".join(name.split())
    if not clean_name:
        raise RegionImportError(f"{where}: area {clean_code} has no name")
    if len(clean_name) > 200:
        raise RegionImportError(f"{where}: name of {clean_code} is longer than 200 characters")
    return AreaRow(clean_code, clean_name, level, where)


# --- CSV


def read_csv(path: Path) -> Iterator[AreaRow]:
    with path.open("rb") as raw:
        lines = _decoded_lines(raw, path)
        reader = csv.reader(lines)
        header = next(reader, None)
        if header is None:
            raise RegionImportError(f"{path}:1: the file is empty")
        if [column.strip().lower() for column in header] != ["kode", "nama"]:
            raise RegionImportError(
                f"{path}:1: expected the header 'kode,nama', got {','.join(header)!r}"
            )
        seen_a_row = False
        for record in reader:
            where = f"{path}:{reader.line_num}"
            if not any(cell.strip() for cell in record):
                continue
            if len(record) != 2:
                raise RegionImportError(
                    f"{where}: expected 2 columns (kode,nama), got {len(record)}"
                )
            seen_a_row = True
            yield _row(record[0], record[1], where)
        if not seen_a_row:
            raise RegionImportError(f"{path}:2: the file has a header but no rows")


def _decoded_lines(raw: io.BufferedReader, path: Path) -> Iterator[str]:
    for number, line in enumerate(raw, start=1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as error:
            raise RegionImportError(
                f"{path}:{number}: not UTF-8 (byte {line[error.start]:#04x} at column "
                f"{error.start + 1}); save the file as UTF-8"
            ) from None
        if number == 1:
            text = text.removeprefix("\ufeff")
        yield text


# --- KPU region-list JSON: one file per parent, named by its code (0.json for the top).


def read_json_folder(folder: Path) -> Iterator[AreaRow]:
    files = sorted(folder.rglob("*.json"), key=lambda path: (len(path.stem), path.stem))
    if not files:
        raise RegionImportError(f"{folder}: no .json files in this folder")
    for path in files:
        yield from read_json_file(path, parent=_parent_from_file_name(path))


def _parent_from_file_name(path: Path) -> str | None:
    stem = path.stem
    if stem == "0":
        return None
    code, _level = normalise_code(stem, f"{path}:1")
    return code


def read_json_file(path: Path, parent: str | None) -> Iterator[AreaRow]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = path.read_bytes()[: error.start].count(b"\n") + 1
        raise RegionImportError(f"{path}:{line}: not UTF-8; save the file as UTF-8") from None
    if not text.strip():
        raise RegionImportError(f"{path}:1: the file is empty")
    for line, entry in _array_entries(text, path):
        yield _json_row(entry, parent, f"{path}:{line}")


def _json_row(entry: object, parent: str | None, where: str) -> AreaRow:
    if not isinstance(entry, dict) or "kode" not in entry or "nama" not in entry:
        raise RegionImportError(f"{where}: expected an object with 'kode' and 'nama'")
    if not isinstance(entry["kode"], str | int) or not isinstance(entry["nama"], str):
        raise RegionImportError(f"{where}: 'kode' and 'nama' must be text")
    row = _row(str(entry["kode"]), entry["nama"], where)
    tingkat = entry.get("tingkat")
    if tingkat is not None and tingkat != row.level:
        raise RegionImportError(
            f"{where}: tingkat {tingkat!r} disagrees with code {row.code}, which is "
            f"{LEVEL_WORD[row.level]} (tingkat {row.level})"
        )
    expected_parent_level = Level.PROVINSI - 1 if parent is None else codes.level_of(parent)
    if row.level != expected_parent_level + 1 or (parent and not row.code.startswith(parent)):
        owner = "the top file" if parent is None else f"the file of {parent}"
        raise RegionImportError(f"{where}: code {row.code} is not a child of {owner}")
    return row


def _array_entries(text: str, path: Path) -> Iterator[tuple[int, object]]:
    """(line, value) for each element of a top-level JSON array, with line numbers for errors."""
    decoder = json.JSONDecoder()
    lines = _LineCounter(text)
    position = _skip_space(text, 0)
    if text[position : position + 1] != "[":
        raise RegionImportError(f"{path}:{lines.at(position)}: expected a JSON array of areas")
    position = _skip_space(text, position + 1)
    if text[position : position + 1] == "]":
        raise RegionImportError(f"{path}:1: the array is empty")
    while True:
        try:
            value, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as error:
            raise RegionImportError(f"{path}:{error.lineno}: invalid JSON: {error.msg}") from None
        yield lines.at(position), value
        position = _skip_space(text, end)
        if position < len(text) and text[position] == ",":
            position = _skip_space(text, position + 1)
            continue
        if position < len(text) and text[position] == "]":
            if text[position + 1 :].strip():
                raise RegionImportError(f"{path}:{lines.at(position)}: text after the array")
            return
        raise RegionImportError(f"{path}:{lines.at(position)}: invalid JSON: expected ',' or ']'")


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


class _LineCounter:
    """Line numbers of positions met in increasing order.

    Each newline is counted once, so a file of n entries costs n, not n^2 as counting from the
    start for every entry would.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.position = 0
        self.line = 1

    def at(self, position: int) -> int:
        self.line += self.text.count("\n", self.position, position)
        self.position = position
        return self.line
