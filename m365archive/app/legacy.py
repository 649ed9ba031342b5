"""`legacy cleanup`: remove what the retired route left behind, keep its data.

The plan is an ordinary Plan (kind "legacy-cleanup") and runs through the pipeline: dry run,
report, saved plan, `--yes`, the journal and resume work as for `setup`. Deleting the catch-all
password from this machine's keyring is a "local" Change in the same plan, sent by the apply
executor after every change to that account succeeded. No typer, no terminals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from m365archive import __version__
from m365archive.app.context import Env, reading, tenant_info
from m365archive.app.pipeline import PipelineResult, Procedure
from m365archive.config import Config
from m365archive.engine.journal import Journal
from m365archive.engine.plan import Plan, fingerprint
from m365archive.engine.runner import ApplyResult, OutcomeKind
from m365archive.errors import CommandError, Reason
from m365archive.partners import RETIREMENT
from m365archive.steps import legacy_cleanup
from m365archive.steps.base import StepContext
from m365archive.steps.seams import CleanupRequest, LocalSecrets
from m365archive.tenant.session import TenantSession

KIND = "legacy-cleanup"
ROTATED_EVENT = "legacy-password-rotated"


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


def local_secrets(env: Env, config: Config) -> LocalSecrets:
    """What the plan may ask about this machine's keyring (tests give their own probe in env.extras)."""
    return LocalSecrets(env.extras.get("keyring_probe") or keyring_probe(config.tenant.id))


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
    request = CleanupRequest(
        accounts=tuple(options.accounts),
        rotate=options.rotate_password,
        rotated=tuple(rotated_accounts(env, tenant["id"])),
    )
    with reading():
        out = await legacy_cleanup.plan(ctx, request, local_secrets(env, config))
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
    plan.selection = {
        "steps": [legacy_cleanup.NAME],
        "accounts": sorted(options.accounts),
        "rotate_password": options.rotate_password,
    }
    return plan


def options_from_plan(plan: Plan) -> CleanupOptions:
    """The options a saved cleanup plan was made with (its selection, replayed at apply)."""
    accounts = plan.selection.get("accounts", [])
    if not isinstance(accounts, list) or not all(isinstance(a, str) for a in accounts):
        raise CommandError("the plan's selection names its accounts wrongly", Reason.USAGE)
    return CleanupOptions(accounts=list(accounts), rotate_password=plan.selection.get("rotate_password") is True)


class LegacyCleanup(Procedure):
    command = "legacy cleanup"
    kind = KIND
    noun = "removal(s)"
    report_title = "m365archive legacy cleanup plan"

    def __init__(self, env: Env, config: Config, options: CleanupOptions) -> None:
        self.env = env
        self.config = config
        self.options = options

    async def plan(self, session: TenantSession) -> Plan:
        return await build_cleanup_plan(self.env, self.config, session, self.options)

    async def replan(self, session: TenantSession, saved: Plan) -> Plan:
        return await build_cleanup_plan(self.env, self.config, session, options_from_plan(saved))

    def secrets(self, plan: Plan) -> Callable[[str], str]:
        from m365archive import secrets

        generated: dict[str, str] = {}

        def resolve(name: str) -> str:
            if not name.startswith(legacy_cleanup.SECRET_PREFIX):
                raise CommandError(f"the plan needs an unknown secret {name!r}", Reason.USAGE)
            upn = name.removeprefix(legacy_cleanup.SECRET_PREFIX)
            # Random, used once, kept nowhere: nobody needs to sign in as the retired catch-all account.
            return generated.setdefault(name, secrets.generate_password(avoid=upn))

        return resolve

    async def after_apply(self, session: TenantSession, plan: Plan, result: ApplyResult, journal: Journal) -> None:
        tenant = plan.tenant.get("id", "")
        for outcome in result.outcomes:
            if outcome.setting == "password" and outcome.outcome is OutcomeKind.OK:
                journal.event(tenant, ROTATED_EVENT, outcome.target)  # the next plan says "rotated by an earlier run"

    def notes(self, result: PipelineResult) -> list[str]:
        if not result.plan.pending:
            return ["Nothing to clean up: no access of the retired route is left."]
        return []
