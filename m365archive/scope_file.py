"""The user scope file (`users.scope = "file"`): one user a line, every line accounted for.

Understood: a UTF-8 byte-order mark, CRLF line ends, blank lines, `#` comments, a header row
(`UserPrincipalName`, `UPN`, `Email`, ...), and a CSV whose UPN column is named in its header or is
the one column holding addresses. Each line becomes a user to look up (a UPN or an object id) or a
problem with its line number; the tenant lookup later turns lines that match nobody into findings.
The file is read a line at a time, so a 300,000-line file is never held as one string.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from m365archive.config import GUID, upn_problem

HEADER_NAMES = {
    "upn",
    "userprincipalname",
    "user principal name",
    "user",
    "email",
    "emailaddress",
    "email address",
    "mail",
    "primarysmtpaddress",
    "mailbox",
    "id",
    "objectid",
    "object id",
}
DELIMITERS = (",", ";", "\t")


class ScopeFileError(Exception):
    """The file can't be read at all (missing, a directory, no permission, not UTF-8)."""


@dataclass
class ScopeFile:
    path: str
    wanted: dict[str, int] = field(default_factory=dict)  # lower-cased UPN or object id -> first line
    problems: list[tuple[int, str, str]] = field(default_factory=list)  # (line, text, why)
    header: int | None = None  # line number of the header row, if any

    @property
    def empty(self) -> bool:
        return not self.wanted and not self.problems


def read_scope_file(path: str | Path) -> ScopeFile:
    """Parse the scope file; ScopeFileError when it can't be read."""
    out = ScopeFile(str(path))
    column: int | None = None
    delimiter: str | None = None
    first = True
    for number, line in _lines(Path(path)):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if first:
            first = False
            delimiter = next((d for d in DELIMITERS if d in text), None)
            cells = _cells(text, delimiter)
            names = [c.strip().lower() for c in cells]
            named = [i for i, n in enumerate(names) if n in HEADER_NAMES]
            if named:
                out.header = number
                column = _preferred(named, names)
                continue
            with_at = [i for i, c in enumerate(cells) if "@" in c]
            column = with_at[0] if len(with_at) == 1 else (0 if len(cells) == 1 else None)
            if column is None:
                out.problems.append(
                    (number, text, "a CSV row with no UPN column: name it in a header row (UserPrincipalName)")
                )
                continue
        cells = _cells(text, delimiter)
        if column is None or column >= len(cells):
            out.problems.append((number, text, "no value in the UPN column"))
            continue
        value = cells[column].strip().strip('"').strip()
        why = _problem(value)
        if why:
            out.problems.append((number, text, why))
            continue
        key = value.lower()
        out.wanted.setdefault(key, number)  # a UPN listed twice: its first line
    return out


def _preferred(named: list[int], names: list[str]) -> int:
    for wanted in ("userprincipalname", "user principal name", "upn"):
        if wanted in names:
            return names.index(wanted)
    return named[0]


def _cells(text: str, delimiter: str | None) -> list[str]:
    if delimiter is None:
        return [text]
    return next(csv.reader([text], delimiter=delimiter), [text])


def _problem(value: str) -> str | None:
    if not value:
        return "no value in the UPN column"
    if GUID.match(value):
        return None
    return upn_problem(value)


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise ScopeFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ScopeFileError(f"{path}: is a directory, not a file of UPNs") from None
    except OSError as exc:
        raise ScopeFileError(f"{path}: can't be read ({exc.strerror})") from None
    with handle:
        try:
            for number, raw in enumerate(handle, start=1):
                if number == 1:
                    raw = raw.removeprefix(b"\xef\xbb\xbf")
                try:
                    yield number, raw.decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError:
                    raise ScopeFileError(f"{path}: not UTF-8 text (line {number}); save the file as UTF-8") from None
        except OSError as exc:
            raise ScopeFileError(f"{path}: can't be read ({exc.strerror})") from None
