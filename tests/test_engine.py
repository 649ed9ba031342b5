"""The engine alone: ordering, placeholders, secrets, journal, partial failure, resume.

The Executor here is a test double of the engine's own protocol (the engine knows nothing of
Microsoft); Graph and Exchange are exercised through the simulator in the other tests.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from m365archive.engine.journal import Journal
from m365archive.engine.plan import Action, Change, Operation, Plan, Wait, fingerprint, present, ref, secret
from m365archive.engine.runner import ExecResult, Runner


class RecordingExecutor:
    def __init__(self, fail: set[str] | None = None) -> None:
        self.sent: list[dict[str, Any]] = []
        self.fail = fail or set()
        self.waited: list[str] = []
        self.batches: list[list[str]] = []  # the names sent by each execute_many call

    def batch_key(self, op: Operation) -> str | None:
        return "batch" if op.kind == "exchange" else None

    async def execute(self, op: Operation, request: dict[str, Any]) -> ExecResult:
        self.sent.append(request)
        if request.get("name") in self.fail:
            return ExecResult(ok=False, error="boom")
        return ExecResult(ok=True, body={"id": f"id-of-{request.get('name')}"}, request_id="rid")

    async def execute_many(self, ops: list[tuple[Operation, dict[str, Any]]]) -> list[ExecResult]:
        self.batches.append([str(req.get("name")) for _, req in ops])
        return [await self.execute(op, req) for op, req in ops]

    async def wait(self, wait: Wait, resolved_target: str, tick: Callable[[str], None]) -> bool:
        self.waited.append(resolved_target)
        return True


def op(name: str, kind: str = "graph", **extra: Any) -> Operation:
    return Operation(kind=kind, request={"name": name, **extra}, display=name)


def make_plan(*changes: Change) -> Plan:
    return Plan(procedure="partner-ews", tenant={"id": "t"}, operator="me", tool_version="0", changes=list(changes))


def c(cid: str, operation: Operation | None, deps: list[str] | None = None, **kw: Any) -> Change:
    return Change(
        id=cid,
        step="s",
        target=cid,
        setting="x",
        action=Action.UPDATE if operation else Action.NOOP,
        before=None,
        after=1,
        operation=operation,
        depends_on=deps or [],
        **kw,
    )


def run(plan: Plan, executor: RecordingExecutor, journal: Journal, secrets: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    runner = Runner(executor, journal, secrets=lambda n: (secrets or {})[n])
    return asyncio.run(runner.apply(plan))


def test_dependencies_refs_and_secrets_resolve_only_when_sending(tmp_path: Path) -> None:
    create = c("create", op("create", body={"password": secret("pw")}), outputs={"id": "id"})
    use = c(
        "use",
        op("use", path=f"/users/{ref('create', 'id')}"),
        deps=["create"],
        wait=Wait("exchange-mailbox", ref("create", "id"), 5, "waiting"),
    )
    plan = make_plan(use, create)
    executor = RecordingExecutor()
    journal = Journal(tmp_path / "j.sqlite3")
    result = run(plan, executor, journal, {"pw": "s3cret-value"})
    assert result.status == "success"
    assert [r["name"] for r in executor.sent] == ["create", "use"]
    assert executor.sent[0]["body"]["password"] == "s3cret-value"
    assert executor.sent[1]["path"] == "/users/id-of-create"
    assert executor.waited == ["id-of-create"]
    # Neither the plan nor the journal holds the secret.
    assert "s3cret-value" not in plan.to_json()
    assert "s3cret-value" not in json.dumps(journal.rows(), default=str)
    assert present(plan.changes[0].operation.request["path"]) == "(known after apply)"  # type: ignore[union-attr]


def test_failure_skips_dependents_and_the_rest_converges(tmp_path: Path) -> None:
    a = c("a", op("a"))
    b = c("b", op("b"), deps=["a"])
    d = c("d", op("d"))
    executor = RecordingExecutor(fail={"a"})
    result = run(make_plan(a, b, d), executor, Journal(tmp_path / "j.sqlite3"))
    outcomes = {o.change_id: o.outcome for o in result.outcomes}
    assert outcomes == {"a": "failed", "b": "skipped", "d": "ok"}
    assert result.status == "partial"
    assert [r["name"] for r in executor.sent] == ["a", "d"]


def test_noops_are_not_sent_and_batchable_changes_go_together(tmp_path: Path) -> None:
    changes = [c(f"m{i}", op(f"m{i}", kind="exchange")) for i in range(5)] + [c("same", None), c("g", op("g"))]
    executor = RecordingExecutor()
    result = run(make_plan(*changes), executor, Journal(tmp_path / "j.sqlite3"))
    assert len(executor.sent) == 6
    assert executor.batches == [[f"m{i}" for i in range(5)]]  # one execute_many call; "g" is not batchable
    assert len(result.outcomes) == 6


def test_a_resumed_plan_does_not_resend_completed_changes(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    plan = make_plan(c("a", op("a"), outputs={"id": "id"}), c("b", op("b", x=ref("a", "id")), deps=["a"]))
    first = RecordingExecutor(fail={"b"})
    run(plan, first, journal)
    second = RecordingExecutor()
    result = run(plan, second, journal)
    assert [r["name"] for r in second.sent] == ["b"]
    assert second.sent[0]["x"] == "id-of-a"  # the output of the earlier run is reused
    assert {o.change_id: o.outcome for o in result.outcomes} == {"a": "resumed", "b": "ok"}


def test_plan_round_trips_and_fingerprint_is_order_independent() -> None:
    plan = make_plan(c("a", op("a"), warnings=["w"]))
    again = Plan.from_dict(json.loads(plan.to_json()))
    assert again.to_dict() == plan.to_dict()
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})


def test_levels_are_the_longest_dependency_path_in_plan_order_and_a_cycle_is_refused() -> None:
    import graphlib

    import pytest

    from m365archive.engine.runner import _levels

    changes = [
        c("d", op("d"), ["b", "c"]),
        c("a", op("a")),
        c("c", op("c"), ["a"]),
        c("b", op("b"), ["a", "gone"]),  # a dependency outside the pending changes is already done
        c("e", op("e")),
    ]
    assert [[x.id for x in level] for level in _levels(changes)] == [["a", "e"], ["c", "b"], ["d"]]
    with pytest.raises(graphlib.CycleError):
        _levels([c("x", op("x"), ["y"]), c("y", op("y"), ["x"])])
