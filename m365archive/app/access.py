"""What the signed-in principal holds against what a run needs (`preflight`, and setup's plan-time checks).

Reads only: the tokens' `scp`/`roles` (Graph and Exchange), the principal's Entra roles (transitive, so through
groups too, and PIM-activated ones while active: GET /me/transitiveMemberOf/graph.directoryRole, or
/servicePrincipals/{id}/... for an app), the roles PIM lists as eligible only
(roleEligibilityScheduleInstances), Exchange Online and Security & Compliance role-group membership
(Get-RoleGroup, Get-RoleGroupMember by ExchangeObjectId), and the resource service principals the tokens are
for. Each need is have / missing / eligible / can't tell, with the exact remedy.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from m365archive import permissions as perms
from m365archive.engine.checks import Check
from m365archive.powershell import command
from m365archive.tenant.exchange import Cmdlet, TransportError
from m365archive.tenant.graph_types import GraphError
from m365archive.wellknown import ENTRA_ROLE_TEMPLATES

if TYPE_CHECKING:
    from m365archive.config import Config
    from m365archive.engine.plan import Plan
    from m365archive.tenant.session import TenantSession

# `preflight --for NAME`: the permissions table's commands each name stands for.
TARGETS: dict[str, tuple[str, ...]] = {
    "setup": ("setup --dry-run", "setup"),
    "status": ("status",),
    "consent": ("consent grant", "consent status", "consent revoke"),
    "consent-grant": ("consent grant",),
    "consent-status": ("consent status",),
    "consent-revoke": ("consent revoke",),
    "credentials": ("credentials rotate",),
    "legacy": ("setup --dry-run", "legacy cleanup"),
    "partner-info": ("partner-info",),
    "mapping": ("mapping check/export",),
}
PIM_ACTIVATION = "https://portal.azure.com/#view/Microsoft_Azure_PIMCommon/ActivationMenuBlade/~/aadmigratedroles"


@dataclass
class NeedVerdict:
    need: perms.Need
    verdict: str
    via: str = ""
    remedy: str = ""

    @property
    def blocking(self) -> bool:
        return self.verdict in (perms.MISSING, perms.ELIGIBLE)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.need.kind,
            "need": self.need.label,
            "alternatives": list(self.need.names),
            "verdict": self.verdict,
            "via": self.via,
            "remedy": self.remedy,
            "for": list(self.need.steps),
        }


@dataclass
class AccessReport:
    principal: str
    app_only: bool
    target: str
    verdicts: list[NeedVerdict] = field(default_factory=list)

    @property
    def blocking(self) -> list[NeedVerdict]:
        return [v for v in self.verdicts if v.blocking]

    def to_dict(self) -> dict[str, Any]:
        return {
            "principal": self.principal,
            "sign_in": "application" if self.app_only else "delegated",
            "for": self.target,
            "needs": [v.to_dict() for v in self.verdicts],
        }

    def checks(self) -> list[Check]:
        """setup's plan-time checks: a blocking Check per need that is missing or only eligible, an advisory one
        per need that can't be told (needs that are held add nothing)."""
        return [
            Check(
                f"permission/{v.need.kind}/{v.need.names[0]}",
                f"{self.principal}: {v.need.kind} {v.need.label} {v.verdict}" + (f" ({v.via})" if v.via else ""),
                v.blocking,
                False,
                v.remedy,
            )
            for v in self.verdicts
            if v.verdict != perms.HAVE
        ]


def rows_for_target(target: str, config: Config) -> list[perms.Requirement]:
    """The permissions table's rows a command needs with this config (setup: only the steps it configures)."""
    commands = TARGETS[target]
    rows = [r for r in perms.TABLE if any(c in (x.strip() for x in r.command.split(",")) for c in commands)]
    if "setup" not in commands:
        return rows
    from m365archive.app.procedures import steps_for

    steps = {step.name for step in steps_for(config.procedure)}
    if config.users.scope == "none":
        steps.discard("user_mailboxes")
    if config.hold.kind == "retention-policy":
        steps.add("retention")
    if config.onprem is not None and "user_mailboxes" in steps:
        steps.add("user_mailboxes (hybrid)")
    return [r for r in rows if r.step == "read" or r.step in steps]


def rows_for_plan(plan: Plan) -> list[perms.Requirement]:
    """The rows a plan's pending changes need (by step and by the service each change goes to), plus reading."""
    wanted: set[tuple[str, bool]] = set()
    for change in plan.pending:
        if change.operation is None:
            continue
        if change.side == "on-premises Exchange":
            wanted.add(("user_mailboxes (hybrid)", False))
        elif change.side == "Security & Compliance" and change.step in ("catchall_mailbox", "user_mailboxes"):
            wanted.add(("retention", True))
        else:
            wanted.add((change.step, change.side in ("Exchange Online", "Security & Compliance")))
    rows = [r for r in perms.TABLE if "setup --dry-run" in r.command]
    for row in perms.for_command("setup"):
        exchange = row.exchange or not row.graph_delegated
        if (row.step, exchange) in wanted or (row.step == "user_mailboxes (hybrid)" and (row.step, False) in wanted):
            rows.append(row)
    return rows


