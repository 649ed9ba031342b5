"""Exit codes and the result every command returns (rendered once, by the CLI; failures carry a
`m365archive.errors.Reason`, mapped to a code in cli/exits.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    """Documented in README.md ("Exit codes"); each has a test."""

    OK = 0  # done, in sync, nothing to do
    ERROR = 1  # a service error or an unexpected failure
    CHANGES = 2  # status: drift found; setup --dry-run --detailed-exitcode: changes pending
    ABSENT = 3  # consent status: the connector's service principal is absent
    USAGE = 4  # bad input: config file, flags, plan file
    AUTH = 5  # sign-in failed or the token was refused
    STALE_PLAN = 6  # the saved plan no longer matches the tenant; nothing was sent
    PREREQUISITE = 7  # a prerequisite failed before any write (no licence seat, missing role)
    PARTIAL = 8  # some changes failed; the others were applied
    TIMEOUT = 9  # waited for the service and it did not show the change in time
    NO_SECRET_STORE = 10  # no keyring backend and no --password-file
    LOCKED = 11  # another applying run holds this tenant's lock on this machine
    PLAN_MISMATCH = 12  # the saved plan's changes or digest differ from what this config plans now; nothing sent
    FINDINGS = 13  # status --fail-on: unaccepted findings at or above the level
    INTERRUPTED = 130  # Ctrl-C


@dataclass
class Result:
    command: str
    exit_code: ExitCode = ExitCode.OK
    data: dict[str, Any] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.exit_code in (ExitCode.OK, ExitCode.CHANGES, ExitCode.ABSENT):
            return "success"
        if self.exit_code is ExitCode.PARTIAL:
            return "partial"
        return "error"
