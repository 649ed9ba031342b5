"""Exit codes, chosen here from typed outcomes and error reasons (the table in README "Exit codes")."""

from __future__ import annotations

from typing import TYPE_CHECKING

from m365archive.engine.runner import RunStatus
from m365archive.errors import CommandError, Reason
from m365archive.result import ExitCode

if TYPE_CHECKING:
    from m365archive.app.pipeline import PipelineResult
    from m365archive.engine.runner import ApplyResult

FOR_REASON: dict[Reason, ExitCode] = {
    Reason.ERROR: ExitCode.ERROR,
    Reason.USAGE: ExitCode.USAGE,
    Reason.AUTH: ExitCode.AUTH,
    Reason.STALE_PLAN: ExitCode.STALE_PLAN,
    Reason.PREREQUISITE: ExitCode.PREREQUISITE,
    Reason.TIMEOUT: ExitCode.TIMEOUT,
    Reason.NO_SECRET_STORE: ExitCode.NO_SECRET_STORE,
    Reason.LOCKED: ExitCode.LOCKED,
    Reason.PLAN_MISMATCH: ExitCode.PLAN_MISMATCH,
}

APPLY_STATUS = {
    RunStatus.SUCCESS: ExitCode.OK,
    RunStatus.PARTIAL: ExitCode.PARTIAL,
    RunStatus.INTERRUPTED: ExitCode.INTERRUPTED,
}


def for_apply(result: ApplyResult) -> ExitCode:
    """0 applied, 8 partly applied, 130 interrupted, 9 a wait timed out (and nothing else succeeded), 1 failed."""
    code = APPLY_STATUS.get(result.status, ExitCode.ERROR)
    if code is not ExitCode.PARTIAL and any(o.timed_out for o in result.failed):
        return ExitCode.TIMEOUT
    return code


def for_pipeline(result: PipelineResult, *, detailed: bool = False) -> ExitCode:
    """A changing command: its apply result, or 2 for a dry run with pending changes and --detailed-exitcode."""
    if result.applied is not None:
        return for_apply(result.applied)
    if result.outcome.value == "blocked":
        return ExitCode.PREREQUISITE
    if detailed and result.pending and result.outcome.value == "dry-run":
        return ExitCode.CHANGES
    return ExitCode.OK


def for_error(exc: CommandError) -> ExitCode:
    """A refusal or failure of a use case: its reason's code."""
    return FOR_REASON[exc.reason]


def for_status(*, drift: bool, failing_findings: bool = False) -> ExitCode:
    """`status`: 13 unaccepted findings at or above --fail-on, 2 drift, 0 in sync."""
    if failing_findings:
        return ExitCode.FINDINGS
    return ExitCode.CHANGES if drift else ExitCode.OK


def for_verify(*, failing_findings: bool) -> ExitCode:
    """`verify`: 13 when a finding is raised (silent sources or mailboxes, hold or archive drift), 0 otherwise."""
    return ExitCode.FINDINGS if failing_findings else ExitCode.OK


def for_consent(*, present: bool) -> ExitCode:
    """`consent status`: 0 present, 3 absent."""
    return ExitCode.OK if present else ExitCode.ABSENT


def for_mapping(*, not_imported: int) -> ExitCode:
    """`mapping check`: 2 when some rows' items would not be imported."""
    return ExitCode.CHANGES if not_imported else ExitCode.OK


def for_preflight(failed_check: str | None) -> ExitCode:
    """`preflight`: 1 unreachable, 5 sign-in refused, 7 a right is missing, 0 all good."""
    if failed_check is None:
        return ExitCode.OK
    return {"connectivity": ExitCode.ERROR, "authentication": ExitCode.AUTH}.get(failed_check, ExitCode.PREREQUISITE)
