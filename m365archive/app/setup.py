"""`setup` and `status`: the documented procedure's steps, planned together, applied through the pipeline."""

from __future__ import annotations

import contextlib
from pathlib import Path

from m365archive.app.context import Env, reading, tenant_info
from m365archive.app.legacy import local_secrets
from m365archive.app.pipeline import PipelineResult, Procedure, secret_names
from m365archive.app.procedures import make_plan
from m365archive.app.selection import Selection
from m365archive.config import Config
from m365archive.engine.checks import Check
from m365archive.engine.journal import Journal
from m365archive.engine.plan import Plan
from m365archive.engine.runner import ApplyResult, Event, EventKind, OutcomeKind, secrets_not_set
from m365archive.errors import CommandError, Reason
from m365archive.steps.base import StepContext
from m365archive.tenant.exchange import Cmdlet, has_archive
from m365archive.tenant.retry import Interrupted, poll
from m365archive.tenant.session import TenantSession

CATCHALL_SECRET = "catchall-password"


async def build_plan(env: Env, config: Config, session: TenantSession, selection: Selection | None = None) -> Plan:
    """Read the tenant and plan every step of the configured procedure, or what `selection` chooses (the
    steps and mailboxes of `setup --step/--limit/--only`, or of a saved plan) (reads only). The retired
    route's leftovers may ask this machine's keyring whether it still holds the catch-all password (a
    finding only; nothing local is changed)."""
    ctx = StepContext(
        config=config,
        session=session,
        tenant=tenant_info(session),
        operator=session.operator,
        progress=env.progress,
    )
    with reading():
        return await make_plan(ctx, config.procedure, selection, given=(local_secrets(env, config),))


async def status(env: Env, config: Config) -> Plan:
    """Desired vs actual: the plan `setup` would make now (its pending changes are the drift)."""
    from m365archive.app.context import connect

    async with connect(env, config) as session:
        return await build_plan(env, config, session)


class SecretStore:
    """Secrets a setup plan needs, resolved before the first write so a missing keyring changes nothing."""

    def __init__(self, env: Env, config: Config) -> None:
        self.env = env
        self.config = config
        self.values: dict[str, str] = {}

    def prepare(self, names: set[str]) -> None:
        from m365archive import secrets

        for name in sorted(names):
            if name != CATCHALL_SECRET:
                raise CommandError(f"the plan needs an unknown secret {name!r}", Reason.USAGE)
            assert self.config.catchall is not None
            upn = self.config.catchall.upn
            try:
                if self.env.password_file:
                    value = _password_from_file(self.env.password_file, upn)
                else:
                    value = secrets.get_secret(self.config.tenant.id, upn) or ""
                    if not value:
                        value = secrets.generate_password(avoid=upn)
                        secrets.store_secret(self.config.tenant.id, upn, value)
            except secrets.NoKeyringError as exc:
                raise CommandError(str(exc), Reason.NO_SECRET_STORE) from None
            except secrets.PasswordFileError as exc:
                raise CommandError(str(exc), Reason.USAGE) from None
            self.values[name] = value

    def __call__(self, name: str) -> str:
        return self.values[name]


def _password_from_file(path: Path, upn: str) -> str:
    from m365archive import secrets

    if path.exists():
        return secrets.read_password_file(path)
    value = secrets.generate_password(avoid=upn)
    secrets.write_password_file(path, value)
    return value


class Setup(Procedure):
    """Bring the tenant to the desired state in the config."""

    command = "setup"
    kind = "setup"

    def __init__(self, env: Env, config: Config, selection: Selection | None = None) -> None:
        self.env = env
        self.config = config
        self.selection = selection or Selection()
        self.max_concurrency = config.users.max_concurrency

    async def plan(self, session: TenantSession) -> Plan:
        return await build_plan(self.env, self.config, session, self.selection)

    async def replan(self, session: TenantSession, saved: Plan) -> Plan:
        return await build_plan(self.env, self.config, session, Selection.from_saved(saved.selection))

    def dry_run_checks(self, plan: Plan) -> list[Check]:
        from m365archive.secrets import password_store_check

        if not secret_names(plan):
            return []
        return [password_store_check(self.env.password_file, blocking=False)]

    async def access_checks(self, session: TenantSession, plan: Plan) -> list[Check]:
        """What the plan's pending changes need against what the principal holds (the reads `preflight` makes)."""
        from m365archive.app.access import check_access, rows_for_plan

        if not plan.pending:
            return []
        report = await check_access(session, self.config, rows_for_plan(plan), "setup")
        return report.checks()

    def secrets(self, plan: Plan) -> SecretStore:
        store = SecretStore(self.env, self.config)
        store.prepare(secret_names(plan))
        return store

    async def after_apply(self, session: TenantSession, plan: Plan, result: ApplyResult, journal: Journal) -> None:
        onprem_archives = {c.id for c in plan.changes if c.category == "archive-on-premises"}
        synced = [o.target for o in result.outcomes if o.outcome is OutcomeKind.OK and o.change_id in onprem_archives]
        if synced and self.config.onprem is not None:
            result.pending = await wait_for_directory_sync(self.env, session, synced, self.config.onprem.sync_timeout)

    def notes(self, result: PipelineResult) -> list[str]:
        lines = [
            f"{change.target} already existed: another run or person created it, so the password this run "
            "generated and stored is not the account's (the stored one is kept, marked unknown here). "
            "Set a known one with `m365archive credentials rotate`."
            for change in (secrets_not_set(result.plan, result.applied) if result.applied else [])
        ]
        pending = result.applied.pending if result.applied else []
        if not pending:
            return lines
        return [
            *lines,
            f"{len(pending)} archive(s) enabled on-premises are not yet visible in Exchange Online (directory sync "
            "runs every 30 minutes by default); `m365archive status` shows them until they arrive: "
            + ", ".join(pending[:10])
            + (" ..." if len(pending) > 10 else ""),
        ]


async def wait_for_directory_sync(env: Env, session: TenantSession, identities: list[str], timeout: float) -> list[str]:
    """Poll Exchange Online until the archives enabled on-premises show up; return those still pending.

    Directory synchronization runs every 30 minutes by default, so not seeing an archive yet is
    not a failure: the identities are reported as pending and the next `status` shows them.
    """
    waiting = list(identities)

    async def all_visible() -> bool:
        nonlocal waiting
        outcomes = await session.exchange.invoke_many([Cmdlet("Get-Mailbox", {"Identity": i}) for i in waiting])
        waiting = [
            i
            for i, out in zip(waiting, outcomes, strict=True)
            if not (out.ok and out.objects and has_archive(out.objects[0]))
        ]
        return not waiting

    def tick(elapsed: float) -> None:
        message = f"waiting for directory sync: {len(waiting)} archive(s) not yet in Exchange Online ({elapsed:.0f} s)"
        env.on_event(Event(EventKind.WAIT, message=message))

    with contextlib.suppress(Interrupted):  # Ctrl-C: what is not visible yet is reported pending
        await poll(all_visible, timeout=timeout, stop=session.stop_signal, cap=30.0, tick=tick)
    env.on_event(
        Event(
            EventKind.WAITED,
            message=f"directory sync: {len(identities) - len(waiting)} of {len(identities)} "
            "archive(s) visible in Exchange Online",
        )
    )
    return waiting
