"""`legacy cleanup` core: plan, check and apply the removal of what the retired route left behind.

The plan is an ordinary Plan (kind "legacy-cleanup"): dry run, report, saved plan and `--yes`
work as for `setup`. Tenant changes go through the runner; the one local change (deleting the
catch-all password from this machine's keyring) is done here after the tenant changes for that
account succeeded, and recorded in the journal as an event. No typer, no terminals.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from m365archive import __version__
from m365archive.config import Config
from m365archive.core import Env, tenant_info
from m365archive.engine.plan import Action, Change, Plan, fingerprint
from m365archive.engine.runner import ApplyResult, ChangeOutcome, Runner
from m365archive.partners import RETIREMENT
from m365archive.result import CommandError, ExitCode
from m365archive.steps import legacy_cleanup
from m365archive.steps.base import StepContext, StepError
from m365archive.tenant.exchange import ExchangeError, TransportError
from m365archive.tenant.graph_types import GraphError
from m365archive.tenant.session import TenantSession

KIND = "legacy-cleanup"
ROTATED_EVENT = "legacy-password-rotated"
KEYRING_EVENT = "legacy-keyring-deleted"


@dataclass
class CleanupOptions:
    accounts: list[str] = field(default_factory=list)  # --account UPN (confirmed catch-all accounts)
    rotate_password: bool = False  # rotate the password instead of blocking sign-in


def notice() -> str:
    return (
        f"EWS-based partner ingestion was retired on {RETIREMENT['date']}. This plan removes the access the retired "
        "route left behind (the connector app's service principal; the catch-all account's administrator role and "
        "sign-in, and its password on this machine) and keeps its data: the catch-all mailbox, its archive and its "
        f"Litigation Hold are not changed. See {RETIREMENT['url']}."
    )


def keyring_probe(tenant_id: str) -> Callable[[str], bool | None]:
    """upn -> does this machine's keyring hold its password (None: there is no usable keyring)."""

    def probe(upn: str) -> bool | None:
        from m365archive import secrets

        try:
            return secrets.get_secret(tenant_id, upn) is not None
        except secrets.NoKeyringError:
            return None

    return probe


def rotated_accounts(env: Env, tenant_id: str) -> list[str]:
    journal = env.journal()
    try:
        return [
            str(e["detail"])
            for e in journal.rows("events")
            if e["kind"] == ROTATED_EVENT and str(e["tenant"]).lower() == tenant_id.lower()
        ]
    finally:
        journal.close()


async def build_cleanup_plan(env: Env, config: Config, session: TenantSession, options: CleanupOptions) -> Plan:
    tenant = tenant_info(session)
    ctx = StepContext(config=config, session=session, tenant=tenant, operator=session.operator, progress=env.progress)
    ctx.facts.update(
        legacy_accounts=list(options.accounts),
        legacy_rotate=options.rotate_password,
        legacy_keyring=env.extras.get("keyring_probe") or keyring_probe(config.tenant.id),
        legacy_rotated=rotated_accounts(env, tenant["id"]),
    )
    try:
        out = await legacy_cleanup.plan(ctx)
    except StepError as exc:
        raise CommandError(str(exc), ExitCode.PREREQUISITE) from None
    except ExchangeError as exc:
        raise CommandError(f"Exchange refused a read: {exc.message}", ExitCode.ERROR) from None
    except GraphError as exc:
        code = ExitCode.AUTH if exc.status in (401, 403) else ExitCode.ERROR
        raise CommandError(f"Microsoft Graph refused a read: {exc.status} {exc.code}: {exc.message}", code) from None
    except TransportError as exc:
        raise CommandError(str(exc), ExitCode.AUTH if exc.auth else ExitCode.ERROR) from None
    plan = Plan(
        procedure=config.procedure,
        tenant=tenant,
        operator=session.operator,
        tool_version=__version__,
        kind=KIND,
        changes=out.changes,
        findings=out.findings,
        checks=out.checks,
        notices=[notice(), *out.notices],
        instructions=out.instructions,
        coverage=out.coverage,
    )
    plan.fingerprint = fingerprint({"rotate_password": options.rotate_password, **ctx.observed})
    return plan


