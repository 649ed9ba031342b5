"""User mapping files for Purview data connectors: check one against the tenant, or export one.

A mapping file maps a source identity (Bloomberg UUID, a phone number in E.164, or an email
address) to the mailbox its items are imported into; items whose row doesn't map are not imported.
`check_mapping` classifies every row as mapped, unknown mailbox, duplicate identity, duplicate
mailbox or malformed. Files of 100,000 rows stream: the csv module reads them twice, memory holds
only sets of keys (never rows), and the tenant is read in bulk (`Get-Recipient` a page of 1,000
user mailboxes at a time), never one request per row. No typer, no terminals.
"""

from __future__ import annotations

import csv
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from m365archive.files import open_private
from m365archive.report.csvout import safe_cell
from m365archive.tenant.exchange import Cmdlet

if TYPE_CHECKING:
    from m365archive.config import Config
    from m365archive.tenant.session import TenantSession

EMAIL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
E164 = re.compile(r"^\+[1-9]\d{6,14}$")  # ITU-T E.164: "+", country code, at most 15 digits
BLOOMBERG_UUID = re.compile(r"^\d{1,12}$")  # Bloomberg's numeric user id


@dataclass(frozen=True)
class Source:
    name: str
    header: str  # the identity column's header in files this tool writes
    what: str
    pattern: re.Pattern[str]
    normalize: Callable[[str], str]


SOURCES: dict[str, Source] = {
    "bloomberg": Source("bloomberg", "BloombergUUID", "a Bloomberg UUID (digits)", BLOOMBERG_UUID, str.strip),
    "whatsapp": Source("whatsapp", "PhoneNumber", "a phone number in E.164 (+ and digits)", E164, str.strip),
    "email": Source("email", "SourceEmail", "an email address", EMAIL, lambda s: s.strip().lower()),
}
MAILBOX_HEADER = "MailboxAddress"
PAGE = 1000


class RowStatus(StrEnum):
    MALFORMED = "malformed"
    UNKNOWN_MAILBOX = "unknown mailbox"
    DUPLICATE_IDENTITY = "duplicate identity"
    DUPLICATE_MAILBOX = "duplicate mailbox"
    MAPPED = "mapped"


# Rows whose items would not be imported come first in every listing; then warnings; then the rest.
NOT_IMPORTED = (RowStatus.MALFORMED, RowStatus.UNKNOWN_MAILBOX, RowStatus.DUPLICATE_IDENTITY)
ORDER = (*NOT_IMPORTED, RowStatus.DUPLICATE_MAILBOX, RowStatus.MAPPED)


class MappingError(Exception):
    """The file can't be read at all (missing, not UTF-8, unknown source)."""


@dataclass
class RowResult:
    line: int
    status: RowStatus
    identity: str
    mailbox: str
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "status": self.status.value,
            "identity": self.identity,
            "mailbox": self.mailbox,
            "reason": self.reason,
        }


@dataclass
class MappingReport:
    source: str
    file: str
    rows: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {s.value: 0 for s in ORDER})
    problems: list[RowResult] = field(default_factory=list)  # the first `limit`, not-imported first
    mailboxes_read: int = 0
    pages_read: int = 0
    header: bool = False

    @property
    def not_imported(self) -> int:
        return sum(self.counts[s.value] for s in NOT_IMPORTED)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "file": self.file,
            "rows": self.rows,
            "not_imported": self.not_imported,
            "counts": self.counts,
            "mailboxes_read": self.mailboxes_read,
            "pages_read": self.pages_read,
            "problems": [
                {
                    "line": p.line,
                    "status": p.status.value,
                    "identity": p.identity,
                    "mailbox": p.mailbox,
                    "reason": p.reason,
                }
                for p in self.problems
            ],
        }


def source_for(name: str) -> Source:
    try:
        return SOURCES[name.lower()]
    except KeyError:
        raise MappingError(f"unknown source {name!r} (known: {', '.join(SOURCES)})") from None


@dataclass(slots=True)
class _Parsed:
    line: int  # the file's line number (the header, if any, is line 1)
    identity: str
    mailbox: str
    error: str  # why the row is malformed; "" when well formed


