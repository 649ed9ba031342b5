"""`verify` snapshots: each run's arrivals per source, kept beside the journal for `verify --history`.

One small owner-only JSON file per run under `<state directory>/verify/<tenant>/` (the state directory is
M365ARCHIVE_HOME or the platform's user data folder, m365archive.paths): totals per source, never per mailbox,
so a year of daily runs on a 100,000-mailbox tenant stays a few hundred kilobytes. CI keeps the state
directory between runs (a cache or an artifact; examples/ci/) so history survives ephemeral runners.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from m365archive.errors import CommandError, Reason

if TYPE_CHECKING:
    from m365archive.app.verify import VerifyResult

FORMAT = 1
UNMAPPED = "unmapped in {upn}"  # the series of a catch-all Inbox's unmapped items


def snapshot_dir(tenant: str) -> Path:
    from m365archive.files import private_dir
    from m365archive.paths import data_dir

    safe = re.sub(r"[^a-z0-9.-]+", "_", tenant.lower()) or "tenant"
    return private_dir(data_dir() / "verify" / safe)


def save(tenant: str, result: VerifyResult) -> Path:
    """Write this run's snapshot (0600); returns its path."""
    from m365archive.files import write_private

    doc: dict[str, Any] = {
        "format": FORMAT,
        "taken_at": result.to_dict()["taken_at"],
        "tenant": result.tenant,
        "procedure": result.procedure,
        "mailboxes_read": result.mailboxes_read,
        "findings": len(result.failing),
        "sources": [
            {
                "source": s.source,
                "checkable": s.checkable,
                "folder": s.folder,
                "mailboxes": s.mailboxes,
                "receiving": s.receiving,
                "items": s.items,
                "newest": s.to_dict()["newest"],
                "silent": s.silent,
            }
            for s in result.sources
        ],
        "catchall": [c.to_dict() for c in result.catchall if c.readable],
    }
    stamp = str(doc["taken_at"]).replace(":", "").replace("-", "")
    path = snapshot_dir(tenant) / f"{stamp}-{uuid.uuid4().hex[:8]}.json"
    try:
        write_private(path, json.dumps(doc, indent=1, sort_keys=True) + "\n")
    except OSError as exc:
        from m365archive.files import write_error

        raise CommandError(
            f"the verify snapshot could not be written: {write_error(path, exc)}", Reason.ERROR
        ) from None
    return path


@dataclass(frozen=True)
class Point:
    """One source at one run: the series `verify --history` draws and exports."""

    taken_at: str  # ISO 8601, UTC (the service's time)
    source: str
    items: int  # items in the source's folders over the mailboxes read
    receiving: int  # mailboxes with at least one item
    mailboxes: int
    new_items: int  # since the previous run (0 for the first)

    def to_dict(self) -> dict[str, Any]:
        return {
            "taken_at": self.taken_at,
            "source": self.source,
            "items": self.items,
            "receiving": self.receiving,
            "mailboxes": self.mailboxes,
            "new_items": self.new_items,
        }


def load(tenant: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Every snapshot of `tenant`, oldest first, and one note per file that could not be read."""
    docs: list[dict[str, Any]] = []
    notes: list[str] = []
    directory = snapshot_dir(tenant)
    for path in sorted(directory.glob("*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(doc, dict) or doc.get("format") != FORMAT or "taken_at" not in doc:
                raise ValueError("not a verify snapshot of this version")
        except (OSError, ValueError) as exc:
            notes.append(f"skipped {path.name}: {exc}")
            continue
        docs.append(doc)
    docs.sort(key=lambda d: str(d["taken_at"]))
    return docs, notes


def series(docs: list[dict[str, Any]]) -> list[Point]:
    """One point per run and per source (a catch-all's unmapped items are a source of their own)."""
    points: list[Point] = []
    last: dict[str, int] = {}
    for doc in docs:
        rows = [
            (str(s["source"]), int(s.get("items", 0)), int(s.get("receiving", 0)), int(s.get("mailboxes", 0)))
            for s in doc.get("sources", [])
            if s.get("checkable")
        ]
        rows += [
            (UNMAPPED.format(upn=c["upn"]), int(c.get("items", 0)), 1 if c.get("items") else 0, 1)
            for c in doc.get("catchall", [])
        ]
        for source, items, receiving, mailboxes in rows:
            new = max(0, items - last[source]) if source in last else 0
            last[source] = items
            points.append(Point(str(doc["taken_at"]), source, items, receiving, mailboxes, new))
    return points
