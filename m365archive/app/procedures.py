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
from dataclasses import dataclass, field, replace
from typing import Any

from m365archive import __version__
from m365archive.app.selection import REQUIRES, USER_MAILBOXES, Selection, choose, readable
from m365archive.engine.checks import Check, blocking_failures
from m365archive.engine.plan import REF, Plan, canonical_json, fingerprint
from m365archive.errors import CommandError, Reason
from m365archive.risks import accept_risks
from m365archive.steps.base import PlanBlocked, StepContext, StepError, StepPlan
from m365archive.steps.seams import MailboxSelection, Planned, PolicyJoiners

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
    ctx: StepContext, procedure: str, selection: Selection | None = None, given: tuple[object, ...] = ()
) -> Plan:
    """The procedure's plan, or the part of it `selection` chooses (steps, and a staged rollout of user
    mailboxes); a saved plan's selection is replayed the same way (a step this procedure doesn't have is a
    StepError). `given` are the seams the command provides (steps/seams.py). A chosen step that needs
    another's output (selection.REQUIRES) plans that one too, reading only: while the other still has a
    change the chosen step's changes wait for, the plan is refused (StepError: exit 7, nothing sent)."""
    sel = selection or Selection()
    plan = Plan(procedure=procedure, tenant=ctx.tenant, operator=ctx.operator, tool_version=__version__)
    plan.notices = retirement_notices(procedure)
    everything = steps_for(procedure)
    names = [step.name for step in everything]
    wanted = names if sel.steps is None else sel.steps
    unknown = [s for s in wanted if s not in names]
    if unknown:
        raise StepError(f"the plan selects step(s) {', '.join(unknown)} that procedure {procedure} does not have")
    chosen = [name for name in names if name in wanted]
    if sel.staged and USER_MAILBOXES not in chosen:
        raise CommandError("--limit and --only choose user mailboxes: add `--step user-mailboxes`", Reason.USAGE)
    needed = _prerequisites(chosen)
    if sel.staged:
        given = (*given, await _stage(ctx, sel, next(step for step in everything if step.name == USER_MAILBOXES)))
    plan.selection = sel.to_dict(chosen)
    combined = StepPlan()
    read_only: dict[str, StepPlan] = {}
    blocked: StepError | None = None
    values: dict[type, Any] = {type(value): value for value in given}
    for step in everything:
        if step.name not in chosen and step.name not in needed:
            continue
        try:
            out = await step.run(ctx, values)
        except StepError as exc:  # a blocking prerequisite: stop here, but keep what was read for the report
            combined.checks.append(Check(f"{step.name}-prerequisite", str(exc), True, False))
            blocked = exc
            break
        if step.name in chosen:
            combined.extend(out)
        else:
            read_only[step.name] = out  # planned for its output only: none of its changes are in this plan
    if blocked is None and chosen != names:  # a whole procedure's plan holds every change its changes wait for
        combined.extend(await _joiners_alone(ctx, chosen, values))
        _refuse_unmet(combined, read_only)
    if sel.staged:
        _say_partial(plan, sel)
    if sel.steps is not None and chosen != names:
        plan.notices.append(
            f"Partial plan: only step(s) {', '.join(readable(s) for s in chosen)} (`setup --step`); "
            "`m365archive status` still checks every step."
        )
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


def _prerequisites(chosen: list[str]) -> set[str]:
    """Steps the chosen ones read output from, transitively, that are not chosen themselves."""
    out: set[str] = set()
    todo = list(chosen)
    while todo:
        for need in REQUIRES.get(todo.pop(), ()):
            if need not in out and need not in chosen:
                out.add(need)
                todo.append(need)
    return out


def _refuse_unmet(combined: StepPlan, read_only: dict[str, StepPlan]) -> None:
    """A chosen change that waits for a change this plan does not hold (a prerequisite step's, not done yet)
    refuses the whole plan: one line, nothing sent."""
    have = {c.id for c in combined.changes}
    owner = {c.id: name for name, out in read_only.items() for c in out.changes}
    for change in combined.changes:
        if change.operation is None:
            continue
        waits = set(change.depends_on) | {m.group(1) for m in REF.finditer(canonical_json(change.operation.request))}
        for dep in sorted(waits - have):
            step = owner.get(dep, dep.split("/", 1)[0])
            raise StepError(
                f"step {readable(change.step)} needs step {readable(step)} first, which is not done ({dep} is "
                f"pending): run `m365archive setup --step {readable(step)}` first, or add `--step {readable(step)}`; "
                "nothing was sent"
            )


async def _joiners_alone(ctx: StepContext, chosen: list[str], values: dict[type, Any]) -> StepPlan:
    """The catch-all joins the user mailboxes' retention policy through that step; without it in this plan,
    the catch-all's own policy membership is planned here (the user-mailbox step finds it covered later)."""
    joiners = values.get(PolicyJoiners)
    if joiners is None or not joiners.mailboxes or USER_MAILBOXES in chosen:
        return StepPlan()
    from m365archive.steps.catchall_mailbox import plan_retention_policy

    out = StepPlan()
    for upn, deps in joiners.mailboxes.items():
        out.extend(await plan_retention_policy(ctx, [upn], list(deps)))
    return out


async def _stage(ctx: StepContext, sel: Selection, users: Step) -> MailboxSelection:
    """Resolve a staged rollout into the mailboxes it covers: the selection the user-mailbox step plans
    with. A saved plan's mailboxes are taken as they are; otherwise the step is planned once over the
    whole scope (reads only, on a scratch context) to find the mailboxes that still need changes."""
    from m365archive.steps import user_mailboxes

    if sel.mailboxes is None:
        only = {u.lower() for u in sel.only}
        seen: set[str] = set()

        def named(upn: str) -> bool:
            seen.add(upn.lower())
            return not only or upn.lower() in only

        scratch = replace(ctx, observed={})
        first = await users.run(scratch, {MailboxSelection: MailboxSelection(named)})
        missing = sorted(only - seen)
        if missing:
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            raise CommandError(
                f"--only names {', '.join(missing[:3])}{more}: not a licensed user in scope; nothing was sent",
                Reason.USAGE,
            )
        catchall = ctx.config.catchall.upn.lower() if ctx.config.catchall is not None else ""
        needing = {u for u in user_mailboxes.mailboxes_to_change(first.changes) if u.lower() != catchall}
        in_scope = int(scratch.observed.get(user_mailboxes.SCOPE_KEY) or 0)
        sel.mailboxes = choose(needing, sel.limit, in_scope)
        sel.needing = len(needing)
    wanted = frozenset(u.lower() for u in sel.mailboxes)
    return MailboxSelection(lambda upn: upn.lower() in wanted)


def _say_partial(plan: Plan, sel: Selection) -> None:
    count = len(sel.mailboxes or [])
    how = f"--limit {sel.limit}" if sel.limit is not None else "--only"
    if sel.needing is None:  # a saved plan's mailboxes, replayed
        plan.notices.append(
            f"Partial plan (staged rollout, {how}): the {count:,} user mailbox(es) it names; "
            "`m365archive status` shows what remains."
        )
        return
    left = sel.needing - count
    again = (
        f"`m365archive setup --step user-mailboxes --limit {sel.limit}` again"
        if sel.limit and not sel.only
        else "setup again with the same options"
    )
    tail = f"{left:,} remain after it: run {again}." if left else "none remain after it."
    plan.notices.append(
        f"Partial plan (staged rollout, {how}): {count:,} of the {sel.needing:,} user mailbox(es) that still "
        f"need changes, in UPN order; {tail}"
    )
