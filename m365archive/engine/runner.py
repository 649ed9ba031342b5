"""Apply a plan's changes, then nothing else.

Order follows `depends_on`; changes of one level that an executor can batch (Exchange cmdlets)
are sent together; waits poll until the service shows the effect; every outcome is journaled;
a failed change skips its dependents and the rest still converge (partial is a status).
"""

from __future__ import annotations

import asyncio
import contextlib
import graphlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from m365archive.engine.journal import Journal, JournalError
from m365archive.engine.plan import REF, SECRET, Action, Change, Operation, Plan, Wait

FOREIGN = "already existed: not created by this run"


@dataclass
class ExecResult:
    ok: bool
    body: Any = None  # the response (Graph JSON body, or the cmdlet's first output object)
    request_id: str | None = None
    error: str | None = None
    already: bool = False  # the service said it was already so (ok_if_error matched)
    foreign: bool = False  # a create found the object there, and no earlier attempt of this run sent it
    interrupted: bool = False  # the run was stopped (Ctrl-C) before the change was confirmed


def secrets_not_set(plan: Plan, result: ApplyResult) -> list[Change]:
    """Creates that carried a secret but found the object already there (made by another run or
    person): the secret this run generated and stored is not the object's."""
    foreign = {o.change_id for o in result.outcomes if o.detail == FOREIGN}
    return [
        c
        for c in plan.changes
        if c.id in foreign and c.operation is not None and SECRET.search(json.dumps(c.operation.request))
    ]


class Executor(Protocol):
    """What tenant/ provides to the engine: sending operations and polling for waits."""

    def batch_key(self, op: Operation) -> str | None:
        """Operations with the same non-None key may be sent together through execute_many."""
        ...

    async def execute(self, op: Operation, request: dict[str, Any]) -> ExecResult: ...

    async def execute_many(self, ops: list[tuple[Operation, dict[str, Any]]]) -> list[ExecResult]: ...

    async def wait(self, wait: Wait, resolved_target: str, tick: Callable[[str], None]) -> bool: ...

    def stop(self) -> None:
        """The run is stopping (Ctrl-C): end pauses before resends and polls now (an ExecResult with
        `interrupted` reports a change stopped that way)."""
        ...


class EventKind(StrEnum):
    START = "start"
    PROGRESS = "progress"
    WAIT = "wait"  # polling for a change's effect (message says what)
    WAITED = "waited"  # the wait ended (done, timed out or stopped)
    DONE = "done"


class OutcomeKind(StrEnum):
    """How one change ended (the value is what the journal, the CSV and JSON output hold)."""

    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"  # not sent: a change it depends on failed
    RESUMED = "resumed"  # already applied by an earlier run of this plan
    INTERRUPTED = "interrupted"  # sent; stopped before it was confirmed
    NOT_RUN = "not run"  # pending, and the run stopped before it (reports only)


class RunStatus(StrEnum):
    """How a whole apply run ended (the journal's runs.status)."""

    SUCCESS = "success"
    PARTIAL = "partial"
    ERROR = "error"
    INTERRUPTED = "interrupted"
    CRASHED = "crashed"


@dataclass
class Event:
    kind: EventKind
    done: int = 0
    total: int = 0
    message: str = ""


@dataclass
class ChangeOutcome:
    change_id: str
    target: str
    setting: str
    outcome: OutcomeKind
    detail: str = ""
    request_id: str | None = None
    timed_out: bool = False  # sent, then the service did not show its effect within the wait's timeout


@dataclass
class ApplyResult:
    run_id: str
    outcomes: list[ChangeOutcome] = field(default_factory=list)
    interrupted: bool = False
    crashed: str = ""  # why the run stopped before its end (an unexpected error, a journal it could not write)
    pending: list[str] = field(default_factory=list)  # applied, not yet visible (e.g. awaiting directory sync)

    @property
    def failed(self) -> list[ChangeOutcome]:
        return [o for o in self.outcomes if o.outcome in (OutcomeKind.FAILED, OutcomeKind.SKIPPED)]

    @property
    def status(self) -> RunStatus:
        if self.crashed:
            return RunStatus.CRASHED
        if self.interrupted:
            return RunStatus.INTERRUPTED
        if not self.failed:
            return RunStatus.SUCCESS
        if any(o.outcome in (OutcomeKind.OK, OutcomeKind.RESUMED) for o in self.outcomes):
            return RunStatus.PARTIAL
        return RunStatus.ERROR