def _rows(path: Path, source: Source) -> Iterator[_Parsed]:
    """Every data row of the file, parsed; the header row (if any) skipped. One row in memory at a time."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        raise MappingError(f"{path}: no such file") from None
    except OSError as exc:
        raise MappingError(f"{path}: {exc.strerror}") from None
    with handle:
        first = True
        try:
            # One physical line is one row: a stray quote is a malformed row, never the rest of the file
            # swallowed into one field (mapping rows hold an identity and an address, no line breaks).
            for line, raw in enumerate(handle, start=1):
                text = raw.rstrip("\r\n")
                if not text.strip():
                    continue
                try:
                    cells = next(csv.reader([text], strict=True))
                except csv.Error:
                    first = False
                    yield _Parsed(line, "", "", 'a broken quote (") on this row: quote a whole value or none of it')
                    continue
                if not any(c.strip() for c in cells):
                    continue
                while len(cells) > 2 and not cells[-1].strip():
                    cells = cells[:-1]
                if first:
                    first = False
                    if _is_header(cells, source):
                        continue
                yield _parse(line, cells, source)
        except UnicodeDecodeError:
            raise MappingError(f"{path}: not UTF-8 text") from None
        except csv.Error as exc:
            raise MappingError(f"{path}: not a CSV file: {exc}") from None


def _is_header(cells: list[str], source: Source) -> bool:
    identity = source.normalize(cells[0]) if cells else ""
    mailbox = cells[1].strip() if len(cells) > 1 else ""
    return not source.pattern.match(identity) and not EMAIL.match(mailbox) and not any(c.isdigit() for c in mailbox)


def _parse(line: int, cells: list[str], source: Source) -> _Parsed:
    identity = source.normalize(cells[0]) if cells else ""
    mailbox = cells[1].strip().lower() if len(cells) > 1 else ""
    if len(cells) != 2:
        return _Parsed(line, identity, mailbox, f"{len(cells)} column(s); expected 2 (identity, mailbox address)")
    if not identity:
        return _Parsed(line, identity, mailbox, "no source identity")
    if not source.pattern.match(identity):
        return _Parsed(line, identity, mailbox, f"{identity!r} is not {source.what}")
    if not EMAIL.match(mailbox):
        return _Parsed(line, identity, mailbox, f"{mailbox!r} is not a mailbox address" if mailbox else "no mailbox")
    return _Parsed(line, identity, mailbox, "")


async def user_mailbox_addresses(
    session: TenantSession, wanted: set[str], progress: Callable[[str], None], report: MappingReport
) -> set[str]:
    """The addresses among `wanted` that belong to a user mailbox (primary or proxy SMTP address).

    Bulk: Get-Recipient -RecipientTypeDetails UserMailbox, 1,000 a page; only matching addresses are kept.
    """
    known: set[str] = set()
    cmd = Cmdlet("Get-Recipient", {"RecipientTypeDetails": ["UserMailbox"], "ResultSize": "Unlimited"})
    async for page in session.exchange.pages(cmd, PAGE):
        report.pages_read += 1
        report.mailboxes_read += len(page)
        progress(f"read {report.mailboxes_read:,} user mailboxes")
        for recipient in page:
            for address in _addresses(recipient):
                if address in wanted:
                    known.add(address)
    return known


def _addresses(recipient: dict[str, Any]) -> set[str]:
    out = {str(recipient.get("PrimarySmtpAddress") or "").lower()}
    for proxy in recipient.get("EmailAddresses") or []:
        text = str(proxy)
        if text.lower().startswith("smtp:"):
            out.add(text[5:].lower())
    out.discard("")
    return out


async def check_mapping(
    session: TenantSession,
    path: Path,
    source_name: str,
    *,
    out: Path | None = None,
    limit: int = 50,
    progress: Callable[[str], None] = lambda message: None,
) -> MappingReport:
    """Classify every row of a mapping file against the tenant. `out` receives every row, not-imported first."""
    source = source_for(source_name)
    report = MappingReport(source=source.name, file=str(path))
    # Pass 1: keys only.
    seen_ids: set[str] = set()
    dup_ids: set[str] = set()
    seen_mbx: set[str] = set()
    dup_mbx: set[str] = set()
    for row in _rows(path, source):
        report.rows += 1
        if row.error:
            continue
        if row.identity in seen_ids:
            dup_ids.add(row.identity)
        seen_ids.add(row.identity)
        if row.mailbox in seen_mbx:
            dup_mbx.add(row.mailbox)
        seen_mbx.add(row.mailbox)
    progress(f"{report.rows:,} rows read; reading the tenant's user mailboxes")
    known = await user_mailbox_addresses(session, seen_mbx, progress, report)
    del seen_ids, seen_mbx
    # Pass 2: classify, count, keep the first problems, and spill every row to its group for `out`.
    spill = {status: tempfile.TemporaryFile("w+", newline="", encoding="utf-8") for status in ORDER}  # noqa: SIM115
    try:
        writers = {status: csv.writer(handle) for status, handle in spill.items()}
        kept: dict[RowStatus, list[RowResult]] = {s: [] for s in ORDER}
        for row in _rows(path, source):
            result = classify(row, known, dup_ids, dup_mbx)
            report.counts[result.status.value] += 1
            if result.status is not RowStatus.MAPPED and len(kept[result.status]) < limit:
                kept[result.status].append(result)
            if out is not None:
                writers[result.status].writerow(
                    [
                        result.line,
                        result.status.value,
                        *map(safe_cell, (result.identity, result.mailbox, result.reason)),
                    ]
                )
        report.problems = [r for s in ORDER if s is not RowStatus.MAPPED for r in kept[s]][:limit]
        if out is not None:
            with open_private(out, newline="") as target:
                csv.writer(target).writerow(["line", "status", source.header, MAILBOX_HEADER, "reason"])
                for status in ORDER:
                    spill[status].seek(0)
                    shutil.copyfileobj(spill[status], target)
    finally:
        for handle in spill.values():
            handle.close()
    return report


def classify(row: _Parsed, known: set[str], dup_ids: set[str], dup_mbx: set[str]) -> RowResult:
    if row.error:
        return RowResult(row.line, RowStatus.MALFORMED, row.identity, row.mailbox, row.error)
    if row.mailbox not in known:
        return RowResult(
            row.line, RowStatus.UNKNOWN_MAILBOX, row.identity, row.mailbox, "no user mailbox has this address"
        )
    if row.identity in dup_ids:
        return RowResult(
            row.line,
            RowStatus.DUPLICATE_IDENTITY,
            row.identity,
            row.mailbox,
            "the identity appears on more than one row: which mailbox gets its items is undefined",
        )
    if row.mailbox in dup_mbx:
        return RowResult(
            row.line,
            RowStatus.DUPLICATE_MAILBOX,
            row.identity,
            row.mailbox,
            "more than one identity maps to this mailbox (imported; check it is intended)",
        )
    return RowResult(row.line, RowStatus.MAPPED, row.identity, row.mailbox)


async def export_mapping(
    session: TenantSession,
    config: Config,
    source_name: str,
    out: Path,
    *,
    progress: Callable[[str], None] = lambda message: None,
) -> int:
    """Write the mailbox side of a mapping file for the user mailboxes in scope ([users] in the config).

    The identity column is left empty for the admin (or the source's export) to fill, except for the
    email source, where it starts as the mailbox's own address. Returns the number of rows written.
    """
    from m365archive.app.context import tenant_info
    from m365archive.steps import user_mailboxes
    from m365archive.steps.base import StepContext

    source = source_for(source_name)
    if config.users.scope == "none":
        from m365archive.errors import CommandError, Reason

        raise CommandError(
            'no users in scope: set [users] scope = "all" (or "groups" / "file") in the config', Reason.USAGE
        )
    ctx = StepContext(
        config=config, session=session, tenant=tenant_info(session), operator=session.operator, progress=progress
    )
    skus = await session.graph.subscribed_skus()
    plan_of_sku = {
        str(s["skuId"]): frozenset(str(p.get("servicePlanId")) for p in s.get("servicePlans") or []) for s in skus
    }
    # The same scope the purview-connector plan prepares (bulk Graph pages of 999 users).
    users = await user_mailboxes._scope_users(ctx, plan_of_sku)
    scope = set(users)
    del users
    written = 0
    cmd = Cmdlet("Get-Recipient", {"RecipientTypeDetails": ["UserMailbox"], "ResultSize": "Unlimited"})
    with open_private(out, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([source.header, MAILBOX_HEADER])
        async for page in session.exchange.pages(cmd, PAGE):
            for recipient in page:
                if str(recipient.get("ExternalDirectoryObjectId") or "") not in scope:
                    continue
                address = str(recipient.get("PrimarySmtpAddress") or "").lower()
                writer.writerow([safe_cell(address if source.name == "email" else ""), safe_cell(address)])
                written += 1
            progress(f"wrote {written:,} rows")
    return written
