"""`history`: past runs from the journal, offline (what ran, as whom, with which plan, how it ended)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from m365archive.app.context import Env
from m365archive.engine.plan import short_digest
from m365archive.errors import CommandError, Reason

OUTCOMES = ("ok", "resumed", "failed", "skipped", "interrupted", "sending")  # "sending": sent, never settled


def _time(epoch: float | None) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds") if epoch else ""


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    started: str  # ISO 8601, UTC
    finished: str  # "" while running or when the process was lost
    command: str
    operator: str
    tenant: str
    plan_id: str
    plan_digest: str
    status: str  # running, success, partial, error, interrupted, crashed
    detail: str
    tool_version: str
    counts: dict[str, int] = field(default_factory=dict)  # the run's changes by outcome

    @property
    def digest_short(self) -> str:
        return short_digest(self.plan_digest) if self.plan_digest else ""

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "plan_digest_short": self.digest_short}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> RunSummary:
        return cls(
            run_id=str(row["run_id"]),
            started=_time(row.get("started")),
            finished=_time(row.get("finished")),
            command=str(row.get("command") or row.get("kind") or ""),
            operator=str(row.get("operator") or ""),
            tenant=str(row.get("tenant") or ""),
            plan_id=str(row.get("plan_id") or ""),
            plan_digest=str(row.get("plan_digest") or ""),
            status=str(row.get("status") or ""),
            detail=str(row.get("detail") or ""),
            tool_version=str(row.get("tool_version") or ""),
            counts=dict(row.get("counts", {})),
        )


@dataclass(frozen=True)
class ChangeRecord:
    change_id: str
    target: str
    setting: str
    action: str
    operation: str  # the display line; never a resolved secret
    outcome: str
    request_id: str
    detail: str
    at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RunDetail:
    run: RunSummary
    changes: list[ChangeRecord]


def runs(env: Env, limit: int | None = None) -> list[RunSummary]:
    """Runs newest first (a run left `running` by a process that is gone is reported interrupted)."""
    journal = env.journal()
    try:
        return [RunSummary.from_row(row) for row in journal.runs(limit)]
    finally:
        journal.close()


def run(env: Env, run_id: str) -> RunDetail:
    """One run (its id or an unambiguous prefix) with its changes and outcomes."""
    journal = env.journal()
    try:
        found = [row for row in journal.runs() if str(row["run_id"]).startswith(run_id)] if run_id else []
        if not found:
            raise CommandError(
                f"no run {run_id!r} in the journal", Reason.USAGE, "list runs with `m365archive history`"
            )
        if len(found) > 1:
            raise CommandError(f"{run_id!r} names {len(found)} runs; give more of the run id", Reason.USAGE)
        summary = RunSummary.from_row(found[0])
        changes = [
            ChangeRecord(
                change_id=str(r["change_id"]),
                target=str(r["target"] or ""),
                setting=str(r["setting"] or ""),
                action=str(r["action"] or ""),
                operation=str(r["operation"] or ""),
                outcome=str(r["outcome"] or ""),
                request_id=str(r["request_id"] or ""),
                detail=str(r["detail"] or ""),
                at=_time(r["at"]),
            )
            for r in journal.run_changes(summary.run_id)
        ]
        return RunDetail(summary, changes)
    finally:
        journal.close()
