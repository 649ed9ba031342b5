"""Issue 11: steps talk through typed seams declared in their signatures, in an order that is checked."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from m365archive.app.procedures import Step, steps_for, wiring_problems
from m365archive.steps import catchall_account, catchall_mailbox, user_mailboxes
from m365archive.steps.base import StepContext, StepPlan
from m365archive.steps.seams import SEAMS, CatchallUser, LocalSecrets, Planned, PolicyJoiners

PROCEDURES = ["partner-ews", "purview-connector"]


@pytest.mark.parametrize("procedure", PROCEDURES)
def test_every_step_needs_only_seams_given_before_it(procedure: str) -> None:
    steps = steps_for(procedure)
    assert wiring_problems(steps, given=(LocalSecrets,)) == []
    for step in steps:
        assert set(step.needs.values()) <= set(SEAMS), step.name
        assert step.gives is None or step.gives in SEAMS, step.name


def test_a_step_listed_before_the_one_that_gives_its_input_is_reported() -> None:
    steps = steps_for("partner-ews")
    swapped = [steps[1], steps[0], *steps[2:]]
    assert wiring_problems(swapped, given=(LocalSecrets,)) == [
        "catchall_mailbox needs CatchallUser (user), which catchall_account gives after it"
    ]
    twice = [*steps[:2], Step("again", catchall_account.plan)]
    assert wiring_problems(twice) == ["again gives CatchallUser, which catchall_account gave already"]


def test_the_signature_declares_needs_and_gives() -> None:
    assert Step("m", catchall_mailbox.plan).needs == {"user": CatchallUser}
    assert Step("m", catchall_mailbox.plan).gives is PolicyJoiners
    assert Step("a", catchall_account.plan).needs == {}
    assert Step("u", user_mailboxes.plan).gives is None


def test_seams_are_frozen_and_their_defaults_mean_not_read() -> None:
    for seam in SEAMS:
        value = seam()
        fields = dataclasses.fields(value)
        if fields:
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(value, fields[0].name, None)
    assert CatchallUser() == CatchallUser(exists=False, mailbox_after=())
    assert dict(PolicyJoiners().mailboxes) == {}
    assert LocalSecrets().held("a@b.c") is None


async def _gives(ctx: StepContext) -> Planned[CatchallUser]:
    return Planned(StepPlan(), CatchallUser(exists=True, mailbox_after=("x",)))


def test_a_given_value_reaches_the_step_that_needs_it_and_a_missing_one_is_its_default() -> None:
    seen: list[CatchallUser] = []

    async def needs(ctx: StepContext, user: CatchallUser) -> StepPlan:
        seen.append(user)
        return StepPlan()

    ctx = StepContext.__new__(StepContext)  # the steps here read nothing through it
    given: dict[type, object] = {}

    async def plan() -> None:
        await Step("needs", needs).run(ctx, given)
        await Step("gives", _gives).run(ctx, given)
        await Step("needs", needs).run(ctx, given)

    asyncio.run(plan())
    assert seen == [CatchallUser(), CatchallUser(exists=True, mailbox_after=("x",))]


def test_no_function_in_steps_is_longer_than_80_lines() -> None:
    import ast
    from pathlib import Path

    import m365archive.steps

    root = Path(m365archive.steps.__file__).parent
    long = []
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > 80:
                    long.append(f"{path.name}:{node.lineno} {node.name} ({lines} lines)")
    assert len(list(root.glob("*.py"))) >= 10  # the files are there to be measured
    assert long == []
