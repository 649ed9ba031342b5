"""Exit codes, chosen here from typed outcomes (the table in README "Exit codes")."""

from __future__ import annotations

from typing import TYPE_CHECKING

from m365archive.result import ExitCode

if TYPE_CHECKING:
    from m365archive.app.pipeline import PipelineResult
    from m365archive.engine.runner import ApplyResult

APPLY_STATUS = {"success": ExitCode.OK, "partial": ExitCode.PARTIAL, "interrupted": ExitCode.INTERRUPTED}


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
    if detailed and result.pending and result.outcome.value == "dry-run":
        return ExitCode.CHANGES
    return ExitCode.OK
