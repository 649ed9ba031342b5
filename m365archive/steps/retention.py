"""Retention policies on the Security & Compliance side, shared by the catch-all and user-mailbox steps."""

from __future__ import annotations

from typing import Any

from m365archive.engine.plan import Change
from m365archive.steps.base import SCC, change, cmdlet_operation
from m365archive.tenant.exchange import Cmdlet


def new_policy(
    step: str, name: str, mailboxes: list[str], duration: str, *, after: Any, deps: list[str] | None = None
) -> list[Change]:
    """A new retention policy covering `mailboxes`, and its rule keeping items for `duration`."""
    policy = change(
        step, "retention-policy", name, "retention policy", None, after,
        cmdlet_operation("compliance", Cmdlet("New-RetentionCompliancePolicy",
                                              {"Name": name, "ExchangeLocation": mailboxes})),
        side=SCC, category="retention-policy", depends_on=list(deps or []),
        rollback=f"Remove-RetentionCompliancePolicy -Identity '{name}'",
    )  # fmt: skip
    rule = change(
        step, "retention-rule", name, "retention rule", None, duration,
        cmdlet_operation("compliance", Cmdlet("New-RetentionComplianceRule", {
            "Name": f"{name} rule", "Policy": name, "RetentionDuration": duration,
            "RetentionComplianceAction": "Keep"})),
        side=SCC, category="retention-policy", depends_on=[policy.id],
    )  # fmt: skip
    return [policy, rule]
