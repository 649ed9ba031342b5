"""The catch-all account's password: where it is kept (`credentials show`) and rotating it
(`credentials rotate`, through the pipeline).

Rotation is crash-safe. The new password is first kept as *pending* (keyring user name
``<tenant>/<upn>/pending``, or ``<password file>.pending``), then sent to Graph, then promoted to
the current entry. If the process dies between Graph accepting it and the promotion, the next
`rotate` finds the pending value and sends that same value again, so the stored password and the
tenant's agree again without anyone guessing which one is live. A pending value Graph refused
outright (4xx) is discarded; one whose fate is unknown (5xx, dropped connection) is kept for the
next run. No typer, no terminals.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from m365archive import __version__
from m365archive.app.context import Env, reading, tenant_info
from m365archive.app.pipeline import PipelineResult, Procedure
from m365archive.config import Config
from m365archive.engine.journal import Journal
from m365archive.engine.plan import SENSITIVE, Action, Change, Plan, fingerprint, secret
from m365archive.engine.runner import ApplyResult, RunStatus
from m365archive.errors import CommandError, Reason
from m365archive.partners import retirement_notice
from m365archive.powershell import command, variable
from m365archive.steps.base import GRAPH, graph_operation
from m365archive.tenant.session import TenantSession

ROTATE_SECRET = "catchall-password-new"
PENDING_SUFFIX = "/pending"
ROTATE_KIND = "credentials-rotate"


class PasswordStore:
    """Where the catch-all password lives: the OS keyring (service ``m365archive``, user name
    ``<tenant>/<upn>``), or a 0600 file (``--password-file``). Both keep a pending value beside it."""

    def __init__(self, tenant_id: str, upn: str, password_file: Path | None = None) -> None:
        self.tenant_id = tenant_id
        self.upn = upn
        self.file = password_file

    @classmethod
    def for_config(cls, env: Env, config: Config) -> PasswordStore:
        if config.catchall is None:
            raise CommandError("the config has no [catchall] table: there is no catch-all account", Reason.USAGE)
        return cls(config.tenant.id, config.catchall.upn, env.password_file)

    @property
    def where(self) -> str:
        from m365archive import secrets

        if self.file:
            return f"file {self.file} (mode 0600)"
        return f"keyring service {secrets.SERVICE!r}, user name {secrets.catchall_username(self.tenant_id, self.upn)!r}"

    @property
    def _pending_file(self) -> Path:
        assert self.file is not None
        return self.file.with_name(self.file.name + ".pending")

    def _guard(self, fn: Callable[[], Any]) -> Any:
        from m365archive import secrets

        try:
            return fn()
        except secrets.NoKeyringError as exc:
            raise CommandError(str(exc), Reason.NO_SECRET_STORE) from None
        except secrets.PasswordFileError as exc:
            raise CommandError(str(exc), Reason.USAGE) from None

    def check(self) -> None:
        """Fail now (before any request) when nothing can keep the secret."""
        from m365archive import secrets

        if self.file:
            if self.file.exists():
                self._guard(lambda: secrets.read_password_file(self.file))  # type: ignore[arg-type]
            return
        self._guard(secrets._backend)

    def current(self) -> str | None:
        from m365archive import secrets

        if self.file:
            return self._guard(lambda: secrets.read_password_file(self.file)) if self.file.exists() else None  # type: ignore[arg-type]
        value: str | None = self._guard(lambda: secrets.get_secret(self.tenant_id, self.upn))
        return value

    def pending(self) -> str | None:
        from m365archive import secrets

        if self.file:
            path = self._pending_file
            return self._guard(lambda: secrets.read_password_file(path)) if path.exists() else None
        value: str | None = self._guard(lambda: secrets.get_secret(self.tenant_id, self.upn + PENDING_SUFFIX))
        return value

    def set_pending(self, value: str) -> None:
        from m365archive import secrets

        if self.file:
            path = self._pending_file
            self._guard(lambda: secrets.write_password_file(path, value))
        else:
            self._guard(lambda: secrets.store_secret(self.tenant_id, self.upn + PENDING_SUFFIX, value))

    def discard_pending(self) -> None:
        from m365archive import secrets

        if self.file:
            self._pending_file.unlink(missing_ok=True)
        else:
            self._guard(lambda: secrets.delete_secret(self.tenant_id, self.upn + PENDING_SUFFIX))

    def promote(self, value: str) -> None:
        """Make the pending value the current one, then forget the pending entry."""
        from m365archive import secrets

        if self.file:
            os.replace(self._pending_file, self.file)  # atomic: the file holds the old or the new value
            return
        self._guard(lambda: secrets.store_secret(self.tenant_id, self.upn, value))
        self.discard_pending()


@dataclass
class StoredPassword:
    """What `credentials show` reports (the value only when asked for)."""

    upn: str
    where: str
    stored: bool
    pending: bool
    value: str | None = None


def show(env: Env, config: Config, *, include_secret: bool = False) -> StoredPassword:
    store = PasswordStore.for_config(env, config)
    store.check()
    current = store.current()
    return StoredPassword(
        store.upn, store.where, bool(current), bool(store.pending()), current if include_secret else None
    )


def password_change(upn: str, user_id: str, where: str) -> Change:
    """The one PATCH of the catch-all password (a placeholder, never the value)."""
    return Change(
        id=f"catchall_account/password/{upn}",
        step="catchall_account",
        target=upn,
        setting="password",
        action=Action.UPDATE,
        before=SENSITIVE,
        after=secret(ROTATE_SECRET),
        operation=graph_operation(
            "PATCH",
            f"/users/{user_id}",
            {"passwordProfile": {"forceChangePasswordNextSignIn": False, "password": secret(ROTATE_SECRET)}},
            powershell=command(
                "Update-MgUser",
                {
                    "UserId": user_id,
                    "PasswordProfile": {"ForceChangePasswordNextSignIn": False, "Password": variable("password")},
                },
            ),
        ),
        side=GRAPH,
        sensitive=True,
        warnings=[
            "Whoever holds the old password (a partner, for the retired route) can no longer sign in as the "
            "catch-all account, which holds the Exchange Administrator role.",
            f"The new password is generated here and kept only in {where}; it is never printed.",
        ],
        rollback_note="can't be undone: the old password is not kept",
        category="credentials",
    )


class CredentialsRotate(Procedure):
    """Reset the catch-all password through Graph: pending first, then Graph, then promote."""

    command = "credentials rotate"
    kind = ROTATE_KIND
    noun = "change(s)"
    report_title = "m365archive credentials rotate"

    def __init__(self, env: Env, config: Config) -> None:
        self.env = env
        self.config = config
        self.store = PasswordStore.for_config(env, config)
        self.password = ""
        self.resumed = False

    def check(self) -> None:
        self.store.check()  # no keyring: nothing is read or written

    async def plan(self, session: TenantSession) -> Plan:
        upn = self.store.upn
        with reading():
            user = await session.graph.get_user(upn, ["id", "userPrincipalName"])
        if user is None:
            raise CommandError(
                f"the catch-all account {upn} does not exist",
                Reason.PREREQUISITE,
                "create it first with `m365archive setup`",
            )
        self.resumed = self.store.pending() is not None
        plan = Plan(
            procedure=self.config.procedure,
            tenant=tenant_info(session),
            operator=session.operator,
            tool_version=__version__,
            kind=ROTATE_KIND,
        )
        plan.notices = [retirement_notice()]
        plan.changes.append(password_change(upn, str(user["id"]), self.store.where))
        plan.fingerprint = fingerprint({"catchall": {"upn": upn.lower(), "id": str(user["id"])}})
        return plan

    def secrets(self, plan: Plan) -> Callable[[str], str]:
        from m365archive import secrets as secret_store

        # An interrupted rotation's pending value is sent again: the tenant may already hold it.
        self.password = self.store.pending() or secret_store.generate_password(avoid=self.store.upn)

        def resolve(name: str) -> str:
            if name != ROTATE_SECRET:
                raise CommandError(f"the plan needs an unknown secret {name!r}", Reason.USAGE)
            return self.password

        return resolve

    def before_apply(self, plan: Plan) -> None:
        self.store.set_pending(self.password)

    async def after_apply(self, session: TenantSession, plan: Plan, result: ApplyResult, journal: Journal) -> None:
        outcome = result.outcomes[0] if result.outcomes else None
        if result.status is RunStatus.SUCCESS:
            self.store.promote(self.password)
            journal.event(
                plan.tenant.get("id", ""),
                "credentials-rotated",
                f"catch-all password of {plan.changes[0].target} rotated; stored in {self.store.where}",
            )
        elif outcome is not None and re.match(r"4\d\d ", outcome.detail or ""):
            self.store.discard_pending()  # Graph refused it: the old password is still the live one

    def notes(self, result: PipelineResult) -> list[str]:
        notes = ["An interrupted rotation is finished: its pending password is sent again."] if self.resumed else []
        if result.applied is None:
            return notes
        if result.applied.status is RunStatus.SUCCESS:
            return [*notes, f"Password of {self.store.upn} reset and stored in {self.store.where} (not shown)."]
        failed = result.applied.failed
        detail = failed[0].detail if failed else result.applied.status
        result.errors.append(
            f"the password was not reset: {detail} (the stored password is unchanged; a pending value is kept only "
            "when Graph may have accepted it)"
        )
        return notes
