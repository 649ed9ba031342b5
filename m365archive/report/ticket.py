"""What a Change Advisory Board decides on, computed from a Plan: the target, the config and its
digest, the command that applies exactly this plan, how long it may take, the roles it needs, a
risk summary, a back-out plan in reverse dependency order, and sign-off fields.

Pure functions over a Plan and a TicketContext the CLI fills in (the plan does not know which file
it came from or how it will be applied).
"""

from __future__ import annotations

import graphlib
import hashlib
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from m365archive.engine.plan import Action, Change, OperationKind, Plan

COMMANDS = {
    "setup": "setup",
    "legacy-cleanup": "legacy cleanup",
    "consent-revoke": "consent revoke",
    "credentials-rotate": "credentials rotate",
}
SIGN_OFF = ["Requested by", "Approved by (CAB)", "Ticket reference", "Approval date", "Change window"]


@dataclass(frozen=True)
class TicketContext:
    """What only the CLI knows: where the plan is going and where its desired state came from."""

    target: str  # "Microsoft 365 (global)" or "simulated tenant at http://127.0.0.1:8765"
    config_path: str = ""
    config_sha256: str = ""
    apply_command: str = ""  # the command that applies exactly this plan

    def to_dict(self) -> dict[str, str]:
        return {
            "target": self.target,
            "config_path": self.config_path,
            "config_sha256": self.config_sha256,
            "apply_command": self.apply_command,
        }


def file_sha256(path: Path) -> str:
    try:
        return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


def context_for(
    *, sim_url: str | None, cloud: str, config_path: Path, plan_out: Path | None, command: str = "setup"
) -> TicketContext:
    target = f"simulated tenant at {sim_url} (not Microsoft 365)" if sim_url else f"Microsoft 365 ({cloud} cloud)"
    words = ["m365archive", "--config", str(config_path)]
    if sim_url:
        words += ["--sim", sim_url]
    words += [*command.split(), "--plan", str(plan_out) if plan_out else "PLAN.json"]
    apply = " ".join(shlex.quote(w) for w in words)
    if plan_out is None:
        apply += "  (save this plan first: add --plan-out PLAN.json to the dry run)"
    return TicketContext(target, str(config_path), file_sha256(config_path), apply)


# --- duration -------------------------------------------------------------------------------------


def waits(plan: Plan) -> list[tuple[str, float, int]]:
    """Each kind of wait the apply may sit through: description (first target), timeout, how many."""
    grouped: dict[str, tuple[str, float, int]] = {}
    for change in plan.pending:
        if change.wait is None:
            continue
        desc, timeout, count = grouped.get(change.wait.kind, (change.wait.description, 0.0, 0))
        grouped[change.wait.kind] = (desc, max(timeout, change.wait.timeout), count + 1)
    return sorted(grouped.values(), key=lambda w: -w[1])


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


def duration_text(plan: Plan) -> str:
    pending = len(plan.pending)
    longest = max((w[1] for w in waits(plan)), default=0.0)
    if not pending:
        return "nothing to apply"
    text = f"{pending} request(s), sent concurrently within the tenant's throttling limits"
    if longest:
        text += f"; up to {minutes(longest)} waiting for the service (see Longest waits)"
    return text


# --- permissions ----------------------------------------------------------------------------------


def requirements(plan: Plan) -> list[Any]:
    """The permissions table's rows for the steps this plan changes."""
    from m365archive import permissions

    command = COMMANDS.get(plan.kind, plan.kind)
    pending = plan.pending
    steps = {c.step for c in pending}
    onprem = any(c.operation is not None and c.operation.kind == OperationKind.ONPREM for c in pending)
    retention = any(c.category == "retention-policy" for c in pending)
    rows = []
    for row in permissions.for_command(command):
        name = row.step.split(" ")[0]
        if row.step.endswith("(hybrid)"):
            wanted = onprem
        elif name == "retention":
            wanted = retention
        else:
            wanted = name in steps
        if wanted:
            rows.append(row)
    return rows


def _alternatives(entries: tuple[tuple[str, ...], ...]) -> str:
    return "; ".join(" or ".join(alt) for alt in entries) or "—"


def requirement_rows(plan: Plan) -> list[list[str]]:
    return [
        [
            r.does,
            _alternatives(r.entra_roles),
            _alternatives(r.exchange_role_groups),
            _alternatives(r.graph_delegated),
            _alternatives(r.graph_application) + (f"; {r.exchange_app_role}" if r.exchange_app_role else ""),
        ]
        for r in requirements(plan)
    ]


# --- risk -----------------------------------------------------------------------------------------


def risk_summary(plan: Plan) -> list[str]:
    pending = plan.pending
    counts = plan.counts()
    targets = {c.target for c in pending}
    lines = [
        f"{len(pending)} change(s) on {len(targets)} object(s): {counts['create']} create, {counts['update']} update, "
        f"{counts['delete']} delete."
    ]
    irreversible = [c for c in pending if c.rollback is None and c.rollback_note.startswith("can't be undone")]
    if irreversible:
        lines.append(f"{len(irreversible)} change(s) can't be undone (listed in the back-out plan).")
    holds = [c for c in pending if c.category in ("litigation-hold", "retention-policy") or "Hold" in c.setting]
    if holds:
        lines.append(f"{len(holds)} change(s) place mailboxes under hold: items are preserved, deletions are kept.")
    open_findings = [f for f in plan.findings if not f.accepted and f.severity.value in ("critical", "high")]
    accepted = [f for f in plan.findings if f.accepted]
    if open_findings:
        lines.append(f"{len(open_findings)} open critical or high finding(s): read them before approving.")
    if accepted:
        lines.append(f"{len(accepted)} accepted risk(s), each with its reason in Findings.")
    return lines


# --- back-out -------------------------------------------------------------------------------------


def backout_order(changes: Sequence[Change]) -> list[Change]:
    """Pending changes in reverse dependency order: a change is undone before what it depended on
    (a hold released before the licence goes, the licence before the user is deleted). Within that,
    reverse plan order."""
    pending = [c for c in changes if c.action is not Action.NOOP]
    position = {c.id: i for i, c in enumerate(pending)}
    if all(position.get(d, -1) < position[c.id] for c in pending for d in c.depends_on):
        return list(reversed(pending))  # the steps plan in dependency order: linear for 300,000 changes
    sorter = graphlib.TopologicalSorter({c.id: [d for d in c.depends_on if d in position] for c in pending})
    by_id = {c.id: c for c in pending}
    return [by_id[i] for i in reversed(list(sorter.static_order()))]


def is_reverse_dependency_order(changes: Sequence[Change]) -> bool:
    """Every change comes before each change it depends on."""
    seen: set[str] = set()
    for change in changes:
        if any(d in seen for d in change.depends_on):
            return False
        seen.add(change.id)
    return True


__all__ = [
    "SIGN_OFF",
    "TicketContext",
    "backout_order",
    "context_for",
    "duration_text",
    "file_sha256",
    "is_reverse_dependency_order",
    "requirement_rows",
    "risk_summary",
    "waits",
]
