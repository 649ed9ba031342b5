"""What a plan covers: the steps chosen with `setup --step`, and the user mailboxes of a staged rollout
(`--limit N` or `--limit P%`, `--only UPN,...`).

Step names here are the ones operators type (`catchall-mailbox`); procedures.steps_for uses the
module names (`catchall_mailbox`), and a saved plan's `selection.steps` holds those. A staged rollout is
resolved once, when the plan is made, into the UPNs it covers (`selection.mailboxes`), so applying the
saved plan replays exactly those mailboxes, also when resuming after some of them were done.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from m365archive.errors import CommandError, Reason

# Operator-facing names, per procedure, in the order the procedure runs them.
STEP_NAMES: dict[str, dict[str, str]] = {
    "partner-ews": {
        "catchall-account": "catchall_account",
        "catchall-mailbox": "catchall_mailbox",
        "user-mailboxes": "user_mailboxes",
        "partner-handoff": "partner_handoff",
        "connector-consent": "connector_consent",
        "legacy-leftovers": "legacy_leftovers",
    },
    "purview-connector": {
        "connector-readiness": "connector_readiness",
        "user-mailboxes": "user_mailboxes",
        "connector-handoff": "connector_handoff",
    },
}

# A step that reads another's output: planning it alone plans the other too (reads only), and refuses
# (exit 7, nothing sent) while the other still has changes its own changes wait for.
REQUIRES: dict[str, tuple[str, ...]] = {
    "catchall_mailbox": ("catchall_account",),  # the catch-all user (and its licence) must exist first
}

USER_MAILBOXES = "user_mailboxes"


def readable(step: str) -> str:
    """`catchall_mailbox` -> `catchall-mailbox`."""
    return step.replace("_", "-")


def steps_help() -> str:
    """The names `--step` takes, per procedure (for --help)."""
    return "; ".join(f"{proc}: {', '.join(names)}" for proc, names in STEP_NAMES.items())


def resolve_steps(procedure: str, names: list[str]) -> list[str]:
    """The module names of the steps `names` choose (readable or module names, any case); unknown is exit 4."""
    table = STEP_NAMES.get(procedure, {})
    out: list[str] = []
    for name in names:
        key = name.strip().lower().replace("_", "-")
        if key not in table:
            raise CommandError(
                f"--step {name!r} is not a step of procedure {procedure} (its steps: {', '.join(table)})",
                Reason.USAGE,
            )
        if table[key] not in out:
            out.append(table[key])
    return out


@dataclass(frozen=True)
class Limit:
    """`--limit 100` or `--limit 10%` (of the licensed users in scope)."""

    count: int | None = None
    percent: float | None = None

    @classmethod
    def parse(cls, text: str) -> Limit:
        raw = text.strip()
        try:
            if raw.endswith("%"):
                percent = float(raw[:-1])
                if not 0 < percent <= 100:
                    raise ValueError
                return cls(percent=percent)
            count = int(raw)
            if count < 1:
                raise ValueError
            return cls(count=count)
        except ValueError:
            raise CommandError(
                f"--limit {text!r} is not a number of mailboxes (1 or more) or a percentage (such as 10%)",
                Reason.USAGE,
            ) from None

    def size(self, in_scope: int) -> int:
        if self.count is not None:
            return self.count
        assert self.percent is not None
        return max(1, math.ceil(in_scope * self.percent / 100))

    def __str__(self) -> str:
        return str(self.count) if self.count is not None else f"{self.percent:g}%"


@dataclass
class Selection:
    """What a plan covers. `steps` None: every step of the procedure. `limit`/`only`: a staged rollout of
    user mailboxes, resolved when planning into `mailboxes` (a saved plan's, replayed as they are)."""

    steps: list[str] | None = None
    limit: Limit | None = None
    only: list[str] = field(default_factory=list)
    mailboxes: list[str] | None = None
    # Filled in when planning: how many mailboxes still needed changes, and how many are left after this plan.
    needing: int | None = None

    @property
    def staged(self) -> bool:
        return self.limit is not None or bool(self.only) or self.mailboxes is not None

    def to_dict(self, steps: list[str]) -> dict[str, object]:
        """The plan's `selection` (format 2; the digest covers it). `mailboxes` and `limit` appear only for a
        staged rollout, so plans made without one are unchanged."""
        out: dict[str, object] = {"steps": steps}
        if self.mailboxes is not None:
            out["mailboxes"] = list(self.mailboxes)
        if self.limit is not None:
            out["limit"] = str(self.limit)
        return out

    @classmethod
    def from_saved(cls, saved: dict[str, object]) -> Selection:
        """A saved plan's selection, replayed at apply (malformed is exit 4)."""
        steps = saved.get("steps")
        mailboxes = saved.get("mailboxes")
        limit = saved.get("limit")
        if not isinstance(steps, list) or not all(isinstance(s, str) for s in steps):
            raise CommandError("the plan's selection names its steps wrongly", Reason.USAGE)
        if mailboxes is not None and (
            not isinstance(mailboxes, list) or not all(isinstance(m, str) for m in mailboxes)
        ):
            raise CommandError("the plan's selection names its mailboxes wrongly", Reason.USAGE)
        if limit is not None and not isinstance(limit, str):
            raise CommandError("the plan's selection gives its limit wrongly", Reason.USAGE)
        return cls(
            steps=list(steps),
            mailboxes=list(mailboxes) if mailboxes is not None else None,
            limit=Limit.parse(limit) if limit is not None else None,
        )


def parse_only(values: list[str]) -> list[str]:
    """`--only a@x,b@y --only c@z` -> the UPNs, in order, once each; not a UPN is exit 4."""
    out: list[str] = []
    for value in values:
        for part in value.split(","):
            upn = part.strip()
            if not upn:
                continue
            if "@" not in upn or upn.startswith("@") or upn.endswith("@") or " " in upn:
                raise CommandError(f"--only {upn!r} is not a user principal name (name@domain)", Reason.USAGE)
            if upn.lower() not in {u.lower() for u in out}:
                out.append(upn)
    if values and not out:
        raise CommandError("--only names no mailbox", Reason.USAGE)
    return out


def choose(needing: set[str], limit: Limit | None, in_scope: int) -> list[str]:
    """The first mailboxes of a stable order (UPN, case-insensitive) that still need changes."""
    ordered = sorted(needing, key=lambda upn: (upn.lower(), upn))
    return ordered if limit is None else ordered[: limit.size(in_scope)]
