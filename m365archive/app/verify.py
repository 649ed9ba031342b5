"""`verify`: is third-party data arriving, per source and mailbox, and are the receiving mailboxes still held?

Read-only. For each configured source the connector catalog (m365archive.partners) names the folder it
imports into; per mailbox in scope one `Get-MailboxFolderStatistics -IncludeOldestAndNewestItems` (all of a
mailbox's folders, so one call covers every source) gives that folder's item count and newest item, sent 10 to a
`$batch` and paced like the user-mailbox step (RestExchangeRunner.invoke_many: AIMD concurrency, the tenant's
throttle budget learned from its 429s). Mailboxes come a Get-Mailbox page (1,000) at a time, so memory stays
bounded and the page also gives each mailbox's hold and archive.

"Now" is the service's clock (the Date header of its answers), so "silent for 3 days" does not depend on this
machine's clock. Each run's totals are kept as a snapshot beside the journal (`m365archive.app.snapshots`).
"""

from __future__ import annotations

import email.utils
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from m365archive.app.context import Env, connect, reading, tenant_info
from m365archive.config import Config, parse_days
from m365archive.engine.plan import Finding, Severity
from m365archive.errors import CommandError, Reason
from m365archive.partners import (
    PARTNER_UNMAPPED_FOLDER,
    PURVIEW_CONNECTORS,
    RETIREMENT,
    ImportFolder,
    connector_slug,
    find_purview_connector,
)
from m365archive.steps.base import StepContext
from m365archive.steps.user_mailboxes import users_in_scope
from m365archive.tenant.exchange import Cmdlet, CmdletOutcome, has_archive

STEP = "verify"
FOLDER_STATS = "Get-MailboxFolderStatistics"
LIST_LIMIT = 10  # mailboxes named in a finding; the JSON output has them all
CATCHALL_SOURCE = "catch-all Inbox (unmapped)"  # the series name of the catch-all's unmapped items
RETIRED_ON = datetime.fromisoformat(RETIREMENT["date"]).replace(tzinfo=UTC)


@dataclass
class MailboxArrivals:
    upn: str
    items: int
    newest: datetime | None


@dataclass
class SourceArrivals:
    """One source's arrivals over the mailboxes in scope."""

    source: str
    folder: str  # FolderPath, "" when no public source names one
    folder_source: str  # the page that names the folder
    checkable: bool
    note: str = ""  # why it can't be checked
    mailboxes: int = 0  # in scope and read
    receiving: int = 0  # with at least one item
    items: int = 0
    newest: datetime | None = None
    silent: bool = False  # no mailbox received anything within --silent-after
    never: list[str] = field(default_factory=list)  # mailboxes with no item ever
    stale: list[MailboxArrivals] = field(default_factory=list)  # mailboxes silent for --silent-after

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["newest"] = _iso(self.newest)
        out["stale"] = [{"upn": m.upn, "items": m.items, "newest": _iso(m.newest)} for m in self.stale]
        return out


@dataclass
class CatchallInbox:
    """The unmapped items the retired partner route left in a catch-all mailbox's Inbox."""

    upn: str
    items: int = 0
    newest: datetime | None = None
    readable: bool = True
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "newest": _iso(self.newest)}


@dataclass
class VerifyResult:
    tenant: dict[str, str]
    procedure: str
    taken_at: datetime  # the service's time when it answered
    silent_after_days: float
    sources: list[SourceArrivals]
    catchall: list[CatchallInbox]
    findings: list[Finding]
    notes: list[str]
    mailboxes_read: int
    requests: int  # HTTP requests sent to Exchange Online (retries included)

    @property
    def failing(self) -> list[Finding]:
        return [f for f in self.findings if not f.accepted and f.severity is not Severity.INFO]

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "procedure": self.procedure,
            "taken_at": _iso(self.taken_at),
            "silent_after_days": self.silent_after_days,
            "sources": [s.to_dict() for s in self.sources],
            "catchall": [c.to_dict() for c in self.catchall],
            "findings": [f.to_dict() for f in self.findings],
            "notes": self.notes,
            "mailboxes_read": self.mailboxes_read,
            "exchange_requests": self.requests,
        }


@dataclass
class _Plan:
    """What to read: the checkable sources' folders, and catch-all mailboxes whose Inbox holds unmapped items."""

    sources: list[SourceArrivals]
    folders: dict[str, str]  # folder path (lower) -> source name
    catchalls: list[str]
    notes: list[str]
    per_mailbox: bool  # whether user mailboxes are read at all


