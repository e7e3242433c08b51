"""Reading region lists (the Kemendagri/KPU CSV and the KPU's region-list JSON folders) and the
KPU's candidate lists (pilkada/paslon/<contest>.json).

Each region reader yields AreaRow(code, name, level, source) one at a time, without holding a
file in memory, and raises RegionImportError with `file:line: reason` on the first row it cannot
accept. Checks that need every row (parents, duplicates) are made by the service, in the
database. The candidate reader checks a whole file (a few thousand entries at most) and raises
CandidateImportError with `file:line: key: reason`, the line of the offending key.
"""

import csv
import datetime
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from regions import codes
from regions.models import LEVEL_WORD, Level
from regions.zones import WIB

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


# --- The KPU's candidate lists: {"<area code>": {"<candidate id>": {"nama", "nomor_urut",
# "warna", "ts"}}}, one file per contest kind (docs/regions.md).

CANDIDATE_FIELDS = ("nama", "nomor_urut", "warna", "ts")
# The KPU's files key candidates (and their votes, beside `progres`) by numeric ids: a client
# tells a candidate's key from `progres` by its digits.
CANDIDATE_ID = re.compile(r"[0-9]{1,20}")
CANDIDATE_NAME_MAX = 500
BALLOT_NUMBER_MAX = 32767
COLOUR = re.compile(r"#(?:[0-9A-Fa-f]{3}){1,2}")
# `ts` as the KPU writes it (local time in WIB), or ISO 8601 with its offset.
TIME = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:?\d\d)?")


class CandidateImportError(Exception):
    """A candidate list that cannot be imported; the message starts with `file:line:`."""


# Makes the error of a candidate's field: (key, reason) -> the error at that key's line.
Fail = Callable[[str, str], CandidateImportError]


@dataclass(frozen=True)
class CandidateRow:
    area_code: str
    kpu_id: str
    name: str
    number: int
    colour: str
    listed_at: datetime.datetime
    area_source: str  # "file:line: code" of the area's key, for errors found in the database


def read_candidates(path: Path) -> list[CandidateRow]:
    """The candidates of a file in the KPU's shape, every one checked."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CandidateImportError(f"{path}: no such file") from None
    except OSError as error:
        raise CandidateImportError(f"{path}: cannot be read: {error.strerror}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise CandidateImportError(f"{path}:{line}: not UTF-8; save the file as UTF-8") from None
    return parse_candidates(text, name=str(path))


def parse_candidates(text: str, *, name: str) -> list[CandidateRow]:
    """The candidates of a text in the KPU's shape; name: the file's, for the messages."""
    if not text.strip():
        raise CandidateImportError(f"{name}:1: the file is empty")
    areas = _KeyedJson(text, name).document()
    if not areas.members:
        raise CandidateImportError(f"{name}:1: no areas in the file")
    rows: list[CandidateRow] = []
    for area in _distinct(areas, name, ""):
        rows += _area_candidates(area, name)
    return rows


@dataclass(frozen=True)
class _Member:
    """A key of a JSON object with the line it stands on, and its value: an _Object for an
    object read with its keys' lines, else the decoded value."""

    key: str
    line: int
    value: object


@dataclass(frozen=True)
class _Object:
    members: list[_Member]


def _distinct(found: _Object, name: str, prefix: str) -> Iterator[_Member]:
    """The members in order, each checked not to repeat a key before it (JSON allows that; the
    KPU's keys are ids), so that problems are met in the file's order."""
    first: dict[str, int] = {}
    for member in found.members:
        if member.key in first:
            raise CandidateImportError(
                f"{name}:{member.line}: {prefix}{member.key}: the same key again "
                f"(first at line {first[member.key]})"
            )
        first[member.key] = member.line
        yield member


def _area_candidates(area: _Member, name: str) -> list[CandidateRow]:
    where = f"{name}:{area.line}: {area.key}"
    if not codes.is_code(area.key):
        raise CandidateImportError(f"{where}: not an area code (2, 4, 6, 10 or 13 digits)")
    if not isinstance(area.value, _Object):
        raise CandidateImportError(f"{where}: expected an object of candidates by their id")
    if not area.value.members:
        raise CandidateImportError(f"{where}: no candidates")
    numbers: dict[int, tuple[str, int]] = {}
    rows = []
    for candidate in _distinct(area.value, name, f"{area.key}."):
        row, number_line = _candidate(candidate, area, name)
        if row.number in numbers:
            other, other_line = numbers[row.number]
            raise CandidateImportError(
                f"{name}:{number_line}: {area.key}.{candidate.key}.nomor_urut: {row.number} is "
                f"also the number of {other} (line {other_line})"
            )
        numbers[row.number] = candidate.key, number_line
        rows.append(row)
    return rows


