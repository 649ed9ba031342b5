"""Which steps make up each procedure, and how their plans become one Plan."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from m365archive import __version__
from m365archive.engine.checks import Check, blocking_failures
from m365archive.engine.plan import Plan, fingerprint
from m365archive.risks import accept_risks
from m365archive.steps.base import PlanBlocked, StepContext, StepError, StepPlan

if TYPE_CHECKING:
    pass

StepFn = Callable[[StepContext], Awaitable[StepPlan]]


def steps_for(procedure: str) -> list[tuple[str, StepFn]]:
    from m365archive.steps import catchall_account, catchall_mailbox, connector_consent, legacy_cleanup, partner_handoff

    optional: list[tuple[str, StepFn]] = []
    try:
        from m365archive.steps import user_mailboxes

        optional.append(("user_mailboxes", user_mailboxes.plan))
    except ImportError:  # pragma: no cover - step not built yet
        pass
    if procedure == "partner-ews":
        return [
            ("catchall_account", catchall_account.plan),
            ("catchall_mailbox", catchall_mailbox.plan),
            *optional,
            ("partner_handoff", partner_handoff.plan),
            ("connector_consent", connector_consent.plan),
            ("legacy_leftovers", legacy_cleanup.leftover_findings),
        ]
    if procedure == "purview-connector":
        from m365archive.steps import connector_readiness

        return [
            ("connector_readiness", connector_readiness.plan),
            *optional,
            ("connector_handoff", connector_readiness.handoff),
        ]
    raise ValueError(f"unknown procedure {procedure!r}")


def retirement_notices(procedure: str) -> list[str]:
    if procedure != "partner-ews":
        return []
    from m365archive.partners import retirement_notice

    return [retirement_notice()]


async def make_plan(ctx: StepContext, procedure: str, steps: list[str] | None = None) -> Plan:
    """The procedure's plan; `steps` replays a saved plan's selection (a step this procedure doesn't
    have is a StepError)."""
    plan = Plan(procedure=procedure, tenant=ctx.tenant, operator=ctx.operator, tool_version=__version__)
    plan.notices = retirement_notices(procedure)
    chosen = steps_for(procedure)
    if steps is not None:
        unknown = [s for s in steps if s not in {name for name, _ in chosen}]
        if unknown:
            raise StepError(f"the plan selects step(s) {', '.join(unknown)} that procedure {procedure} does not have")
        chosen = [(name, fn) for name, fn in chosen if name in steps]
    plan.selection = {"steps": [name for name, _ in chosen]}
    combined = StepPlan()
    blocked: StepError | None = None
    for name, step in chosen:
        try:
            combined.extend(await step(ctx))
        except StepError as exc:  # a blocking prerequisite: stop here, but keep what was read for the report
            combined.checks.append(Check(f"{name}-prerequisite", str(exc), True, False))
            blocked = exc
            break
    plan.changes = combined.changes
    plan.findings = combined.findings
    plan.checks = combined.checks
    plan.instructions = combined.instructions
    plan.notices += combined.notices
    plan.coverage = combined.coverage
    plan.fingerprint = fingerprint(ctx.observed)
    accept_risks(plan, ctx.config)
    plan.appliable = not blocking_failures(plan.checks)
    if blocked is not None:
        raise PlanBlocked(str(blocked), plan)
    return plan