def options_from_plan(plan: Plan) -> CleanupOptions:
    """The options a saved cleanup plan was made with (every confirmed account has a role change)."""
    accounts = sorted({c.target for c in plan.changes if c.step == legacy_cleanup.NAME and c.setting.endswith("role")})
    rotate = any(c.step == legacy_cleanup.NAME and c.setting == "password" for c in plan.changes)
    return CleanupOptions(accounts=accounts, rotate_password=rotate)


async def load_fresh(env: Env, config: Config, session: TenantSession, saved: Plan) -> tuple[Plan, CleanupOptions]:
    """Re-read the tenant for a saved cleanup plan; refuse it when the tenant changed since."""
    if saved.kind != KIND:
        raise CommandError(f"this is a {saved.kind} plan, not a legacy cleanup plan", ExitCode.USAGE)
    if saved.tenant.get("id", "").lower() != session.endpoints.tenant_id.lower():
        raise CommandError(
            f"the plan is for tenant {saved.tenant.get('id')}, not {session.endpoints.tenant_id}", ExitCode.STALE_PLAN
        )
    options = options_from_plan(saved)
    current = await build_cleanup_plan(env, config, session, options)
    if current.fingerprint != saved.fingerprint:
        raise CommandError(
            "Saved plan is stale: the tenant changed since the plan was made, so nothing was sent. "
            "Make a new plan with `m365archive legacy cleanup --dry-run --plan-out FILE`.",
            ExitCode.STALE_PLAN,
        )
    return current, options


def _is_local(change: Change) -> bool:
    return change.operation is not None and change.operation.kind == "local"


async def apply_cleanup(
    env: Env, config: Config, session: TenantSession, plan: Plan, runner_hook: Callable[[Runner], None] | None = None
) -> ApplyResult:
    from m365archive import secrets

    generated: dict[str, str] = {}

    def resolve(name: str) -> str:
        if not name.startswith(legacy_cleanup.SECRET_PREFIX):
            raise CommandError(f"the plan needs an unknown secret {name!r}", ExitCode.USAGE)
        upn = name.removeprefix(legacy_cleanup.SECRET_PREFIX)
        # Random, used once, kept nowhere: nobody needs to sign in as the retired catch-all account.
        return generated.setdefault(name, secrets.generate_password(avoid=upn))

    remote = dataclasses.replace(plan, changes=[c for c in plan.changes if not _is_local(c)])
    local = [c for c in plan.pending if _is_local(c)]
    journal = env.journal()
    tenant = plan.tenant.get("id", "")
    runner = Runner(session, journal, secrets=resolve, on_event=env.on_event, tool_version=__version__)
    if runner_hook:
        runner_hook(runner)
    try:
        result = await runner.apply(remote)
        failed_targets = {o.target.lower() for o in result.failed}
        for outcome in result.outcomes:
            if outcome.setting == "password" and outcome.outcome == "ok":
                journal.event(tenant, ROTATED_EVENT, outcome.target)
        for change in local:
            upn = change.target
            if result.interrupted or upn.lower() in failed_targets:
                result.outcomes.append(
                    ChangeOutcome(
                        change.id, upn, change.setting, "skipped", "not done: a change to this account failed"
                    )
                )
                continue
            assert change.operation is not None
            try:
                removed = secrets.delete_secret(str(change.operation.request.get("tenant", config.tenant.id)), upn)
            except secrets.NoKeyringError as exc:
                result.outcomes.append(ChangeOutcome(change.id, upn, change.setting, "failed", str(exc)))
                continue
            journal.event(tenant, KEYRING_EVENT, upn)
            detail = "deleted from this machine's keyring" if removed else "already gone from the keyring"
            result.outcomes.append(ChangeOutcome(change.id, upn, change.setting, "ok", detail))
    finally:
        journal.close()
    return result


def pending_tenant_changes(plan: Plan) -> int:
    return sum(1 for c in plan.changes if c.action is not Action.NOOP and not _is_local(c))
