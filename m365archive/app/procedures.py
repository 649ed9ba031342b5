"""Which steps make up each procedure, and how their plans become one Plan.

A step declares what it needs from earlier steps as typed parameters after `ctx`, and what it gives
later ones as its return type `Planned[<Seam>]` (steps/seams.py). `Step` reads that from the signature;
`make_plan` hands each step the values given before it, and `wiring_problems` says when a procedure
lists a step before the step that gives what it needs.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from m365archive import __version__
from m365archive.engine.checks import Check, blocking_failures
from m365archive.engine.plan import Plan, fingerprint
from m365archive.risks import accept_risks
from m365archive.steps.base import PlanBlocked, StepContext, StepError, StepPlan
from m365archive.steps.seams import Planned

StepFn = Callable[..., Awaitable[StepPlan | Planned[Any]]]


@dataclass(frozen=True)
class Step:
    """One step of a procedure: its name in plans (selection, change ids) and its planning function."""

    name: str
    fn: StepFn
    needs: dict[str, type] = field(init=False, compare=False)  # parameter -> seam type, in signature order
    gives: type | None = field(init=False, compare=False)

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(self.fn)
        params = list(inspect.signature(self.fn).parameters)[1:]  # after ctx
        object.__setattr__(self, "needs", {p: hints[p] for p in params})
        returned = hints.get("return")
        gives = typing.get_args(returned)[0] if typing.get_origin(returned) is Planned else None
        object.__setattr__(self, "gives", gives)

    async def run(self, ctx: StepContext, given: dict[type, Any]) -> StepPlan:
        """Plan this step with what was given before it (a seam nothing gave: its defaults, "not read")."""
        result = await self.fn(ctx, **{p: given[t] if t in given else t() for p, t in self.needs.items()})
        if isinstance(result, Planned):
            given[type(result.gives)] = result.gives
            return result.plan
        return result


def steps_for(procedure: str) -> list[Step]:
    from m365archive.steps import (
        catchall_account,
        catchall_mailbox,
        connector_consent,
        legacy_cleanup,
        partner_handoff,
        user_mailboxes,
    )

    if procedure == "partner-ews":
        return [
            Step("catchall_account", catchall_account.plan),
            Step("catchall_mailbox", catchall_mailbox.plan),
            Step("user_mailboxes", user_mailboxes.plan),
            Step("partner_handoff", partner_handoff.plan),
            Step("connector_consent", connector_consent.plan),
            Step("legacy_leftovers", legacy_cleanup.leftover_findings),
        ]
    if procedure == "purview-connector":
        from m365archive.steps import connector_readiness

        return [
            Step("connector_readiness", connector_readiness.plan),
            Step("user_mailboxes", user_mailboxes.plan),
            Step("connector_handoff", connector_readiness.handoff),
        ]
    raise ValueError(f"unknown procedure {procedure!r}")


def wiring_problems(steps: list[Step], given: tuple[type, ...] = ()) -> list[str]:
    """A step that needs what only a later step gives (or that two steps give): the order is wrong.
    `given` are the seams the command itself provides; a seam nobody gives is planned as "not read"."""
    problems: list[str] = []
    made: dict[type, str] = {t: "the command" for t in given}
    later = {s.gives: s.name for s in steps if s.gives is not None}
    for step in steps:
        for param, seam in step.needs.items():
            if seam not in made and seam in later:
                problems.append(f"{step.name} needs {seam.__name__} ({param}), which {later[seam]} gives after it")
        if step.gives is not None:
            if step.gives in made:
                problems.append(f"{step.name} gives {step.gives.__name__}, which {made[step.gives]} gave already")
            made[step.gives] = step.name
    return problems


def retirement_notices(procedure: str) -> list[str]:
    if procedure != "partner-ews":
        return []
    from m365archive.partners import retirement_notice

    return [retirement_notice()]


async def make_plan(
    ctx: StepContext, procedure: str, steps: list[str] | None = None, given: tuple[object, ...] = ()
) -> Plan:
    """The procedure's plan; `steps` replays a saved plan's selection (a step this procedure doesn't
    have is a StepError); `given` are the seams the command provides (steps/seams.py)."""
    plan = Plan(procedure=procedure, tenant=ctx.tenant, operator=ctx.operator, tool_version=__version__)
    plan.notices = retirement_notices(procedure)
    chosen = steps_for(procedure)
    if steps is not None:
        unknown = [s for s in steps if s not in {step.name for step in chosen}]
        if unknown:
            raise StepError(f"the plan selects step(s) {', '.join(unknown)} that procedure {procedure} does not have")
        chosen = [step for step in chosen if step.name in steps]
    plan.selection = {"steps": [step.name for step in chosen]}
    combined = StepPlan()
    blocked: StepError | None = None
    values: dict[type, Any] = {type(value): value for value in given}
    for step in chosen:
        try:
            combined.extend(await step.run(ctx, values))
        except StepError as exc:  # a blocking prerequisite: stop here, but keep what was read for the report
            combined.checks.append(Check(f"{step.name}-prerequisite", str(exc), True, False))
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