def _sources(config: Config, wanted: list[str] | None) -> _Plan:
    notes: list[str] = []
    catchalls: list[str] = []
    if config.procedure == "partner-ews":
        notes.append(
            f"partner-ews: the route is retired, so no arrivals are expected since {RETIREMENT['date']} "
            f"({RETIREMENT['url']}); what is left is checked: the unmapped items in the catch-all's Inbox "
            "(items mapped to a user went to that user's Recoverable Items, which says nothing per source)."
        )
        if config.catchall is not None:
            catchalls.append(config.catchall.upn)
        if wanted:
            notes.append("--source is ignored for partner-ews: no per-source folder to read on the retired route")
        return _Plan([], {}, catchalls, notes, per_mailbox=False)
    names = wanted or config.verify.sources or [config.connector.source]
    out: list[SourceArrivals] = []
    folders: dict[str, str] = {}
    for name in names:
        connector = find_purview_connector(name)
        if connector is None:
            known = ", ".join(connector_slug(c.name) for c in PURVIEW_CONNECTORS)
            raise CommandError(f"verify: {name!r} is not a known Purview data connector (known: {known})", Reason.USAGE)
        folder: ImportFolder | None = connector.folder
        if folder is None:
            out.append(
                SourceArrivals(
                    connector.name, "", "", False, note=f"can't check {connector.name}: {connector.folder_note}"
                )
            )
        elif not folder.per_user:
            out.append(
                SourceArrivals(
                    connector.name,
                    folder.path,
                    folder.source,
                    False,
                    note=f"can't check {connector.name}: it imports into one storage mailbox chosen in the "
                    "Purview portal, not into each user's mailbox",
                )
            )
        else:
            out.append(SourceArrivals(connector.name, folder.path, folder.source, True))
            folders[folder.path.lower()] = connector.name
    catchalls += list(config.connector.legacy_catchall)
    return _Plan(out, folders, catchalls, notes, per_mailbox=bool(folders))


async def verify(
    env: Env, config: Config, *, sources: list[str] | None = None, silent_after: str | None = None
) -> VerifyResult:
    """Read arrivals per source and mailbox (reads only) and raise the findings."""
    try:
        window = parse_days(silent_after) if silent_after else parse_days(config.verify.silent_after)
    except ValueError as exc:
        raise CommandError(f"--silent-after: {exc}", Reason.USAGE) from None
    plan = _sources(config, sources)
    if plan.per_mailbox and config.users.scope == "none":
        raise CommandError(
            'verify reads the mailboxes in scope, and [users] scope is "none"',
            Reason.USAGE,
            'set [users] scope = "all" (or "groups" / "file") to the mailboxes the connector imports into',
        )
    async with connect(env, config, max_concurrency=config.users.max_concurrency) as session:
        ctx = StepContext(
            config=config,
            session=session,
            tenant=tenant_info(session),
            operator=session.operator,
            progress=env.progress,
        )
        reader = _Reader(plan, window, config)
        with reading():
            if plan.per_mailbox:
                await reader.read_mailboxes(ctx)
            await reader.read_catchalls(ctx)
        requests = int(getattr(getattr(session.exchange, "stats", None), "requests", 0))
    return reader.result(ctx.tenant, config, requests)