def _claims(token: str) -> dict[str, Any]:
    from m365archive.tenant.tokens import token_claims

    return token_claims(token)


async def _token_claims(session: TenantSession, scope: str) -> dict[str, Any] | None:
    try:
        token = await session.credential.get_token(scope)
    except Exception:
        return None
    return _claims(token.token)


def _granted(claims: dict[str, Any] | None) -> frozenset[str] | None:
    if claims is None:
        return None
    if claims.get("idtyp") == "app" or ("roles" in claims and "scp" not in claims):
        return frozenset(str(r) for r in claims.get("roles") or [])
    return frozenset(str(claims.get("scp") or "").split())


def _role_names(templates: list[str], names: dict[str, str]) -> frozenset[str]:
    return frozenset(perms.ROLE_NAMES_BY_TEMPLATE.get(t.lower(), names.get(t.lower(), t)) for t in templates)


async def _directory_roles(session: TenantSession, oid: str, app_only: bool) -> frozenset[str] | None:
    try:
        roles = await session.graph.directory_roles_of(oid if app_only else None)
    except (GraphError, ValueError):
        return None
    names = {str(r.get("roleTemplateId", "")).lower(): str(r.get("displayName", "")) for r in roles}
    return _role_names(list(names), names)


async def _eligible_roles(session: TenantSession, oid: str) -> frozenset[str] | None:
    try:
        items = await session.graph.eligible_role_instances(oid)
    except GraphError:
        return None
    return _role_names([str(i.get("roleDefinitionId", "")) for i in items], {})


async def _role_groups(
    session: TenantSession, side: str, needs: list[perms.Need], upn: str, oid: str
) -> frozenset[str] | None:
    """The role groups (of those the needs name, and those that cover them) the user is a member of."""
    runner = session.compliance if side == "compliance" else session.exchange
    wanted = {perms._norm(n) for need in needs for n in need.names}
    wanted |= {
        perms._norm(k) for k, covered in perms.ROLE_GROUP_COVERS.items() for c in covered if perms._norm(c) in wanted
    }
    try:
        listed = await runner.invoke(Cmdlet("Get-RoleGroup", {}))
        if listed.error is not None:
            return None
        groups = [g for g in listed.objects if perms._norm(str(g.get("Name", ""))) in wanted]
        outcomes = await runner.invoke_many(
            [
                Cmdlet("Get-RoleGroupMember", {"Identity": str(g.get("ExchangeObjectId") or g.get("Guid"))})
                for g in groups
            ]
        )
    except TransportError:
        return None
    member_of = set()
    for group, outcome in zip(groups, outcomes, strict=True):
        if outcome.error is not None:
            return None
        for m in outcome.objects:
            ids = {
                str(m.get(k, "")).lower() for k in ("WindowsLiveID", "PrimarySmtpAddress", "ExternalDirectoryObjectId")
            }
            if upn.lower() in ids or oid.lower() in ids:
                member_of.add(str(group.get("Name")))
    return frozenset(member_of)


async def _onprem_role_groups(session: TenantSession, config: Config) -> frozenset[str] | None:
    """The on-premises role groups through which the configured account holds the Mail Recipients role (the
    read `preflight --onprem` makes); None when on-premises Exchange can't be asked."""
    from m365archive.app.preflight import ARCHIVE_ROLE, account_names
    from m365archive.errors import CommandError

    if config.onprem is None or not session.has_onprem:
        return None
    try:
        runner = session.onprem
        if runner is None:
            return None
        outcome = await runner.invoke(
            Cmdlet("Get-ManagementRoleAssignment", {"Role": ARCHIVE_ROLE, "GetEffectiveUsers": True})
        )
    except (TransportError, CommandError):
        return None
    if outcome.error is not None:
        return None
    names = account_names(config.onprem.username or "")
    return frozenset(
        str(o.get("RoleAssigneeName", ""))
        for o in outcome.objects
        if str(o.get("EffectiveUserName", "")).lower() in names
    )


async def _service_principals(session: TenantSession, needs: list[perms.Need]) -> dict[str, bool | None]:
    out: dict[str, bool | None] = {}
    for need in needs:
        if need.kind != "service-principal":
            continue
        app_id = perms.RESOURCE_APPS[need.names[0]]
        try:
            out[app_id] = await session.graph.service_principal_by_app_id(app_id) is not None
        except GraphError:
            out[app_id] = None
    return out


