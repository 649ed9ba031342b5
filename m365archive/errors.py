"""Why a use case refused or failed: a typed reason, never an exit code (cli/exits.py maps reasons to codes)."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    ERROR = "error"  # a service error or an unexpected failure
    USAGE = "usage"  # bad input: config, flags, plan file, an unwritable output path
    AUTH = "auth"  # sign-in failed or the token was refused
    STALE_PLAN = "stale-plan"  # the tenant changed since the saved plan was made; nothing was sent
    PREREQUISITE = "prerequisite"  # a prerequisite failed before any write
    TIMEOUT = "timeout"  # waited for the service and it did not show the change in time
    NO_SECRET_STORE = "no-secret-store"  # no keyring backend and no password file
    LOCKED = "locked"  # another applying run holds this tenant
    PLAN_MISMATCH = "plan-mismatch"  # the saved plan differs from what this config plans now; nothing sent


class CommandError(Exception):
    """A clear, one-line failure with its reason (the CLI prints it without a traceback)."""

    def __init__(self, message: str, reason: Reason = Reason.ERROR, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.hint = hint
