"""Step 5 of the documented procedure: the third-party data connector app's consent.

Grant (the admin-consent URL for the tenant's cloud, then waiting for its service principal to
replicate), status, and revoke: deleting the service principal through the pipeline, so revoking
has the dry run, report, saved plan, confirmation, Ctrl-C handling and journal of every change.
Microsoft retired EWS-based partner ingestion on 2024-12-30: every use case that hands out access
says so (partners.RETIREMENT). No typer, no terminals.
"""

from __future__ import annotations

import secrets as pysecrets
from collections.abc import Callable
from dataclasses import dataclass

from m365archive import __version__
from m365archive.app.context import Env, connect, reading, tenant_info
from m365archive.app.pipeline import PipelineResult, Procedure
from m365archive.config import Config
from m365archive.engine.plan import Plan, fingerprint
from m365archive.engine.runner import RunStatus
from m365archive.errors import CommandError, Reason
from m365archive.partners import RETIREMENT, retirement_notice
from m365archive.steps.connector_consent import (
    ConsentState,
    consent_state,
    consent_url,
    consent_url_caveat,
    observed,
    revoke_change,
)
from m365archive.tenant.retry import poll
from m365archive.tenant.session import TenantSession

CONSENT_KIND = "consent-revoke"
REVOKE_TIMEOUT = 120.0


def retirement_line() -> str:
    """One sentence for commands that hand out access: the route it serves is retired."""
    return (
        f"Microsoft retired EWS-based partner ingestion on {RETIREMENT['date']}: the third-party data "
        f"connector and the catch-all sign-in serve a retired route (source: {RETIREMENT['url']})."
    )


async def wait_for_consent(
    session: TenantSession,
    timeout: float,
    progress: Callable[[str], None],
    *,
    interval: float = 0.25,
    max_interval: float = 5.0,
) -> ConsentState:
    """Poll Graph until the connector's service principal shows (a new one takes time to replicate)."""
    found: ConsentState | None = None
    said = -1

    async def present() -> bool:
        nonlocal found
        found = await consent_state(session)
        return found.present

    def tick(elapsed: float) -> None:
        nonlocal said
        if int(elapsed) // 5 != said:  # a line every 5 s, not one per poll
            said = int(elapsed) // 5
            progress(f"waiting for consent and for the service principal to replicate ({int(elapsed)} s)")

    appeared = await poll(
        present, timeout=timeout, stop=session.stop_signal, first=interval, cap=max_interval, tick=tick
    )
    if appeared and found is not None:
        return found
    raise CommandError(
        f"the connector's service principal did not appear within {timeout:.0f} s "
        "(consent not given yet, or still replicating)",
        Reason.TIMEOUT,
        "check later with `m365archive consent status` (exit 0 once present)",
    )


def new_consent_state_token() -> str:
    return pysecrets.token_urlsafe(16)


@dataclass
class ConsentResult:
    """Where consent stands after `grant` or `status`."""

    state: ConsentState
    already: bool = False  # grant: it was already given
    url: str | None = None  # grant: the consent URL that was handed out


async def status(env: Env, config: Config) -> ConsentState:
    async with connect(env, config) as session:
        with reading():
            return await consent_state(session)


async def grant(
    env: Env,
    config: Config,
    timeout: float,
    *,
    show_url: Callable[[str, str | None], None],
    progress: Callable[[str], None],
) -> ConsentResult:
    """Hand out the admin-consent URL and what is unverified about it in this cloud (through `show_url`),
    then wait until the service principal shows."""
    async with connect(env, config) as session:
        with reading():
            before = await consent_state(session)
        if before.present:
            return ConsentResult(before, already=True)
        url = consent_url(session.endpoints, new_consent_state_token())
        show_url(url, consent_url_caveat(session.endpoints))
        after = await wait_for_consent(session, timeout, progress)
    return ConsentResult(after, url=url)


def revoke_plan(state: ConsentState, tenant: dict[str, str], operator: str, procedure: str) -> Plan:
    """A plan of one Change: DELETE the connector's service principal (its grants go with it)."""
    plan = Plan(procedure=procedure, tenant=tenant, operator=operator, tool_version=__version__, kind=CONSENT_KIND)
    plan.notices = [retirement_notice()]
    plan.fingerprint = fingerprint({"connector.consent": observed(state)})
    if not state.present:
        return plan
    plan.changes.append(revoke_change(state, step="connector_consent", timeout=REVOKE_TIMEOUT))
    plan.instructions.append(
        "After revoking: tell the partner the connector's access is gone, and consider rotating or removing the "
        "catch-all account (`m365archive credentials rotate`)."
    )
    return plan


class ConsentRevoke(Procedure):
    """Revoke consent: delete the connector's service principal, then wait until Graph no longer shows it."""

    command = "consent revoke"
    kind = CONSENT_KIND
    noun = "deletion(s)"
    report_title = "m365archive consent revoke"

    def __init__(self, env: Env, config: Config) -> None:
        self.env = env
        self.config = config
        self.state: ConsentState | None = None

    async def plan(self, session: TenantSession) -> Plan:
        with reading():
            self.state = await consent_state(session)
        return revoke_plan(self.state, tenant_info(session), session.operator, self.config.procedure)

    def notes(self, result: PipelineResult) -> list[str]:
        present = self.state is not None and self.state.present
        result.data.update(present=present, revoked=False)
        if not present:
            return ["Connector consent is absent: nothing to revoke."]
        if result.applied is None:
            return []
        if result.applied.status is RunStatus.SUCCESS:
            result.data.update(present=False, revoked=True)
            return ["Consent revoked: the connector's service principal is deleted (verified)."]
        failed = result.applied.failed
        result.errors.append(f"consent was not revoked: {failed[0].detail if failed else result.applied.status}")
        return []


__all__ = [
    "ConsentResult",
    "ConsentRevoke",
    "ConsentState",
    "consent_state",
    "consent_url",
    "consent_url_caveat",
    "grant",
    "retirement_line",
    "revoke_plan",
    "status",
    "wait_for_consent",
]
