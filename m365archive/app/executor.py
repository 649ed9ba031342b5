"""The one Executor apply runs through: the tenant session, plus this machine for "local" changes.

A local change (deleting a password this machine kept) is a Change like any other: ordered by its
dependencies, journaled, resumed, shown in the report. Only where it is sent differs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from m365archive import secrets
from m365archive.engine.plan import Operation, OperationKind, Wait
from m365archive.engine.runner import ExecResult
from m365archive.tenant.session import TenantSession


class LocalExecutor:
    """Changes on this machine: the keyring."""

    async def execute(self, op: Operation, request: dict[str, Any]) -> ExecResult:
        action = request.get("action")
        if action == "delete-keyring-secret":
            try:
                removed = secrets.delete_secret(str(request["tenant"]), str(request["account"]))
            except secrets.NoKeyringError as exc:
                return ExecResult(ok=False, error=str(exc))
            return ExecResult(ok=True, body={"removed": removed}, already=not removed)
        return ExecResult(ok=False, error=f"unknown local action {action!r}")


class ApplyExecutor:
    """The engine's Executor: local changes here, everything else through the tenant session."""

    def __init__(self, session: TenantSession, local: LocalExecutor | None = None) -> None:
        self.session = session
        self.local = local or LocalExecutor()

    def batch_key(self, op: Operation) -> str | None:
        return None if op.kind == OperationKind.LOCAL else self.session.batch_key(op)

    async def execute(self, op: Operation, request: dict[str, Any]) -> ExecResult:
        if op.kind == OperationKind.LOCAL:
            return await self.local.execute(op, request)
        return await self.session.execute(op, request)

    async def execute_many(self, ops: list[tuple[Operation, dict[str, Any]]]) -> list[ExecResult]:
        return await self.session.execute_many(ops)  # local changes have no batch key

    async def wait(self, wait: Wait, resolved_target: str, tick: Callable[[str], None]) -> bool:
        return await self.session.wait(wait, resolved_target, tick)

    def stop(self) -> None:
        self.session.stop()
