"""Get-MailboxFolderStatistics: a mailbox's folders with item counts, sizes and (asked for) item dates.

The well-known folders are always there; third-party data arrives through the scenario's import sources
(`TenantState.imports`, one run a simulated day), counted when asked rather than stored item by item, so a
100,000-mailbox tenant costs nothing until it is read. Field names and units are Exchange's: ItemsInFolder
and ItemsInFolderAndSubfolders (numbers), FolderSize and FolderAndSubfolderSize ("12.5 KB (12,800 bytes)"),
and with -IncludeOldestAndNewestItems OldestItemReceivedDate / NewestItemReceivedDate (null for an empty
folder). Sources: docs/fidelity.md rows folder-statistics-*.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from m365archive.sim.exchange.core import CmdletError, Context, Result, _page
from m365archive.sim.state import DAY, ImportSource, Mailbox, TenantState

if TYPE_CHECKING:
    from m365archive.sim.exchange.service import ExchangeService

# EWS partner ingestion was retired on this date: partner-route connectors import nothing after it.
PARTNER_ROUTE_RETIRED = datetime(2024, 12, 30, tzinfo=UTC)

# FolderScope's documented values (ElcFolderType, Get-MailboxFolderStatistics -FolderScope).
FOLDER_SCOPES = (
    "All",
    "Archive",
    "Calendar",
    "Contacts",
    "ConversationHistory",
    "DeletedItems",
    "Drafts",
    "Inbox",
    "JunkEmail",
    "Journal",
    "LegacyArchiveJournals",
    "ManagedCustomFolder",
    "NonIpmRoot",
    "Notes",
    "Outbox",
    "Personal",
    "RecoverableItems",
    "RssSubscriptions",
    "SentItems",
    "SyncIssues",
    "Tasks",
)


@dataclass
class Folder:
    name: str
    path: str  # FolderPath, "/" separated
    folder_type: str
    scope: str  # the FolderScope value that returns it ("Inbox" for the Inbox and its subfolders)
    items: int = 0
    size: int = 0
    oldest: datetime | None = None
    newest: datetime | None = None

    def land(self, count: int, size: int, first: datetime, last: datetime) -> None:
        if count <= 0:
            return
        self.items += count
        self.size += count * size
        self.oldest = first if self.oldest is None else min(self.oldest, first)
        self.newest = last if self.newest is None else max(self.newest, last)


def _well_known() -> list[Folder]:
    return [
        Folder("Top of Information Store", "/Top of Information Store", "Root", "All"),
        Folder("Inbox", "/Inbox", "Inbox", "Inbox"),
        Folder("Sent Items", "/Sent Items", "SentItems", "SentItems"),
        Folder("Deleted Items", "/Deleted Items", "DeletedItems", "DeletedItems"),
        Folder("Recoverable Items", "/Recoverable Items", "RecoverableItemsRoot", "RecoverableItems"),
        Folder("Deletions", "/Deletions", "RecoverableItemsDeletions", "RecoverableItems"),
        Folder("Purges", "/Purges", "RecoverableItemsPurges", "RecoverableItems"),
        Folder("Versions", "/Versions", "RecoverableItemsVersions", "RecoverableItems"),
    ]


def mailbox_folders(state: TenantState, mbx: Mailbox) -> list[Folder]:
    """Every folder of `mbx` as of now, with what the import sources have delivered into it."""
    folders = _well_known()
    by_path = {f.path.lower(): f for f in folders}
    for source in state.imports:
        runs = source.runs(state.clock, PARTNER_ROUTE_RETIRED)
        if not runs:
            continue
        first, last = state.clock.at(runs[0] * DAY), state.clock.at(runs[-1] * DAY)
        receivers = _receivers(state, source)
        if mbx.user_id in receivers:
            path = (
                "/purges"
                if source.route == "partner"
                else "/" + "/".join(p for p in (source.parent, source.folder) if p)
            )
            target = by_path.get(path.lower())
            if target is None:  # "A new folder named ... is created" by the first import
                scope = "Inbox" if source.parent.lower() == "inbox" else "Personal"
                target = Folder(source.folder, path, "User Created", scope)
                folders.append(target)
                by_path[path.lower()] = target
            target.land(source.daily * len(runs), source.item_bytes, first, last)
        if source.route == "partner" and source.catchall == mbx.user_id:
            unmapped = source.unmapped_per_run(len(receivers))
            by_path["/inbox"].land(unmapped * len(runs), source.item_bytes, first, last)
    return folders


def _receivers(state: TenantState, source: ImportSource) -> set[str]:
    """The mailboxes a source delivers to. Every user mailbox but a catch-all unless the scenario lists them;
    kept per source until the tenant's mailboxes change (one call per mailbox would otherwise cost O(n))."""
    if source.mailboxes is not None:
        return set(source.mailboxes)
    key = (len(state.mailboxes), sum(1 for s in state.imports if s.catchall))
    cached = source.receivers_cache
    if cached is not None and cached[0] == key:
        return cached[1]
    catchalls = {s.catchall for s in state.imports if s.catchall}
    found = {
        m.user_id
        for m in state.mailboxes.values()
        if m.recipient_type_details == "UserMailbox" and m.user_id not in catchalls
    }
    source.receivers_cache = (key, found)
    return found


