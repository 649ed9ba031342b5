"""Steps 1, 4 and 5 of the documented procedure, as an importable core (no typer, no terminals).

- Step 5: the third-party data connector app's consent: the admin-consent URL for the tenant's
  cloud, waiting for its service principal to replicate, its grants, and revoking it (deleting the
  service principal through the engine's Runner, so the deletion is journaled).
- Step 4: the partner handoff packet (ingestion endpoint, catch-all UPN, tenant, consent state,
  message format), with the catch-all password only when asked for.
- The catch-all password: rotating it through Graph with a `${secret:...}` placeholder, crash-safe.

Microsoft retired EWS-based partner ingestion on 2024-12-30: every function that hands out access
or a credential says so (partners.RETIREMENT).

Rotation is crash-safe. The new password is first kept as *pending* (keyring user name
``<tenant>/<upn>/pending``, or ``<password file>.pending``), then sent to Graph, then promoted to
the current entry. If the process dies between Graph accepting it and the promotion, the next
`rotate` finds the pending value and sends that same value again, so the stored password and the
tenant's agree again without anyone guessing which one is live. A pending value Graph refused
outright (4xx) is discarded; one whose fate is unknown (5xx, dropped connection) is kept for the
next run.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets as pysecrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from m365archive.engine.plan import Action, Change, Plan, Wait, secret
from m365archive.partners import (
    CONNECTOR_APP_ID,
    INGESTION_ADVICE,
    MESSAGE_CLASS_FORMAT,
    MESSAGE_PROPERTIES,
    RETIREMENT,
    find_partner,
    retirement_notice,
)
from m365archive.powershell import command, variable
from m365archive.report.markdown import secret_block
from m365archive.result import CommandError, ExitCode
from m365archive.steps.base import GRAPH, graph_operation

if TYPE_CHECKING:
    from m365archive.config import Config
    from m365archive.core import Env
    from m365archive.engine.runner import ApplyResult
    from m365archive.tenant.session import Endpoints, TenantSession

ROTATE_SECRET = "catchall-password-new"
PENDING_SUFFIX = "/pending"
CONSENT_KIND = "consent-revoke"
ROTATE_KIND = "credentials-rotate"


def retirement_line() -> str:
    """One sentence for commands that hand out access: the route it serves is retired."""
    return (
        f"Microsoft retired EWS-based partner ingestion on {RETIREMENT['date']}: the third-party data "
        f"connector and the catch-all sign-in serve a retired route (source: {RETIREMENT['url']})."
    )


# --- Step 5: consent ------------------------------------------------------------------------------


# The only redirect URI the reference page documents for the connector app (Step 5). No public source
# shows which redirect URIs the app accepts in the national clouds, so none is invented for them.
CONNECTOR_REDIRECT_URI = "https://portal.azure.com/"


def consent_url(endpoints: Endpoints, state: str | None = None) -> str:
    """The admin-consent link of Step 5: the reference page's URL with the tenant id in place of `common`
    when the tenant is known (an admin signed in to several tenants must not consent in the wrong one),
    on the tenant's cloud's login host (the simulator's login base with --sim)."""
    from m365archive.tenant.clouds import get_cloud

    cloud = get_cloud(endpoints.cloud)
    return cloud.admin_consent_url(
        endpoints.tenant_id or None,
        CONNECTOR_APP_ID,
        redirect_uri=CONNECTOR_REDIRECT_URI,
        state=state,
        login_base=endpoints.login if endpoints.simulator else None,
    )


def consent_url_caveat(endpoints: Endpoints) -> str | None:
    """What is unverified about the consent URL in this cloud, or None (the commercial cloud)."""
    if endpoints.cloud == "global":
        return None
    return (
        f"unverified for the {endpoints.cloud} cloud: the reference page documents only the redirect URI "
        f"{CONNECTOR_REDIRECT_URI} for the connector app, and no public source shows the app or its redirect "
        "URIs in this cloud; if the sign-in page answers AADSTS50011 or AADSTS700016, the app is not available here"
    )


@dataclass
class ConsentState:
    """The connector's service principal in the tenant, and what it was granted."""

    present: bool
    service_principal: dict[str, Any] | None = None
    oauth2_permission_grants: list[dict[str, Any]] = field(default_factory=list)
    app_role_assignments: list[dict[str, Any]] = field(default_factory=list)

    @property
    def sp_id(self) -> str | None:
        return str(self.service_principal["id"]) if self.service_principal else None

    @property
    def created(self) -> str | None:
        """When consent was given, as far as Graph v1.0 tells: servicePrincipal has no creation time,
        so the earliest app role assignment stands in for it."""
        if self.service_principal and self.service_principal.get("createdDateTime"):
            return str(self.service_principal["createdDateTime"])
        times = sorted(str(a["createdDateTime"]) for a in self.app_role_assignments if a.get("createdDateTime"))
        return times[0] if times else None

    def to_dict(self) -> dict[str, Any]:
        sp = self.service_principal or {}
        return {
            "app_id": CONNECTOR_APP_ID,
            "present": self.present,
            "service_principal": {
                "id": sp.get("id"),
                "displayName": sp.get("displayName"),
                "appId": sp.get("appId"),
                "accountEnabled": sp.get("accountEnabled"),
            }
            if self.present
            else None,
            "created": self.created,
            "oauth2PermissionGrants": self.oauth2_permission_grants,
            "appRoleAssignments": self.app_role_assignments,
        }

    def lines(self) -> list[str]:
        """Human lines (tenant strings: print them with markup off)."""
        if not self.present:
            return [f"Connector consent: absent (no service principal for app {CONNECTOR_APP_ID})."]
        sp = self.service_principal or {}
        out = [
            f"Connector consent: present: {sp.get('displayName')} (service principal {sp.get('id')}, "
            f"app {CONNECTOR_APP_ID})",
            f"  created: {self.created or 'not reported by Graph v1.0 (servicePrincipal has no creation time)'}",
            f"  delegated permission grants (oauth2PermissionGrants): {len(self.oauth2_permission_grants)}",
        ]
        for g in self.oauth2_permission_grants:
            who = "all users" if g.get("consentType") == "AllPrincipals" else f"user {g.get('principalId')}"
            out.append(f"    - scope {g.get('scope', '').strip() or '(none)'} on {g.get('resourceId')} for {who}")
        out.append(f"  application permissions (appRoleAssignments): {len(self.app_role_assignments)}")
        for a in self.app_role_assignments:
            out.append(
                f"    - app role {a.get('appRoleId')} on {a.get('resourceDisplayName') or a.get('resourceId')}"
                f" (since {a.get('createdDateTime') or 'unknown'})"
            )
        return out


async def consent_state(session: TenantSession) -> ConsentState:
    graph = session.graph
    sp = await graph.service_principal_by_app_id(CONNECTOR_APP_ID)
    if sp is None:
        return ConsentState(present=False)
    sp_id = str(sp["id"])
    grants, roles = await asyncio.gather(graph.oauth2_permission_grants(sp_id), graph.app_role_assignments(sp_id))
    return ConsentState(True, sp, grants, roles)


async def wait_for_consent(
    session: TenantSession,
    timeout: float,
    progress: Callable[[str], None],
    *,
    interval: float = 0.25,
    max_interval: float = 5.0,
) -> ConsentState:
    """Poll Graph until the connector's service principal shows (a new one takes time to replicate)."""
    started = time.monotonic()
    deadline = started + timeout
    delay = interval
    last_said = -1
    while True:
        state = await consent_state(session)
        if state.present:
            return state
        now = time.monotonic()
        if now >= deadline:
            raise CommandError(
                f"the connector's service principal did not appear within {timeout:.0f} s "
                "(consent not given yet, or still replicating)",
                ExitCode.TIMEOUT,
                "check later with `m365archive consent status` (exit 0 once present)",
            )
        elapsed = int(now - started)
        if elapsed // 5 != last_said:  # a line every 5 s, not one per poll
            last_said = elapsed // 5
            progress(f"waiting for consent and for the service principal to replicate ({elapsed} s)")
        await asyncio.sleep(min(delay, max(deadline - now, 0.0)))
        delay = min(delay * 2, max_interval)


def new_consent_state_token() -> str:
    return pysecrets.token_urlsafe(16)


def revoke_plan(state: ConsentState, tenant: dict[str, str], operator: str, procedure: str) -> Plan:
    """A plan of one Change: DELETE the connector's service principal (its grants go with it)."""
    from m365archive import __version__

    plan = Plan(procedure=procedure, tenant=tenant, operator=operator, tool_version=__version__, kind=CONSENT_KIND)
    plan.notices = [retirement_notice()]
    if not state.present:
        return plan
    sp = state.service_principal or {}
    sp_id = str(sp["id"])
    plan.changes.append(
        Change(
            id=f"connector_consent/revoke/{CONNECTOR_APP_ID}",
            step="connector_consent",
            target=str(sp.get("displayName") or CONNECTOR_APP_ID),
            setting="service principal (connector consent)",
            action=Action.DELETE,
            before={
                "id": sp_id,
                "appId": CONNECTOR_APP_ID,
                "oauth2PermissionGrants": len(state.oauth2_permission_grants),
                "appRoleAssignments": len(state.app_role_assignments),
            },
            after=None,
            operation=graph_operation(
                "DELETE",
                f"/servicePrincipals/{sp_id}",
                powershell=command("Remove-MgServicePrincipal", {"ServicePrincipalId": sp_id}),
                ok_if_error=["does not exist"],
            ),
            side=GRAPH,
            warnings=[
                "The partner connector can no longer sign in to this tenant; its delegated grants and app role "
                "assignments are deleted with the service principal."
            ],
            rollback_note="no command: consent again with `m365archive consent grant` (a global administrator in a "
            "browser)",
            wait=Wait(
                "service-principal-gone",
                CONNECTOR_APP_ID,
                120.0,
                "waiting until Graph no longer shows the connector's service principal",
            ),
            category="consent",
        )
    )
    plan.instructions.append(
        "After revoking: tell the partner the connector's access is gone, and consider rotating or removing the "
        "catch-all account (`m365archive credentials rotate`)."
    )
    return plan


async def apply_exact(
    env: Env, session: TenantSession, plan: Plan, resolve: Callable[[str], str] | None = None
) -> ApplyResult:
    """Apply a plan through the engine's Runner (journaled), with this module's own secret resolver."""
    from m365archive import __version__
    from m365archive.engine.runner import Runner

    def no_secret(name: str) -> str:
        raise CommandError(f"the plan needs an unknown secret {name!r}", ExitCode.USAGE)

    journal = env.journal()
    try:
        runner = Runner(session, journal, secrets=resolve or no_secret, on_event=env.on_event, tool_version=__version__)
        return await runner.apply(plan)
    finally:
        journal.close()


# --- the catch-all password ----------------------------------------------------------------------


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
            raise CommandError("the config has no [catchall] table: there is no catch-all account", ExitCode.USAGE)
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
            raise CommandError(str(exc), ExitCode.NO_SECRET_STORE) from None
        except secrets.PasswordFileError as exc:
            raise CommandError(str(exc), ExitCode.USAGE) from None

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
class Rotation:
    plan: Plan
    password: str  # the value the plan's ${secret:catchall-password-new} resolves to (never rendered)
    resumed: bool  # an interrupted rotation's pending value is sent again


async def rotate_plan(config: Config, session: TenantSession, store: PasswordStore) -> Rotation:
    """Read the catch-all user and plan one PATCH of its password (a placeholder, never the value)."""
    from m365archive import __version__
    from m365archive import secrets as secret_store
    from m365archive.core import tenant_info

    store.check()
    assert config.catchall is not None
    upn = config.catchall.upn
    user = await session.graph.get_user(upn, ["id", "userPrincipalName"])
    if user is None:
        raise CommandError(
            f"the catch-all account {upn} does not exist",
            ExitCode.PREREQUISITE,
            "create it first with `m365archive setup`",
        )
    pending = store.pending()
    password = pending or secret_store.generate_password(avoid=upn)
    plan = Plan(
        procedure=config.procedure,
        tenant=tenant_info(session),
        operator=session.operator,
        tool_version=__version__,
        kind=ROTATE_KIND,
    )
    plan.notices = [retirement_notice()]
    user_id = str(user["id"])
    plan.changes.append(
        Change(
            id=f"catchall_account/password/{upn}",
            step="catchall_account",
            target=upn,
            setting="password",
            action=Action.UPDATE,
            before="(sensitive value)",
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
                f"The new password is generated here and kept only in {store.where}; it is never printed.",
            ],
            rollback_note="can't be undone: the old password is not kept",
            category="credentials",
        )
    )
    return Rotation(plan, password, resumed=pending is not None)


