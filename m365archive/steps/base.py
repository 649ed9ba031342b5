"""What every step shares: the context it reads through, and what it returns.

A step's `plan(ctx, ...)` reads actual state through ctx.session, compares it with ctx.config and
returns a StepPlan. It never writes. Steps talk to each other only through typed values declared in
their signatures (steps/seams.py), never through the context.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from m365archive.engine.checks import Check
from m365archive.engine.plan import Action, Change, Finding, Operation, OperationKind, Severity
from m365archive.tenant.exchange import Cmdlet

if TYPE_CHECKING:
    from m365archive.config import Config
    from m365archive.tenant.session import TenantSession

GRAPH = "Microsoft Graph"
EXO = "Exchange Online"
SCC = "Security & Compliance"
ONPREM = "on-premises Exchange"
LOCAL = "this machine"


class StepError(Exception):
    """A prerequisite failed: nothing can be applied (e.g. no licence seat left)."""


class PlanBlocked(StepError):
    """A blocking prerequisite failed; `plan` holds what was read up to it (with the failed check), so
    the report can still be written and show why nothing will be applied."""

    def __init__(self, message: str, plan: Any) -> None:
        super().__init__(message)
        self.plan = plan


@dataclass
class StepContext:
    config: Config
    session: TenantSession
    tenant: dict[str, str]
    operator: str
    observed: dict[str, Any] = field(default_factory=dict)
    progress: Callable[[str], None] = lambda message: None

    def observe(self, key: str, value: Any) -> None:
        """Record what was read; the plan's fingerprint is a digest of all of it."""
        self.observed[key] = value


@dataclass
class StepPlan:
    changes: list[Change] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    instructions: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    coverage: list[str] = field(default_factory=list)

    def extend(self, other: StepPlan) -> None:
        self.changes += other.changes
        self.findings += other.findings
        self.checks += other.checks
        self.instructions += other.instructions
        self.notices += other.notices
        self.coverage += other.coverage


def cmdlet_operation(kind: OperationKind, cmdlet: Cmdlet, ok_if_error: list[str] | None = None) -> Operation:
    """An operation that runs one cmdlet; `kind` is EXCHANGE, COMPLIANCE or ONPREM."""
    line = cmdlet.powershell()  # the request line is the PowerShell line: one string, not two
    return Operation(
        kind=kind,
        request={"cmdlet": cmdlet.name, "parameters": cmdlet.parameters},
        display=line,
        powershell=line,
        ok_if_error=ok_if_error or [],
    )


def graph_operation(
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    powershell: str = "",
    ok_if_error: list[str] | None = None,
    on_conflict_get: str | None = None,
) -> Operation:
    request: dict[str, Any] = {"method": method, "path": path}
    if body is not None:
        request["body"] = body
    if on_conflict_get:
        request["on_conflict_get"] = on_conflict_get
    return Operation(
        kind=OperationKind.GRAPH,
        request=request,
        display=f"{method} /v1.0{path}",
        powershell=powershell,
        ok_if_error=ok_if_error or [],
    )


def change(
    *,
    step: str,
    key: str,
    target: str,
    setting: str,
    before: Any,
    after: Any,
    operation: Operation | None,
    side: str,
    action: Action | None = None,
    **extra: Any,
) -> Change:
    """A Change whose action follows from before/after unless given (its id is "<step>/<key>/<target>"; a
    no-op carries no operation)."""
    if action is None:
        action = Action.NOOP if before == after else (Action.CREATE if before is None else Action.UPDATE)
    return Change(
        id=f"{step}/{key}/{target}",
        step=step,
        target=target,
        setting=setting,
        action=action,
        before=before,
        after=after,
        operation=operation if action is not Action.NOOP else None,
        side=side,
        **extra,
    )


def finding(step: str, target: str, severity: Severity, message: str, remedy: str = "", category: str = "") -> Finding:
    return Finding(step=step, target=target, severity=severity, message=message, remedy=remedy, category=category)