def unmapped_dropped(state: TenantState, source: ImportSource) -> int:
    """Items a Purview connector could not map and so did not import (its admin log; nothing in the tenant)."""
    if source.route != "purview":
        return 0
    return source.unmapped_per_run(len(_receivers(state, source))) * len(
        source.runs(state.clock, PARTNER_ROUTE_RETIRED)
    )


def byte_quantified(size: int) -> str:
    """Exchange's ByteQuantifiedSize text: "0 B (0 bytes)", "12.5 KB (12,800 bytes)"."""
    value, unit = float(size), "B"
    for next_unit in ("KB", "MB", "GB", "TB"):
        if value < 1024:
            break
        value, unit = value / 1024, next_unit
    shown = f"{value:.3f}".rstrip("0").rstrip(".") if unit != "B" else str(size)
    return f"{shown} {unit} ({size:,} bytes)"


def _iso(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-4] + "Z" if value else None


def get_mailbox_folder_statistics(svc: ExchangeService, ctx: Context) -> Result:
    p = ctx.params
    mbx = svc.mailbox(p.get("Identity"))
    if p.get("Archive") is True:
        raise CmdletError(
            "System.NotImplementedException",
            "The simulated tenant doesn't model archive folders (-Archive).",
            status=501,
        )
    scope = str(p.get("FolderScope") or "All")
    wanted = next((s for s in FOLDER_SCOPES if s.lower() == scope.lower()), None)
    if wanted is None:
        raise CmdletError(
            "System.Management.Automation.ParameterBindingException",
            f"Cannot process argument transformation on parameter 'FolderScope'. Cannot convert value \"{scope}\" "
            'to type "Microsoft.Exchange.Data.Directory.SystemConfiguration.ElcFolderType".',
        )
    folders = mailbox_folders(svc.state, mbx)
    dates = p.get("IncludeOldestAndNewestItems") is True
    user = svc.user_of(mbx)
    owner = user.user_principal_name if user else mbx.alias

    def keep(f: Folder) -> bool:
        return wanted == "All" or f.scope == wanted

    def render(f: Folder) -> dict[str, Any]:
        below = [g for g in folders if g.path.lower().startswith(f.path.lower() + "/")]
        items = f.items + sum(g.items for g in below)
        size = f.size + sum(g.size for g in below)
        return {
            "Identity": f"{owner}\\{f.path.lstrip('/')}",
            "Name": f.name,
            "FolderPath": f.path,
            "FolderType": f.folder_type,
            "ItemsInFolder": f.items,
            "FolderSize": byte_quantified(f.size),
            "ItemsInFolderAndSubfolders": items,
            "FolderAndSubfolderSize": byte_quantified(size),
            "OldestItemReceivedDate": _iso(f.oldest) if dates else None,
            "NewestItemReceivedDate": _iso(f.newest) if dates else None,
            "OldestItemLastModifiedDate": _iso(f.oldest) if dates else None,
            "NewestItemLastModifiedDate": _iso(f.newest) if dates else None,
        }

    return _page(ctx, folders, keep, render)