async def rotate(env: Env, session: TenantSession, store: PasswordStore, rotation: Rotation) -> ApplyResult:
    """Apply a rotation: pending first, then Graph, then promote (see the module docstring)."""
    store.set_pending(rotation.password)
    result = await apply_exact(env, session, rotation.plan, lambda name: rotation.password)
    outcome = result.outcomes[0] if result.outcomes else None
    if result.status == "success":
        store.promote(rotation.password)
        journal = env.journal()
        try:
            journal.event(
                rotation.plan.tenant.get("id", ""),
                "credentials-rotated",
                f"catch-all password of {rotation.plan.changes[0].target} rotated; stored in {store.where}",
            )
        finally:
            journal.close()
    elif outcome is not None and re.match(r"4\d\d ", outcome.detail or ""):
        store.discard_pending()  # Graph refused it: the old password is still the live one
    return result


# --- Step 4: the handoff packet --------------------------------------------------------------------


@dataclass
class Handoff:
    tenant_id: str
    domain: str
    cloud: str
    catchall_upn: str
    ingestion_endpoint: str | None
    endpoint_note: str
    consent: ConsentState
    partner: str | None
    partner_note: str = ""
    password: str | None = field(default=None, repr=False)

    def to_dict(self, *, include_secret: bool = False) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "retirement": {"date": RETIREMENT["date"], "source": RETIREMENT["url"], "summary": RETIREMENT["summary"]},
            "partner": self.partner,
            "tenant": {"id": self.tenant_id, "domain": self.domain, "cloud": self.cloud},
            "ingestion_endpoint": self.ingestion_endpoint,
            "ingestion_endpoint_note": self.endpoint_note,
            "catchall": {"userPrincipalName": self.catchall_upn},
            "connector_consent": {
                "app_id": CONNECTOR_APP_ID,
                "present": self.consent.present,
                "service_principal_id": self.consent.sp_id,
            },
            "message_properties": [
                {"name": p.name, "mandatory": p.mandatory, "description": p.description, "example": p.example}
                for p in MESSAGE_PROPERTIES
            ],
            "message_class_format": MESSAGE_CLASS_FORMAT,
            "ingestion_advice": INGESTION_ADVICE,
        }
        if include_secret:
            doc["catchall"]["password"] = self.password
        return doc

    def markdown(self, *, include_secret: bool = False) -> str:
        def md(value: object) -> str:
            return str(value).replace("|", "\\|").replace("\n", "<br>")

        lines = [
            "# Partner handoff: third-party data ingestion",
            "",
            f"> **Retired route.** {RETIREMENT['summary']} Source: {RETIREMENT['url']}",
            "",
        ]
        if self.partner:
            lines += [f"Partner: {self.partner}{(' (' + self.partner_note + ')') if self.partner_note else ''}", ""]
        lines += [
            "| | |",
            "|:--|:--|",
            f"| Tenant id | {md(self.tenant_id)} |",
            f"| Tenant domain | {md(self.domain)} |",
            f"| Cloud | {md(self.cloud)} |",
            f"| Ingestion endpoint | {md(self.ingestion_endpoint or '(none known: see the note)')} |",
            f"| Catch-all account (sign-in) | {md(self.catchall_upn)} |",
        ]
        consent = (
            f"present (service principal {self.consent.sp_id})" if self.consent.present else "absent (not consented)"
        )
        lines += [f"| Connector consent (app {CONNECTOR_APP_ID}) | {consent} |", ""]
        if self.endpoint_note:
            lines += [f"Note: {self.endpoint_note}", ""]
        if include_secret:
            lines += secret_block(f"Catch-all password ({self.catchall_upn})", self.password or "")
        else:
            lines += [
                "The catch-all password is not in this packet. It is handed over separately "
                "(`m365archive partner-info --include-secret --out FILE` writes a file only you can read).",
                "",
            ]
        lines += [
            "## Message properties partners must populate",
            "",
            f"MESSAGECLASS has the form `{MESSAGE_CLASS_FORMAT}`. Items missing a mandatory property are not imported.",
            "",
            "| Property | Mandatory | Example |",
            "|:--|:--|:--|",
        ]
        for p in MESSAGE_PROPERTIES:
            lines.append(f"| {p.name} | {'yes' if p.mandatory else 'no'} | {md(p.example)} |")
        lines += ["", "## Logging", "", INGESTION_ADVICE, ""]
        return "\n".join(lines)


