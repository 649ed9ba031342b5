"""Which findings are accepted risks: the ones the chosen procedure itself requires, and the ones the
config accepts by id (`[[accepted_risks]]`). Accepted findings are still shown, with the reason;
`status --fail-on` counts only the others."""

from __future__ import annotations

from typing import TYPE_CHECKING

from m365archive.engine.plan import Finding, Plan, Severity

if TYPE_CHECKING:
    from m365archive.config import Config

PROCEDURE_SOURCE = (
    "the documented procedure (Microsoft Purview, 'Work with a partner to archive third-party data') requires it"
)
CATCHALL_ADMIN = (
    f"{PROCEDURE_SOURCE}: Step 2 adds the catch-all account to the Exchange administrator role, and Step 4 gives "
    "the partner its sign-in credentials (user ID and password)"
)
CATCHALL_PASSWORD_KEPT = (
    f"{PROCEDURE_SOURCE}: Step 4 hands the catch-all password to the partner, so setup keeps the one it generated"
)
RANK = [Severity.INFO, Severity.WARNING, Severity.HIGH, Severity.CRITICAL]


def procedure_reason(finding: Finding, config: Config) -> str:
    """Why the chosen procedure requires what this finding reports, or "" when it doesn't."""
    if config.procedure != "partner-ews" or config.catchall is None:
        return ""
    if finding.target.lower() != config.catchall.upn.lower():
        return ""
    if finding.category in ("legacy-catchall", "handoff"):
        return CATCHALL_ADMIN
    if finding.category == "legacy-keyring":
        return CATCHALL_PASSWORD_KEPT
    return ""


def accept_risks(plan: Plan, config: Config) -> None:
    """Mark accepted findings in place; a config entry that names no finding becomes a coverage line."""
    by_id = {r.id: r.reason for r in config.accepted_risks}
    matched: set[str] = set()
    for finding in plan.findings:
        reason = procedure_reason(finding, config)
        if reason:
            finding.accepted, finding.accepted_by = reason, "procedure"
        elif finding.id in by_id:
            finding.accepted, finding.accepted_by = by_id[finding.id], "config"
            matched.add(finding.id)
    for risk_id in by_id:
        if risk_id not in matched:
            plan.coverage.append(f"accepted_risks: {risk_id} matches no finding of this run")


def failing(plan: Plan, level: Severity) -> list[Finding]:
    """Unaccepted findings at or above `level` (what `status --fail-on` fails on)."""
    floor = RANK.index(level)
    return [f for f in plan.findings if not f.accepted and RANK.index(f.severity) >= floor]


__all__ = ["accept_risks", "failing", "procedure_reason"]