class _Reader:
    def __init__(self, plan: _Plan, window_days: float, config: Config) -> None:
        self.plan = plan
        self.window = window_days
        self.config = config
        self.now: datetime | None = None
        self.mailboxes_read = 0
        self.per_source: dict[str, list[MailboxArrivals]] = {s.source: [] for s in plan.sources if s.checkable}
        self.unheld: list[str] = []  # receiving mailboxes without Litigation Hold
        self.unarchived: list[str] = []  # receiving mailboxes without an archive
        self.unreadable: list[tuple[str, str]] = []
        self.catchall: list[CatchallInbox] = []
        self.absent: list[str] = []  # catch-all mailboxes that do not exist

    def _clock(self, outcome: CmdletOutcome) -> None:
        if outcome.answered_at:
            try:
                when = email.utils.parsedate_to_datetime(outcome.answered_at)
            except (TypeError, ValueError):
                return
            self.now = when if self.now is None else max(self.now, when)

    async def read_mailboxes(self, ctx: StepContext) -> None:
        users = await users_in_scope(ctx)
        catchalls = {upn.lower() for upn in self.plan.catchalls}  # read for their Inbox, not as receivers
        scope = "Inbox" if all(p.startswith("/inbox/") for p in self.plan.folders) else None
        pages = 0
        async for page in ctx.session.exchange.pages(Cmdlet("Get-Mailbox", {"ResultSize": "Unlimited"}), 1000):
            pages += 1
            ctx.progress(f"read {pages * 1000:,} mailboxes")
            batch = [
                m
                for m in page
                if str(m.get("ExternalDirectoryObjectId") or "") in users
                and str(m.get("RecipientTypeDetails") or "") == "UserMailbox"
                and str(m.get("UserPrincipalName") or "").lower() not in catchalls
            ]
            if not batch:
                continue
            cmdlets = []
            for m in batch:
                # ResultSize Unlimited: past 1,000 folders the connector's could be on a second page
                params: dict[str, Any] = {
                    "Identity": str(m.get("UserPrincipalName")),
                    "IncludeOldestAndNewestItems": True,
                    "ResultSize": "Unlimited",
                }
                if scope:
                    params["FolderScope"] = scope
                cmdlets.append(Cmdlet(FOLDER_STATS, params))
            outcomes = await ctx.session.exchange.invoke_many(cmdlets)
            for mbx, outcome in zip(batch, outcomes, strict=True):
                self._mailbox(mbx, outcome)

    def _mailbox(self, mbx: dict[str, Any], outcome: CmdletOutcome) -> None:
        upn = str(mbx.get("UserPrincipalName"))
        self._clock(outcome)
        if not outcome.ok:
            assert outcome.error is not None
            self.unreadable.append((upn, outcome.error.message))
            return
        self.mailboxes_read += 1
        found: dict[str, MailboxArrivals] = {}
        for folder in outcome.objects:
            source = self.plan.folders.get(str(folder.get("FolderPath") or "").lower())
            if source is not None:
                found[source] = MailboxArrivals(
                    upn, _count(folder.get("ItemsInFolder")), _when(folder.get("NewestItemReceivedDate"))
                )
        receiving = False
        for source, rows in self.per_source.items():
            row = found.get(source) or MailboxArrivals(upn, 0, None)  # no folder yet: nothing ever imported
            rows.append(row)
            receiving = receiving or row.items > 0
        if receiving:
            hold_wanted = self.config.users.hold and self.config.hold.kind == "litigation"
            if hold_wanted and not mbx.get("LitigationHoldEnabled"):
                self.unheld.append(upn)
            if self.config.users.archive and not has_archive(mbx):
                self.unarchived.append(upn)

    async def read_catchalls(self, ctx: StepContext) -> None:
        if not self.plan.catchalls:
            return
        cmdlets = [
            Cmdlet(FOLDER_STATS, {"Identity": upn, "FolderScope": "Inbox", "IncludeOldestAndNewestItems": True})
            for upn in self.plan.catchalls
        ]
        for upn, outcome in zip(self.plan.catchalls, await ctx.session.exchange.invoke_many(cmdlets), strict=True):
            self._clock(outcome)
            inbox = CatchallInbox(upn)
            if not outcome.ok and outcome.error is not None and outcome.error.not_found:
                # gone (cleaned up) or never made: nothing of the retired route is left in it
                self.absent.append(upn)
                continue
            if not outcome.ok:
                assert outcome.error is not None
                inbox.readable, inbox.error = False, outcome.error.message
            else:
                for folder in outcome.objects:
                    if str(folder.get("FolderPath") or "").lower() == PARTNER_UNMAPPED_FOLDER.path.lower():
                        inbox.items = _count(folder.get("ItemsInFolder"))
                        inbox.newest = _when(folder.get("NewestItemReceivedDate"))
            self.catchall.append(inbox)

    # -- findings ---------------------------------------------------------------------------------------
    def result(self, tenant: dict[str, str], config: Config, requests: int) -> VerifyResult:
        now = self.now or datetime.now(UTC)
        cutoff = now - timedelta(days=self.window)
        findings: list[Finding] = []
        sources: list[SourceArrivals] = []
        days = _days_text(self.window)
        for src in self.plan.sources:
            sources.append(src)
            if not src.checkable:
                continue
            rows = self.per_source[src.source]
            src.mailboxes = len(rows)
            src.receiving = sum(1 for r in rows if r.items > 0)
            src.items = sum(r.items for r in rows)
            newest = [r.newest for r in rows if r.newest is not None]
            src.newest = max(newest) if newest else None
            src.never = sorted(r.upn for r in rows if r.items == 0)
            src.stale = sorted(
                (r for r in rows if r.items > 0 and (r.newest is None or r.newest <= cutoff)), key=lambda r: r.upn
            )
            src.silent = bool(rows) and (src.newest is None or src.newest <= cutoff)
            if src.silent:
                since = f"since {_iso(src.newest)}" if src.newest else "ever"
                findings.append(
                    Finding(
                        STEP,
                        src.source,
                        Severity.HIGH,
                        f"{src.source}: no mailbox in scope has received anything {since} "
                        f"(silent for {days} or more; {src.mailboxes:,} mailbox(es) read, folder {src.folder})",
                        f"check the {src.source} connector on the Purview portal's Data connectors page "
                        "(its status and admin log)",
                        category="silent-source",
                    )
                )
                continue
            if src.never:
                findings.append(
                    Finding(
                        STEP,
                        src.source,
                        Severity.WARNING,
                        f"{src.source}: {len(src.never):,} mailbox(es) in scope have never received an item "
                        f"({_names(src.never)})",
                        "check the connector's user mapping (automatic by email, or the mapping CSV)",
                        category="never-received",
                    )
                )
            if src.stale:
                findings.append(
                    Finding(
                        STEP,
                        src.source,
                        Severity.WARNING,
                        f"{src.source}: {len(src.stale):,} mailbox(es) received nothing for {days} or more "
                        f"({_names([r.upn for r in src.stale])})",
                        "check whether these users still use the source, and the connector's mapping",
                        category="silent-mailboxes",
                    )
                )
        if self.unheld:
            findings.append(
                Finding(
                    STEP,
                    "mailboxes",
                    Severity.HIGH,
                    f"{len(self.unheld):,} mailbox(es) receiving third-party data are not on Litigation Hold "
                    f"({_names(self.unheld)})",
                    "run `m365archive setup` (or `status` to see the drift)",
                    category="hold-drift",
                )
            )
        if self.unarchived:
            findings.append(
                Finding(
                    STEP,
                    "mailboxes",
                    Severity.WARNING,
                    f"{len(self.unarchived):,} mailbox(es) receiving third-party data have no archive "
                    f"({_names(self.unarchived)})",
                    "run `m365archive setup` (or `status` to see the drift)",
                    category="archive-drift",
                )
            )
        if self.unreadable:
            upn, why = self.unreadable[0]
            findings.append(
                Finding(
                    STEP,
                    "mailboxes",
                    Severity.WARNING,
                    f"{len(self.unreadable):,} mailbox(es) could not be read ({upn}: {why})",
                    "check the account's Exchange permissions and run verify again",
                    category="unreadable",
                )
            )
        for inbox in self.catchall:
            if not inbox.readable:
                findings.append(
                    Finding(
                        STEP,
                        inbox.upn,
                        Severity.WARNING,
                        f"the catch-all {inbox.upn} could not be read: {inbox.error}",
                        "check the account name in the config",
                        category="unreadable",
                    )
                )
            elif inbox.items:
                recent = inbox.newest is not None and inbox.newest > cutoff
                findings.append(
                    Finding(
                        STEP,
                        inbox.upn,
                        Severity.WARNING if recent else Severity.INFO,
                        f"{inbox.items:,} unmapped item(s) in the Inbox of {inbox.upn}, newest "
                        f"{_iso(inbox.newest) or 'unknown'}: items the partner could not map to a user"
                        + (" are still arriving" if recent else ""),
                        "map their users (the partner's user mapping), then review the Inbox",
                        category="unmapped",
                    )
                )
        notes = [*self.plan.notes, *(s.note for s in sources if s.note)]
        notes += [f"no mailbox {upn}: no catch-all Inbox left to check" for upn in self.absent]
        accepted = {r.id: r.reason for r in config.accepted_risks}
        for f in findings:
            if f.id in accepted:
                f.accepted, f.accepted_by = accepted[f.id], "config"
        return VerifyResult(
            tenant=tenant,
            procedure=config.procedure,
            taken_at=now,
            silent_after_days=self.window,
            sources=sources,
            catchall=self.catchall,
            findings=findings,
            notes=notes,
            mailboxes_read=self.mailboxes_read,
            requests=requests,
        )


def _count(value: Any) -> int:
    try:
        return int(str(value).replace(",", "")) if value not in (None, "") else 0
    except ValueError:
        return 0


def _when(value: Any) -> datetime | None:
    """An Exchange date from the admin API: ISO 8601, or the /Date(ms)/ form; UTC when no zone is given."""
    if value in (None, ""):
        return None
    text = str(value)
    if text.startswith("/Date("):
        try:
            return datetime.fromtimestamp(int(text[6:].split(")")[0].split("+")[0].split("-")[0]) / 1000, UTC)
        except ValueError:
            return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z") if value else None


def _names(upns: list[str]) -> str:
    shown = ", ".join(upns[:LIST_LIMIT])
    return shown + (f" and {len(upns) - LIST_LIMIT:,} more" if len(upns) > LIST_LIMIT else "")


def _days_text(days: float) -> str:
    return f"{days:g} day(s)" if days >= 1 else f"{days * 24:g} hour(s)"