async def handoff(
    config: Config,
    session: TenantSession,
    *,
    ingestion_endpoint: str | None = None,
) -> Handoff:
    """Everything Step 4 hands the partner, read from the tenant (no secret)."""
    from m365archive.tenant.clouds import get_cloud

    if config.catchall is None:
        raise CommandError("the config has no [catchall] table: there is no catch-all account", ExitCode.USAGE)
    e = session.endpoints
    cloud = get_cloud(e.cloud)
    note = ""
    endpoint = ingestion_endpoint or cloud.ingestion_endpoint
    if ingestion_endpoint and cloud.ingestion_endpoint and ingestion_endpoint != cloud.ingestion_endpoint:
        note = f"--ingestion-endpoint replaces the documented endpoint {cloud.ingestion_endpoint}."
    elif cloud.ingestion_endpoint is None:
        note = (
            f"The reference page gives an ingestion endpoint for the commercial cloud only; none is documented for "
            f"{cloud.title}."
            + (
                " The endpoint above was given with --ingestion-endpoint."
                if ingestion_endpoint
                else " Ask Microsoft support or your partner, and pass it with --ingestion-endpoint URL."
            )
        )
    partner_note = ""
    partner = config.partner
    if partner:
        found = find_partner(partner)
        partner, partner_note = (found.name, "") if found else (partner, "not in the reference page's partner list")
    return Handoff(
        tenant_id=e.tenant_id,
        domain=e.domain,
        cloud=e.cloud,
        catchall_upn=config.catchall.upn,
        ingestion_endpoint=endpoint,
        endpoint_note=note,
        consent=await consent_state(session),
        partner=partner,
        partner_note=partner_note,
    )


__all__ = [
    "ConsentState",
    "Handoff",
    "PasswordStore",
    "Rotation",
    "apply_exact",
    "consent_state",
    "consent_url",
    "handoff",
    "retirement_line",
    "revoke_plan",
    "rotate",
    "rotate_plan",
    "wait_for_consent",
]