SecretResolver = Callable[[str], str]


class Runner:
    def __init__(
        self,
        executor: Executor,
        journal: Journal,
        *,
        secrets: SecretResolver,
        on_event: Callable[[Event], None] | None = None,
        chunk_size: int = 1000,
        tool_version: str = "",
        command: str = "",
    ) -> None:
        self.executor = executor
        self.journal = journal
        self.secrets = secrets
        self.on_event = on_event or (lambda e: None)
        self.chunk_size = chunk_size
        self.tool_version = tool_version
        self.command = command
        self._stop = asyncio.Event()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @stop_requested.setter
    def stop_requested(self, value: bool) -> None:
        """Set from a Ctrl-C handler: no new request is sent, and a wait in progress ends now (the executor
        is told, so that its own pauses before a resend end too)."""
        if value:
            self._stop.set()
            self.executor.stop()
        else:
            self._stop.clear()

    async def apply(self, plan: Plan) -> ApplyResult:
        """Apply the plan's pending changes. The run ends in the journal as success, partial, error,
        interrupted (Ctrl-C) or crashed (an unexpected error; the error is raised again after it is
        recorded). A journal that can't be written stops the run before anything more is sent."""
        run_id = str(uuid.uuid4())
        tenant = plan.tenant.get("id", "")
        self.journal.start_run(
            run_id,
            plan.plan_id,
            plan.kind,
            tenant,
            plan.operator,
            self.tool_version,
            command=self.command,
            plan_digest=plan.digest,
        )
        result = ApplyResult(run_id=run_id)
        run = _Run(plan, run_id, result, self.journal.completed(plan.plan_id), total=len(plan.pending))
        self.on_event(Event(EventKind.START, 0, run.total, "applying"))
        error: BaseException | None = None
        try:
            # Chains that wait on the service (a new account, its licence, its mailbox) run beside the
            # bulk of batchable changes instead of after it: the bulk is throttle-bound, the chains are
            # latency-bound, so together they take as long as the longer of the two.
            await _all_or_stop(self._run_lane(run, lane) for lane in self._lanes(plan.pending) if lane)
        except (asyncio.CancelledError, KeyboardInterrupt):
            result.interrupted = True
        except BaseException as exc:
            error = exc
            result.crashed = f"{type(exc).__name__}: {exc}".splitlines()[0]
        finally:
            try:
                self.journal.finish_run(run_id, result.status, result.crashed)
            except JournalError:
                self.journal.mark_crashed(run_id)
                if error is None:
                    raise
            self.on_event(Event(EventKind.DONE, run.progress, run.total, result.status))
        if error is not None:
            raise error
        return result

    def _lanes(self, pending: list[Change]) -> list[list[Change]]:
        """[bulk, chains]: components of the dependency graph made only of batchable changes without
        waits, and all the others."""
        parent = {c.id: c.id for c in pending}

        def root(cid: str) -> str:
            while parent[cid] != cid:
                parent[cid] = parent[parent[cid]]
                cid = parent[cid]
            return cid

        for change in pending:
            for dep in change.depends_on:
                if dep in parent:
                    parent[root(change.id)] = root(dep)
        simple: dict[str, bool] = {}
        for change in pending:
            ok = (
                change.wait is None
                and change.operation is not None
                and self.executor.batch_key(change.operation) is not None
            )
            key = root(change.id)
            simple[key] = simple.get(key, True) and ok
        bulk = [c for c in pending if simple[root(c.id)]]
        chains = [c for c in pending if not simple[root(c.id)]]
        return [bulk, chains]

    async def _run_lane(self, run: _Run, changes: list[Change]) -> None:
        result = run.result
        for level in _levels(changes):
            if self.stop_requested:
                result.interrupted = True
                return
            runnable: list[Change] = []
            for change in level:
                if change.id in run.done_before:
                    run.outputs[change.id] = run.done_before[change.id]
                    result.outcomes.append(
                        ChangeOutcome(
                            change.id,
                            change.target,
                            change.setting,
                            OutcomeKind.RESUMED,
                            "already applied by an earlier run of this plan",
                        )
                    )
                    run.progress += 1
                elif any(dep in run.failed for dep in change.depends_on):
                    run.failed.add(change.id)
                    result.outcomes.append(
                        ChangeOutcome(
                            change.id,
                            change.target,
                            change.setting,
                            OutcomeKind.SKIPPED,
                            "not sent: a change it depends on failed",
                        )
                    )
                    run.progress += 1
                else:
                    runnable.append(change)
            self.on_event(Event(EventKind.PROGRESS, run.progress, run.total))
            groups: dict[str | None, list[Change]] = {}
            for change in runnable:
                key = self.executor.batch_key(change.operation) if change.operation else None
                groups.setdefault(key, []).append(change)
            for key, group in groups.items():
                size = 1 if key is None else self.chunk_size
                for start in range(0, len(group), size):
                    if self.stop_requested:
                        result.interrupted = True
                        return
                    chunk = group[start : start + size]
                    ids = self.journal.sending([self._row(run, change) for change in chunk])
                    if key is None:
                        results = [await self._send_one(chunk[0], run.outputs)]
                    else:
                        results = await self._send_many(chunk, run.outputs)
                    await self._settle(run, list(zip(chunk, results, strict=True)), ids)
                    run.progress += len(chunk)
                    self.on_event(
                        Event(EventKind.PROGRESS, run.progress, run.total, chunk[0].target if key is None else "")
                    )

    def resolve(self, request: dict[str, Any], outputs: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """Fill in values known only now (refs) and secrets, for sending only."""

        def fill(value: Any) -> Any:
            if isinstance(value, str):
                value = REF.sub(lambda m: str(outputs.get(m.group(1), {}).get(m.group(2), m.group(0))), value)
                return SECRET.sub(lambda m: self.secrets(m.group(1)), value)
            if isinstance(value, list):
                return [fill(v) for v in value]
            if isinstance(value, dict):
                return {k: fill(v) for k, v in value.items()}
            return value

        resolved: dict[str, Any] = fill(request)
        unresolved = REF.search(json.dumps(resolved))
        if unresolved:
            raise UnresolvedReference(f"value of {unresolved.group(1)}.{unresolved.group(2)} is not known")
        return resolved

    async def _send_one(self, change: Change, outputs: dict[str, dict[str, Any]]) -> ExecResult:
        assert change.operation is not None
        try:
            request = self.resolve(change.operation.request, outputs)
        except UnresolvedReference as exc:
            return ExecResult(ok=False, error=str(exc))
        return await self.executor.execute(change.operation, request)

    async def _send_many(self, changes: list[Change], outputs: dict[str, dict[str, Any]]) -> list[ExecResult]:
        ops = []
        for change in changes:
            assert change.operation is not None
            ops.append((change.operation, self.resolve(change.operation.request, outputs)))
        return await self.executor.execute_many(ops)

    @staticmethod
    def _row(run: _Run, change: Change) -> dict[str, Any]:
        return {
            "run_id": run.run_id,
            "plan_id": run.plan.plan_id,
            "change_id": change.id,
            "tenant": run.plan.tenant.get("id", ""),
            "target": change.target,
            "setting": change.setting,
            "action": change.action.value,
            "operation": change.operation.display if change.operation else "",
        }

    async def _settle(self, run: _Run, pairs: list[tuple[Change, ExecResult]], ids: list[int]) -> None:
        outputs, failed, result = run.outputs, run.failed, run.result
        rows = []
        for change, res in pairs:
            detail = res.error or (FOREIGN if res.foreign else ("already in the desired state" if res.already else ""))
            timed_out = False
            stopped = False
            if res.ok:
                outputs[change.id] = {name: _dig(res.body, path) for name, path in change.outputs.items()}
                if change.wait:
                    ok = await self._wait(change.wait, outputs, change)
                    if ok is None:  # Ctrl-C: the request was sent, what it waits for is not confirmed
                        stopped = True
                        result.interrupted = True
                        res = ExecResult(
                            ok=False,
                            request_id=res.request_id,
                            error=f"sent; stopped (Ctrl-C) while waiting: {change.wait.description}",
                        )
                        detail = res.error or ""
                    elif not ok:
                        timed_out = True
                        res = ExecResult(
                            ok=False,
                            request_id=res.request_id,
                            error=f"timed out after {change.wait.timeout:.0f} s waiting: {change.wait.description}",
                        )
                        detail = res.error or ""
            if res.interrupted:
                stopped = True
                result.interrupted = True
            outcome = OutcomeKind.INTERRUPTED if stopped else OutcomeKind.OK if res.ok else OutcomeKind.FAILED
            if not res.ok:
                failed.add(change.id)
            result.outcomes.append(
                ChangeOutcome(change.id, change.target, change.setting, outcome, detail, res.request_id, timed_out)
            )
            rows.append(
                {
                    "outcome": outcome,
                    "request_id": res.request_id,
                    "detail": detail,
                    "outputs": outputs.get(change.id) if res.ok else None,
                }
            )
        self.journal.settle(ids, rows)

    async def _wait(self, wait: Wait, outputs: dict[str, dict[str, Any]], change: Change) -> bool | None:
        """True when the service shows the change, False at the timeout, None when stopped (Ctrl-C)."""
        target = REF.sub(lambda m: str(outputs.get(m.group(1), {}).get(m.group(2), "")), wait.target)
        self.on_event(Event(EventKind.WAIT, message=f"{wait.description} (up to {wait.timeout:.0f} s)"))
        waiting = asyncio.ensure_future(
            self.executor.wait(wait, target, lambda msg: self.on_event(Event(EventKind.WAIT, message=msg)))
        )
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not waiting.done() or self._stop.is_set():
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiting
            self.on_event(Event(EventKind.WAITED, message=f"{wait.description}: stopped (Ctrl-C)"))
            return None
        ok = waiting.result()
        self.on_event(Event(EventKind.WAITED, message=f"{wait.description}: {'done' if ok else 'timed out'}"))
        return ok


class UnresolvedReference(Exception):
    pass


@dataclass
class _Run:
    """What one apply shares between its lanes."""

    plan: Plan
    run_id: str
    result: ApplyResult
    done_before: dict[str, dict[str, Any]]
    total: int
    progress: int = 0
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)


async def _all_or_stop(coros: Any) -> None:
    """Run the lanes together; the first one that raises stops the others (nothing more is sent)."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    if not tasks:
        return
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()
        if task.cancelled():
            raise asyncio.CancelledError


def _dig(body: Any, path: str) -> Any:
    value = body
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        else:
            return None
    return value


def _levels(changes: list[Change]) -> list[list[Change]]:
    """Topological levels: a change comes after every pending change it depends on (graphlib's rounds of
    ready nodes, each in plan order). A cycle raises graphlib.CycleError, a ValueError."""
    order = {c.id: i for i, c in enumerate(changes)}
    by_id = {c.id: c for c in changes}
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter(
        {c.id: [d for d in c.depends_on if d in order] for c in changes}
    )
    sorter.prepare()
    levels: list[list[Change]] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=order.__getitem__)
        levels.append([by_id[cid] for cid in ready])
        sorter.done(*ready)
    return levels


__all__ = [
    "Action",
    "ApplyResult",
    "ChangeOutcome",
    "Event",
    "EventKind",
    "ExecResult",
    "Executor",
    "OutcomeKind",
    "RunStatus",
    "Runner",
]
