"""Retention policies on the Security & Compliance side, shared by the catch-all and user-mailbox steps."""

from __future__ import annotations

from typing import Any

from m365archive.engine.plan import Change, OperationKind
from m365archive.powershell import command
from m365archive.steps.base import SCC, change, cmdlet_operation
from m365archive.tenant.exchange import Cmdlet


def hold_duration(value: Any) -> str:
    """A Litigation Hold duration as the config says it: Exchange shows '2555.00:00:00' or 'Unlimited'."""
    text = str(value or "Unlimited")
    return "Unlimited" if text.lower() == "unlimited" else text.split(".")[0]


def location_names(policy: dict[str, Any] | None, key: str = "ExchangeLocation") -> set[str]:
    """A retention policy's locations, lower case. Each location is an object read through `.Name`
    (Microsoft365DSC SCRetentionCompliancePolicy: `$policy.ExchangeLocation.Name`; Microsoft's
    eDiscovery hold scripts do the same); a plain string is taken as it is, since how the REST JSON
    serializes these objects is unverified."""
    out: set[str] = set()
    for item in (policy or {}).get(key) or []:
        if isinstance(item, dict):
            name = item.get("Name") or item.get("DisplayName") or item.get("Identity")
            if name:
                out.add(str(name).lower())
        elif item is not None:
            out.add(str(item).lower())
    return out


def new_policy(
    step: str, name: str, mailboxes: list[str], duration: str, *, after: Any, deps: list[str] | None = None
) -> list[Change]:
    """A new retention policy covering `mailboxes`, and its rule keeping items for `duration`."""
    policy = change(
        step=step, key="retention-policy", target=name, setting="retention policy", before=None, after=after,
        operation=cmdlet_operation(OperationKind.COMPLIANCE, Cmdlet("New-RetentionCompliancePolicy",
                                              {"Name": name, "ExchangeLocation": mailboxes})),
        side=SCC, category="retention-policy", depends_on=list(deps or []),
        rollback=command("Remove-RetentionCompliancePolicy", {"Identity": name}),
        rollback_note="deletes the policy and its rule; the mailboxes it covered keep their items under a 30-day "
        "delay hold first (source: Microsoft Purview 'Manage mailboxes on delay hold')",
    )  # fmt: skip
    rule = change(
        step=step, key="retention-rule", target=name, setting="retention rule", before=None, after=duration,
        operation=cmdlet_operation(OperationKind.COMPLIANCE, Cmdlet("New-RetentionComplianceRule", {
            "Name": f"{name} rule", "Policy": name, "RetentionDuration": duration,
            "RetentionComplianceAction": "Keep"})),
        side=SCC, category="retention-policy", depends_on=[policy.id],
    )  # fmt: skip
    return [policy, rule]