async def check_access(
    session: TenantSession, config: Config, rows: list[perms.Requirement], target: str
) -> AccessReport:
    """Read what the principal holds and judge every need of `rows`."""
    endpoints = session.endpoints
    graph_claims, exchange_claims = await asyncio.gather(
        _token_claims(session, endpoints.graph_scope), _token_claims(session, endpoints.exchange_scope)
    )
    claims = graph_claims or exchange_claims or {}
    app_only = claims.get("idtyp") == "app" or session.app_only
    oid = str(claims.get("oid") or "")
    upn = str(claims.get("upn") or claims.get("unique_name") or session.operator or "")
    needs = perms.needs_for_rows(rows, app_only=app_only)
    roles, eligible = await asyncio.gather(_directory_roles(session, oid, app_only), _eligible_roles(session, oid))
    if roles is None and claims.get("wids") is not None:
        roles = _role_names([str(w) for w in claims.get("wids") or []], {})  # the token's own list
    held = perms.Held(
        app_only=app_only,
        graph=_granted(graph_claims),
        exchange=_granted(exchange_claims),
        roles=roles,
        eligible=eligible,
        role_groups={},
        service_principals=await _service_principals(session, needs),
        own_client=bool(config.auth.client_id) or endpoints.simulator,
    )
    if any(n.kind == "role-group" and n.side == "on-premises" for n in needs):
        held.role_groups["on-premises"] = await _onprem_role_groups(session, config)
    for side in ("exchange-online", "compliance"):
        # Membership is read only where the Entra roles don't already settle it (Exchange counts their holders in).
        side_needs = [n for n in needs if n.kind == "role-group" and n.side == side]
        if side_needs and any(perms.evaluate(n, held)[0] != perms.HAVE for n in side_needs):
            held.role_groups[side] = await _role_groups(session, side, side_needs, upn, oid)
    app_id = str(claims.get("appid") or claims.get("azp") or "")
    principal = f"application {app_id}" if app_only else upn
    report = AccessReport(principal, app_only, target)
    remedies = _Remedies(session, config, oid, upn, app_id, app_only)
    for need in needs:
        verdict, via = perms.evaluate(need, held)
        remedy = remedies.for_need(need, verdict, via) if verdict != perms.HAVE else ""
        report.verdicts.append(NeedVerdict(need, verdict, via, remedy))
    return report


@dataclass
class _Remedies:
    session: TenantSession
    config: Config
    oid: str
    upn: str
    app_id: str
    app_only: bool

    def _consent_url(self, client_id: str, scope: str) -> str:
        e = self.session.endpoints
        query = urlencode({"client_id": client_id, "scope": scope}, safe="/:")
        return f"{e.login.rstrip('/')}/{e.tenant_id}/v2.0/adminconsent?{query}"

    def for_need(self, need: perms.Need, verdict: str, via: str) -> str:
        from m365archive.wellknown import EXCHANGE_POWERSHELL_CLIENT_ID, GRAPH_POWERSHELL_CLIENT_ID

        e = self.session.endpoints
        if verdict == perms.UNKNOWN:
            return f"check by hand: {via}"
        if need.kind in ("graph-permission", "exchange-permission"):
            graph = need.kind == "graph-permission"
            resource = (e.graph_scope if graph else e.exchange_scope).removesuffix("/.default")
            api = "Microsoft Graph" if graph else "Office 365 Exchange Online"
            name = need.names[0]
            if self.app_only:
                return (
                    f"add the {api} application permission {name} to app {self.app_id} (App registrations > API "
                    f"permissions), then grant admin consent: {self._consent_url(self.app_id, resource + '/.default')}"
                )
            default = GRAPH_POWERSHELL_CLIENT_ID if graph else EXCHANGE_POWERSHELL_CLIENT_ID
            client = self.config.auth.client_id or default
            return (
                f"grant the delegated permission {name} ({api}) to app {client}, then sign in again: "
                f"{self._consent_url(client, f'{resource}/{name}')}"
            )
        if need.kind == "service-principal":
            return command("New-MgServicePrincipal", {"AppId": perms.RESOURCE_APPS[need.names[0]]})
        role = need.names[0] if need.kind == "entra-role" else perms.entra_role_for(need)
        if verdict == perms.ELIGIBLE:
            return (
                f"{via.removeprefix('Entra role ')} is eligible, activate first in Privileged Identity Management "
                f"({PIM_ACTIVATION}), then run again"
            )
        if need.kind == "role-group":
            member = self.upn
            if need.side == "on-premises" and self.config.onprem is not None:
                member = self.config.onprem.username or member
            line = command("Add-RoleGroupMember", {"Identity": need.names[0], "Member": member})
            where = {
                "compliance": "in Security & Compliance PowerShell (Connect-IPPSSession)",
                "on-premises": "in the Exchange Management Shell",
            }.get(need.side, "in Exchange Online PowerShell")
            alternative = ""
            if role and need.side != "on-premises":
                alternative = "; or assign the Entra role: " + self._role_line(role)
            return f"{where}: {line}{alternative}"
        return self._role_line(role)

    def _role_line(self, role: str) -> str:
        template = ENTRA_ROLE_TEMPLATES.get(role, role)
        return command(
            "New-MgRoleManagementDirectoryRoleAssignment",
            {"PrincipalId": self.oid, "RoleDefinitionId": template, "DirectoryScopeId": "/"},
        )


async def preflight(env: Any, config: Config, target: str) -> AccessReport:
    """`preflight [--for TARGET]`: connect, read, judge. Reads only."""
    from m365archive.app.context import connect

    async with connect(env, config) as session:
        return await check_access(session, config, rows_for_target(target, config), target)
