"""What steps hand each other: typed values, declared in each step's signature.

A step is `async def plan(ctx, <name>: <Seam>, ...) -> StepPlan | Planned[<Seam>]`: the parameters
after `ctx` are what it needs from earlier steps (or from the command that plans), the return
annotation what it gives later ones. app/procedures.py reads the signatures, passes each step the
value an earlier step gave (a step whose producer is not in the selection gets the seam's defaults,
which say "not read"), and can tell when a step needs a value that only a later step gives.
Every seam is frozen: a step can't change what another one handed it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Generic, TypeVar

from m365archive.steps.base import StepPlan

T = TypeVar("T")


@dataclass
class Planned(Generic[T]):
    """A step's plan and the value it gives the steps after it."""

    plan: StepPlan
    gives: T


@dataclass(frozen=True)
class CatchallUser:
    """catchall_account -> catchall_mailbox: whether the user exists, and the change ids its mailbox's
    changes wait for (the licence that makes Exchange Online provision the mailbox)."""

    exists: bool = False
    mailbox_after: tuple[str, ...] = ()


@dataclass(frozen=True)
class PolicyJoiners:
    """catchall_mailbox -> user_mailboxes: mailboxes the user-mailbox step puts in its retention policies
    besides its own users (the catch-all), each with the change ids it waits for."""

    mailboxes: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class ConsentReported:
    """connector_consent -> legacy_leftovers: the consent step read the connector's service principal
    and reports it, so the leftovers say nothing more about it."""

    reported: bool = False


@dataclass(frozen=True)
class LocalSecrets:
    """Given by the command: does this machine's keyring hold the password of a UPN (None: there is no
    usable keyring). Without a probe nothing local is read."""

    holds: Callable[[str], bool | None] | None = None

    def held(self, upn: str) -> bool | None:
        return self.holds(upn) if self.holds is not None else None


@dataclass(frozen=True)
class CleanupRequest:
    """Given by `legacy cleanup`: the accounts the operator confirmed (`--account`), whether to rotate
    the password instead of blocking sign-in, and the accounts an earlier run rotated (the journal)."""

    accounts: tuple[str, ...] = ()
    rotate: bool = False
    rotated: tuple[str, ...] = ()

    def was_rotated(self, upn: str) -> bool:
        return upn.lower() in {u.lower() for u in self.rotated}


@dataclass(frozen=True)
class MailboxSelection:
    """Given by `setup --limit/--only` and by a saved plan's selection (app/selection.py): which user
    mailboxes the user-mailbox step plans, by UPN. Without one: every mailbox in scope."""

    keep: Callable[[str], bool] | None = None

    def wanted(self, upn: str) -> bool:
        return self.keep is None or self.keep(upn)


SEAMS: tuple[type, ...] = (CatchallUser, PolicyJoiners, ConsentReported, LocalSecrets, CleanupRequest, MailboxSelection)