def _candidate(candidate: _Member, area: _Member, name: str) -> tuple[CandidateRow, int]:
    """The row, and the line of its nomor_urut."""
    path = f"{area.key}.{candidate.key}"
    if not CANDIDATE_ID.fullmatch(candidate.key):
        raise CandidateImportError(
            f"{name}:{candidate.line}: {path}: a candidate's id is digits (at most 20), "
            "like 1001084"
        )
    if not isinstance(candidate.value, _Object):
        raise CandidateImportError(
            f"{name}:{candidate.line}: {path}: expected an object with nama, nomor_urut, warna "
            "and ts"
        )
    # Other keys are left out, as clients of the KPU's files leave out what they do not know.
    fields = {field.key: field for field in _distinct(candidate.value, name, f"{path}.")}
    missing = [key for key in CANDIDATE_FIELDS if key not in fields]
    if missing:
        raise CandidateImportError(f"{name}:{candidate.line}: {path}: missing {', '.join(missing)}")

    def fail(key: str, reason: str) -> CandidateImportError:
        return CandidateImportError(f"{name}:{fields[key].line}: {path}.{key}: {reason}")

    row = CandidateRow(
        area_code=area.key,
        kpu_id=candidate.key,
        name=_candidate_name(fields["nama"].value, fail),
        number=_ballot_number(fields["nomor_urut"].value, fail),
        colour=_colour(fields["warna"].value, fail),
        listed_at=_listed_at(fields["ts"].value, fail),
        area_source=f"{name}:{area.line}: {area.key}",
    )
    return row, fields["nomor_urut"].line


def _got(value: object) -> str:
    """A value as the file has it, for a message."""
    return "an object" if isinstance(value, _Object) else json.dumps(value, ensure_ascii=False)[:60]


def _candidate_name(value: object, fail: Fail) -> str:
    if not isinstance(value, str):
        raise fail("nama", f"expected the name as text, got {_got(value)}")
    clean = " ".join(value.split())
    if not clean:
        raise fail("nama", "the name is empty")
    if len(clean) > CANDIDATE_NAME_MAX:
        raise fail("nama", f"the name is longer than {CANDIDATE_NAME_MAX} characters")
    return clean


def _ballot_number(value: object, fail: Fail) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= BALLOT_NUMBER_MAX:
        raise fail(
            "nomor_urut",
            f"expected a whole number from 1 to {BALLOT_NUMBER_MAX}, got {_got(value)}",
        )
    return value


def _colour(value: object, fail: Fail) -> str:
    if not isinstance(value, str) or not COLOUR.fullmatch(value):
        raise fail("warna", f'expected a colour like "#1F77B4", got {_got(value)}')
    return value


def _listed_at(value: object, fail: Fail) -> datetime.datetime:
    moment = None
    if isinstance(value, str) and TIME.fullmatch(value):
        try:
            moment = datetime.datetime.fromisoformat(value)
        except ValueError:
            moment = None
    if moment is None:
        raise fail(
            "ts",
            'expected a time like "2024-09-23 10:00:00" (WIB, as the KPU writes it) or one '
            f"with its offset, got {_got(value)}",
        )
    return moment if moment.tzinfo else moment.replace(tzinfo=WIB.info)


class _KeyedJson:
    """A JSON document whose objects, three deep (areas, candidates, fields), are read with the
    line of each key, so that an error names the line of the key it is about; values below
    that depth, and all parsing of values, are the json module's."""

    DEPTH = 3

    def __init__(self, text: str, name: str) -> None:
        self.text = text
        self.name = name
        self.lines = _LineCounter(text)
        self.decoder = json.JSONDecoder()

    def document(self) -> _Object:
        position = _skip_space(self.text, 0)
        if self.text[position : position + 1] != "{":
            raise self._error(
                position,
                'expected a JSON object of areas: {"<area code>": {"<candidate id>": {...}}}',
            )
        members, end = self._object(position, self.DEPTH)
        end = _skip_space(self.text, end)
        if end < len(self.text):
            raise self._error(end, "text after the object")
        return members

    def _object(self, position: int, depth: int) -> tuple[_Object, int]:
        """The object starting at position, and the position after it."""
        members: list[_Member] = []
        position = _skip_space(self.text, position + 1)
        if self.text[position : position + 1] == "}":
            return _Object(members), position + 1
        while True:
            key, end = self._value(position)
            if not isinstance(key, str):
                raise self._error(position, "invalid JSON: expected a key in double quotes")
            line = self.lines.at(position)
            end = _skip_space(self.text, end)
            if self.text[end : end + 1] != ":":
                raise self._error(end, "invalid JSON: expected ':' after a key")
            start = _skip_space(self.text, end + 1)
            value: object
            if depth > 1 and self.text[start : start + 1] == "{":
                value, end = self._object(start, depth - 1)
            else:
                value, end = self._value(start)
            members.append(_Member(key, line, value))
            position = _skip_space(self.text, end)
            if self.text[position : position + 1] == ",":
                position = _skip_space(self.text, position + 1)
            elif self.text[position : position + 1] == "}":
                return _Object(members), position + 1
            else:
                raise self._error(position, "invalid JSON: expected ',' or '}'")

    def _value(self, position: int) -> tuple[object, int]:
        try:
            return self.decoder.raw_decode(self.text, position)
        except json.JSONDecodeError as error:
            raise CandidateImportError(
                f"{self.name}:{error.lineno}: invalid JSON: {error.msg}"
            ) from None

    def _error(self, position: int, message: str) -> CandidateImportError:
        return CandidateImportError(f"{self.name}:{self.lines.at(position)}: {message}")
