"""`m365archive steps`: where the tenant stands in the configured procedure, as a checklist (reads only).

partner-ews: Microsoft's five steps, with the page's own titles; purview-connector: its preparation and,
for a tenant the retired route left things in, the clean-up. Each item has a state, what is left (with
counts), and the exact command that moves it forward. The states come from the same plan `status` makes
(and, for the clean-up, the plan `legacy cleanup` makes): nothing here reads the tenant its own way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from m365archive.app.context import Env, PrerequisiteFailed, connect, reading, tenant_info
from m365archive.app.procedures import make_plan, retirement_notices
from m365archive.app.selection import readable
from m365archive.config import Config
from m365archive.engine.plan import Action, Change, Plan
from m365archive.steps.base import StepContext
from m365archive.steps.user_mailboxes import SCOPE_KEY


class State(StrEnum):
    DONE = "done"
    PARTLY_DONE = "partly done"
    NOT_STARTED = "not started"
    NOT_APPLICABLE = "not applicable"
    RETIRED = "retired"  # a step of the retired EWS route that can no longer take effect
    MANUAL = "manual"  # done by hand where the tenant can't show it (the Purview portal)


# Microsoft's titles ("Work with a partner to archive third-party data", shared reference page).
PARTNER_EWS_TITLES = {
    1: "Step 1: Find a third-party data partner",
    2: "Step 2: Create and configure a third-party data mailbox in Microsoft 365",
    3: "Step 3: Configure user mailboxes for third-party data",
    4: "Step 4: Provide your partner with information",
    5: "Step 5: Register the third-party data connector in Azure Active Directory",
}
# user_mailboxes findings: mailboxes the procedure does not apply to, and those it can't configure (yet).
NOT_APPLICABLE = {"out-of-scope", "no-mailbox-licence"}
BLOCKED = {"not-provisioned", "hold-not-licensed", "needs-on-premises"}
WAITING = {"pending-directory-sync"}


@dataclass
class Item:
    key: str  # stable id: "step-1" ... "step-5", "connector-readiness", "user-mailboxes", "cleanup", ...
    title: str
    state: State
    left: str  # what is left, in words (with counts)
    next_command: str = ""  # the exact command that moves it forward ("" when nothing is left to run)
    steps: list[str] = field(default_factory=list)  # the `setup --step` names it covers
    counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "state": self.state.value,
            "left": self.left,
            "next_command": self.next_command or None,
            "steps": self.steps,
            "counts": self.counts,
        }


@dataclass
class Checklist:
    procedure: str
    tenant: dict[str, str]
    items: list[Item]
    notices: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "procedure": self.procedure,
            "tenant": self.tenant,
            "notices": self.notices,
            "items": [i.to_dict() for i in self.items],
        }


async def checklist(env: Env, config: Config) -> Checklist:
    """Read the tenant once (the plan `status` makes) and say where each step stands."""
    async with connect(env, config) as session:
        ctx = StepContext(
            config=config, session=session, tenant=tenant_info(session), operator=session.operator,
            progress=env.progress,
        )  # fmt: skip
        try:
            with reading():
                plan = await make_plan(ctx, config.procedure)
        except PrerequisiteFailed as exc:  # a blocking prerequisite: the steps read before it still say where they are
            if exc.plan is None:
                raise
            plan = exc.plan
        in_scope = int(ctx.observed.get(SCOPE_KEY) or 0)
        if config.procedure == "purview-connector":
            from m365archive.app.legacy import CleanupOptions, build_cleanup_plan

            cleanup = await build_cleanup_plan(env, config, session, CleanupOptions())
            items = [_readiness(plan), _user_mailboxes(config, plan, in_scope, "user-mailboxes"),
                     _portal(plan), _cleanup(cleanup)]  # fmt: skip
        else:
            items = partner_ews_items(config, plan, in_scope)
    return Checklist(config.procedure, plan.tenant, items, retirement_notices(config.procedure))


def _of(plan: Plan, *steps: str) -> list[Change]:
    return [c for c in plan.changes if c.step in steps]


def _counted(changes: list[Change]) -> dict[str, int]:
    pending = sum(1 for c in changes if c.action is not Action.NOOP)
    return {"settings": len(changes), "done": len(changes) - pending, "left": pending}


def _setup(*steps: str) -> str:
    return "m365archive setup " + " ".join(f"--step {readable(s)}" for s in steps)


def partner_ews_items(config: Config, plan: Plan, in_scope: int) -> list[Item]:
    partner_ok = any(c.id == "partner" and c.passed for c in plan.checks)
    step1 = (
        Item(
            "step-1", PARTNER_EWS_TITLES[1], State.DONE, f"partner chosen: {config.partner}", steps=["partner-handoff"]
        )
        if partner_ok
        else Item(
            "step-1",
            PARTNER_EWS_TITLES[1],
            State.NOT_STARTED,
            'no partner from the reference page is chosen: set `partner = "..."` in the config',
            "m365archive partners",
            ["partner-handoff"],
        )
    )
    step2 = _catchall(plan)
    step4_ready = step2.state is State.DONE
    step4 = Item(
        "step-4",
        PARTNER_EWS_TITLES[4],
        State.RETIRED,
        "EWS-based partner ingestion was retired on 2024-12-30: a partner can no longer import with this packet; "
        + ("it is written for audits that require the procedure" if step4_ready else "it needs Step 2 done first"),
        "m365archive partner-info --out handoff.md" if step4_ready else step2.next_command,
        ["partner-handoff"],
    )
    consented = any(c.id == "connector-consent" and c.passed for c in plan.checks)
    step5 = (
        Item(
            "step-5",
            PARTNER_EWS_TITLES[5],
            State.DONE,
            "the connector app is consented; the route it serves is retired: `m365archive consent revoke` removes it "
            "when no partner needs it",
            "",
            ["connector-consent"],
        )
        if consented
        else Item(
            "step-5",
            PARTNER_EWS_TITLES[5],
            State.RETIRED,
            "no consent to the connector app; EWS-based partner ingestion was retired on 2024-12-30, so it only "
            "reproduces the procedure",
            "m365archive consent grant",
            ["connector-consent"],
        )
    )
    return [step1, step2, _user_mailboxes(config, plan, in_scope, "step-3", PARTNER_EWS_TITLES[3]), step4, step5]


def _catchall(plan: Plan) -> Item:
    steps = ("catchall_account", "catchall_mailbox")
    changes = _of(plan, *steps)
    counts = _counted(changes)
    waiting = [f for f in plan.findings if f.step == "catchall_mailbox" and f.severity.value == "warning"]
    blocking = [c.title for c in plan.checks if c.blocking and not c.passed]
    pending_steps = [s for s in steps if any(c.step == s and c.action is not Action.NOOP for c in changes)]
    created = not any(c.id.startswith("catchall_account/create-user/") and c.action is not Action.NOOP for c in changes)
    if not created:
        state, left = State.NOT_STARTED, f"the catch-all account does not exist: {counts['left']} setting(s) to make"
    elif counts["left"] or waiting:
        state = State.PARTLY_DONE
        left = f"{counts['done']} of {counts['settings']} setting(s) in place, {counts['left']} left"
    else:
        state, left = State.DONE, f"{counts['settings']} setting(s) in place"
    if waiting:
        left += "; " + "; ".join(f.message for f in waiting)
    if blocking:
        left += "; blocked: " + "; ".join(blocking)
    command = _setup(*pending_steps) if pending_steps else (_setup("catchall_mailbox") if waiting else "")
    return Item("step-2", PARTNER_EWS_TITLES[2], state, left, command, [readable(s) for s in steps], counts)


def _user_mailboxes(config: Config, plan: Plan, in_scope: int, key: str, title: str = "") -> Item:
    from m365archive.steps.user_mailboxes import NAME, mailboxes_to_change

    title = title or "User mailboxes: archive and hold"
    if config.users.scope == "none":
        return Item(
            key, title, State.NOT_APPLICABLE, 'no users in scope ([users] scope = "none")', steps=["user-mailboxes"]
        )
    catchall = config.catchall.upn.lower() if config.catchall is not None else ""
    needing = {u.lower() for u in mailboxes_to_change(plan.pending)} - {catchall}

    def targets(categories: set[str]) -> set[str]:
        return {f.target.lower() for f in plan.findings if f.step == NAME and f.category in categories}

    not_applicable = targets(NOT_APPLICABLE)
    blocked = targets(BLOCKED) - needing
    waiting = targets(WAITING) - needing - blocked
    done = max(0, in_scope - len(needing | not_applicable | blocked | waiting))
    counts = {"in_scope": in_scope, "done": done, "left": len(needing), "waiting": len(waiting),
              "not_configurable": len(blocked), "not_applicable": len(not_applicable)}  # fmt: skip
    parts = [f"{done:,} of {in_scope - len(not_applicable):,} mailbox(es) configured", f"{len(needing):,} left"]
    if waiting:
        parts.append(f"{len(waiting):,} waiting for directory sync (`m365archive status` shows when they arrive)")
    if blocked:
        parts.append(f"{len(blocked):,} can't be configured yet (`m365archive status` says why)")
    if needing:
        state = State.NOT_STARTED if not done and not waiting else State.PARTLY_DONE
        command = _setup(NAME)
        if len(needing) > 1000:
            parts.append("in stages: add `--limit 10%`")
    else:
        state = State.PARTLY_DONE if waiting else State.DONE
        command = "m365archive status" if waiting else ""
    return Item(key, title, state, "; ".join(parts), command, ["user-mailboxes"], counts)


def _readiness(plan: Plan) -> Item:
    changes = _of(plan, "connector_readiness")
    counts = _counted(changes)
    failed = [c.title for c in plan.checks if c.blocking and not c.passed]
    if not counts["left"] and not failed:
        state, left, command = State.DONE, f"{counts['settings']} setting(s) in place", ""
    else:
        state = State.NOT_STARTED if not counts["done"] else State.PARTLY_DONE
        left = f"{counts['done']} of {counts['settings']} setting(s) in place, {counts['left']} left"
        if failed:
            left += "; blocked: " + "; ".join(failed)
        command = _setup("connector_readiness")
    title = "Prepare the tenant for a Microsoft Purview data connector"
    return Item("connector-readiness", title, state, left, command, ["connector-readiness"], counts)


def _portal(plan: Plan) -> Item:
    return Item(
        "connector-handoff",
        "Create the data connector in the Microsoft Purview portal",
        State.MANUAL,
        "by hand: no public API or cmdlet creates data connectors; the plan's instructions say what to pick",
        "m365archive setup --step connector-handoff --dry-run",
        ["connector-handoff"],
    )


def _cleanup(cleanup: Plan) -> Item:
    counts = _counted(cleanup.changes)
    candidates = [f.target for f in cleanup.findings if f.category == "candidate"]
    title = "Clean up what the retired EWS partner route left behind"
    if not cleanup.changes:
        left = "nothing of the retired route was found"
        if candidates:
            left = f"{len(candidates)} account(s) look like its catch-all: confirm with --account"
            return Item("cleanup", title, State.NOT_STARTED, left,
                        f"m365archive legacy cleanup --account {candidates[0]}", [], counts)  # fmt: skip
        return Item("cleanup", title, State.NOT_APPLICABLE, left, "", [], counts)
    if counts["left"]:
        state = State.NOT_STARTED if not counts["done"] else State.PARTLY_DONE
        left = f"{counts['left']} removal(s) left of {counts['settings']} (access only: the data is kept)"
        command = "m365archive legacy cleanup"
    else:
        state, left, command = State.DONE, f"{counts['settings']} removal(s) done; the data is kept", ""
    if candidates:
        left += f"; {len(candidates)} more account(s) look like its catch-all: `--account UPN` to include them"
    return Item("cleanup", title, state, left, command, [], counts)
