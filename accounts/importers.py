"""Reading operator lists (import_operators): a CSV with the header `username,role,region,email`,
checked whole before anything is written. Every problem is reported, each as
`FILE:LINE: field: reason`, so one run shows everything there is to fix.
"""

import csv
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from accounts.services import OperatorRefused, OperatorRow, operator_region_check

HEADER = ["username", "role", "region", "email"]


class OperatorImportError(Exception):
    """The file cannot be imported; `problems` lists every reason, `FILE:LINE: field: reason`."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def operator_problems(*, username: str, role: str, region: str, email: str) -> list[str]:
    """What stops one operator from being made, each as `field: reason` (none: it can be)."""
    problems = []
    model = get_user_model()
    if not username:
        problems.append("username: empty")
    elif len(username) > (model._meta.get_field("username").max_length or 150):
        problems.append(f"username: {username!r} is longer than 150 characters")
    else:
        try:
            model.username_validator(username)
        except ValidationError:
            problems.append(f"username: {username!r} may only have letters, digits and @.+-_")
        else:
            if model.objects.filter(username=username).exists():
                problems.append(f"username: {username!r} is taken")
    try:
        operator_region_check(role=role, region_code=region)
    except OperatorRefused as refused:
        problems.append(str(refused))
    if email:
        try:
            validate_email(email)
        except ValidationError:
            problems.append(f"email: {email!r} is not an email address")
    return problems


def operator_rows_read(path: Path) -> list[OperatorRow]:
    """Every row of the file, or OperatorImportError with every problem in it (a byte-order mark
    and CRLF line ends are fine)."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as file:
            lines = list(_lines(path, csv.reader(file)))
    except UnicodeDecodeError as error:
        raise OperatorImportError([f"{path}: not UTF-8 text ({error.reason})"]) from error
    except OSError as error:
        raise OperatorImportError([f"{path}: cannot be read ({error.strerror})"]) from error
    if not lines:
        raise OperatorImportError([f"{path}:1: header: the file is empty"])
    header_line, header = lines[0]
    if header != HEADER:
        expected, got = ",".join(HEADER), ",".join(header)
        problem = f"{path}:{header_line}: header: expected {expected!r}, got {got!r}"
        raise OperatorImportError([problem])
    rows, problems = [], []
    first_line_of: dict[str, int] = {}
    for line, fields in lines[1:]:
        source = f"{path}:{line}"
        if len(fields) != len(HEADER):
            problems.append(f"{source}: row: expected {len(HEADER)} fields, got {len(fields)}")
            continue
        username, role, region, email = fields
        row = OperatorRow(username, role, region, email, source=source)
        found = operator_problems(
            username=row.username, role=row.role, region=row.region, email=row.email
        )
        if row.username in first_line_of:
            first = first_line_of[row.username]
            found.insert(0, f"username: {row.username!r} is also on line {first}")
        first_line_of.setdefault(row.username, line)
        problems += [f"{source}: {problem}" for problem in found]
        rows.append(row)
    if not rows and not problems:
        problems.append(f"{path}:{header_line + 1}: row: no operators after the header")
    if problems:
        raise OperatorImportError(problems)
    return rows


def _lines(path: Path, reader):
    """(line number, fields stripped of spaces) of each row that is not blank."""
    try:
        for fields in reader:
            if any(field.strip() for field in fields):
                yield reader.line_num, [field.strip() for field in fields]
    except csv.Error as error:
        raise OperatorImportError([f"{path}:{reader.line_num}: row: {error}"]) from error
