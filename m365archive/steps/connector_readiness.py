"""Today's route: what a tenant needs before a Microsoft Purview data connector is created.

Reads and (where an API exists) converges: the partner app's service principal (Graph), a role
group carrying Data Connector Admin for whoever creates the connector (Security & Compliance),
organization auditing (Exchange Online). Mailbox readiness is the user_mailboxes step. No
catch-all account: items whose user can't be mapped are not imported. The last step, `handoff`,
writes the portal instructions, because no public API or cmdlet creates a data connector.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from m365archive.config import ConnectorConfig
from m365archive.engine.checks import Check
from m365archive.engine.plan import OperationKind, Severity, Wait, WaitKind
from m365archive.partners import (
    DATA_CONNECTOR_ADMIN_ROLE,
    PURVIEW_CONNECTORS,
    PurviewConnector,
    connector_slug,
    find_purview_connector,
)
from m365archive.powershell import command
from m365archive.steps import rollback
from m365archive.steps.base import (
    EXO,
    GRAPH,
    SCC,
    StepContext,
    StepError,
    StepPlan,
    change,
    cmdlet_operation,
    finding,
    graph_operation,
)
from m365archive.tenant.exchange import Cmdlet

NAME = "connector_readiness"
UNIFIED_AUDIT_COMMAND = command("Set-AdminAuditLogConfig", {"UnifiedAuditLogIngestionEnabled": True})
NO_CATCHALL = (
    "No catch-all account is created: a Microsoft Purview data connector imports each item into the mapped "
    "user's own mailbox, and items whose user can't be mapped are not imported."
)


def find_connector(source: str) -> PurviewConnector:
    """The connector a config's `connector.source` names ("bloomberg-message", "Veritas Merge1", ...)."""
    connector = find_purview_connector(source)
    if connector is None:
        names = ", ".join(connector_slug(c.name) for c in PURVIEW_CONNECTORS)
        raise StepError(f"connector.source {source!r} is not a known Purview data connector (known: {names})")
    return connector


def role_name(role: object) -> str:
    """A role's name from Get-RoleGroup's Roles, which are path-qualified identities
    (`FFO.extest.microsoft.com/Microsoft Exchange Hosted Organizations/<tenant>/Data Connector Admin`):
    the last segment, as Microsoft365DSC's MSFT_SCRoleGroup strips everything up to the last `/`."""
    return str(role).rsplit("/", 1)[-1].strip()


def role_names(group: dict[str, Any]) -> list[str]:
    return [role_name(r) for r in group.get("Roles") or []]


def group_id(group: dict[str, Any]) -> str:
    """The identity to address a role group by: its unique id. `-Identity <Name>` can fail with "...matches
    multiple entries" for built-in groups (a public Purview role report switched to ExchangeObjectId for it)."""
    return str(group.get("ExchangeObjectId") or group.get("Guid") or group.get("Identity") or group["Name"])


def _member_keys(obj: dict[str, Any]) -> set[str]:
    keys = ("Identity", "Name", "PrimarySmtpAddress", "WindowsLiveID", "ExternalDirectoryObjectId")
    return {str(obj.get(k) or "").lower() for k in keys} - {""}


async def plan(ctx: StepContext) -> StepPlan:
    cfg = ctx.config.connector
    out = StepPlan()
    connector = find_connector(cfg.source)
    out.notices.append(NO_CATCHALL)
    if ctx.config.catchall is not None:
        out.findings.append(
            finding(
                NAME,
                ctx.config.catchall.upn,
                Severity.INFO,
                "the [catchall] table is ignored by the purview-connector procedure (no catch-all account is created)",
                "remove [catchall] from the config, or clean up an old one with `m365archive legacy cleanup`",
            )
        )
    if cfg.import_scope == "litigation-hold-only":
        if not connector.litigation_hold_filter:
            raise StepError(
                f'connector.import_scope = "litigation-hold-only" is offered only by Bloomberg connectors, '
                f"not {connector.name}"
            )
        if ctx.config.users.scope == "none" or not ctx.config.users.hold or ctx.config.hold.kind != "litigation":
            raise StepError(
                'connector.import_scope = "litigation-hold-only" imports only users on Litigation Hold: set '
                '[users] scope (not "none"), [users] hold = true and [hold] kind = "litigation"'
            )
    await _service_principal(ctx, out, connector)
    await _role_group(ctx, out)
    await _auditing(ctx, out)
    if ctx.config.users.scope == "none":
        out.findings.append(
            finding(
                NAME,
                "users",
                Severity.WARNING,
                "no users in scope, so no mailbox is checked for archive and hold",
                '[users] scope = "all" (or "groups" / "file") to prepare the mailboxes the connector imports into',
            )
        )
    return out


async def _service_principal(ctx: StepContext, out: StepPlan, connector: PurviewConnector) -> None:
    app_id = ctx.config.connector.partner_app_id
    if connector.partner_app and not app_id:
        raise StepError(
            f"{connector.name} is a partner connector: set connector.partner_app_id to the app id the partner gives"
        )
    if not app_id:
        out.checks.append(
            Check("partner-app", f"{connector.name} is run by Microsoft: no partner app needed", False, True)
        )
        return
    sp = await ctx.session.graph.service_principal_by_app_id(app_id)
    ctx.observe("connector.service_principal", sp.get("id") if sp else None)
    out.extend(service_principal_plan(connector, app_id, sp, ctx.config.mailbox_wait_timeout))


def service_principal_plan(
    connector: PurviewConnector, app_id: str, sp: Mapping[str, Any] | None, timeout: float
) -> StepPlan:
    """The partner app's service principal as read (None: not there yet) and the change that provisions it."""
    out = StepPlan()
    before = f"present ({sp.get('displayName') or sp.get('id')})" if sp else None
    out.changes.append(
        change(
            step=NAME,
            key="service-principal",
            target=app_id,
            setting="partner app service principal",
            before="present" if sp else None,
            after="present",
            operation=graph_operation(
                "POST",
                "/servicePrincipals",
                {"appId": app_id},
                powershell=command("New-MgServicePrincipal", {"AppId": app_id}),
                ok_if_error=["already in use", "already exists"],
            ),
            side=GRAPH,
            wait=Wait(
                WaitKind.SERVICE_PRINCIPAL,
                app_id,
                timeout,
                f"waiting for the service principal of {app_id} to replicate",
            ),
            warnings=[f"gives {connector.provider}'s app ({app_id}) an identity in this tenant"],
            rollback=rollback.service_principal_removal(app_id),
            rollback_note=f"removes {connector.provider}'s app from the tenant, with every permission granted to it",
        )
    )
    if sp is not None:
        out.checks.append(Check("partner-app", f"service principal {before} for {app_id}", False, True))
    return out


async def _role_group(ctx: StepContext, out: StepPlan) -> None:
    cfg = ctx.config.connector
    member = cfg.role_group_member or ("" if ctx.session.app_only else ctx.operator)
    if not member:
        out.findings.append(
            finding(
                NAME,
                "Data Connector Admin",
                Severity.WARNING,
                "signed in as an application, so there is no operator to check for Data Connector Admin",
                'name the admin who will create the connector: connector.role_group_member = "name@domain"',
            )
        )
        return
    user = await ctx.session.graph.get_user(member, ["id", "userPrincipalName"])
    if user is None:
        out.checks.append(
            Check(
                "role-group-member",
                f"connector.role_group_member {member!r} is not a user in this tenant",
                True,
                False,
                "correct connector.role_group_member, or create the user first",
            )
        )
        return
    out.extend(role_group_plan(cfg, await _read_role_groups(ctx, member, user)))


@dataclass(frozen=True)
class RoleGroups:
    """What was read about the admin who creates the connector: every role group, and the names of those
    carrying Data Connector Admin that the admin is a member of."""

    member: str
    groups: tuple[Mapping[str, Any], ...]
    holding: tuple[str, ...] = ()

    @property
    def carrying(self) -> list[Mapping[str, Any]]:
        return [g for g in self.groups if DATA_CONNECTOR_ADMIN_ROLE in role_names(dict(g))]


async def _read_role_groups(ctx: StepContext, member: str, user: Mapping[str, Any]) -> RoleGroups:
    keys = {member.lower(), str(user.get("id", "")).lower(), str(user.get("userPrincipalName", "")).lower()}
    groups = await ctx.session.compliance.invoke(Cmdlet("Get-RoleGroup"))
    if groups.error is not None:
        raise groups.error
    read = RoleGroups(member, tuple(groups.objects))
    holding: list[str] = []
    for group in read.carrying:
        members = await ctx.session.compliance.invoke(
            Cmdlet("Get-RoleGroupMember", {"Identity": group_id(dict(group))})
        )
        if members.error is not None:
            raise members.error
        if any(keys & _member_keys(m) for m in members.objects):
            holding.append(str(group["Name"]))
    carrying = sorted(str(g["Name"]) for g in read.carrying)
    ctx.observe("connector.role_groups", {"carrying": carrying, "holding": holding})
    return replace(read, holding=tuple(holding))


def role_group_plan(cfg: ConnectorConfig, read: RoleGroups) -> StepPlan:
    """Data Connector Admin: held already, or the configured role group added (or advised)."""
    out = StepPlan()
    member = read.member
    if read.holding:
        via = ", ".join(sorted(read.holding))
        out.checks.append(
            Check("data-connector-admin", f"Data Connector Admin: {member} holds it through {via}", False, True)
        )
        out.changes.append(
            change(step=NAME, key="role-group", target=member, setting="Data Connector Admin",
                   before=f"via {via}", after=f"via {via}", operation=None, side=SCC)
        )  # fmt: skip
        return out
    wanted = cfg.role_group
    norm = connector_slug(wanted).replace("-", "")
    target = next((g for g in read.groups if connector_slug(str(g.get("Name", ""))).replace("-", "") == norm), None)
    if target is None or DATA_CONNECTOR_ADMIN_ROLE not in role_names(dict(target)):
        names = ", ".join(sorted(str(g["Name"]) for g in read.carrying)) or "none"
        raise StepError(
            f"connector.role_group {wanted!r} "
            + ("does not exist" if target is None else f"does not carry {DATA_CONNECTOR_ADMIN_ROLE}")
            + f" (role groups that do: {names})"
        )
    if cfg.add_role_group_member:
        _add_member(out, member, dict(target))
    else:
        _advise_member(
            out, member, Cmdlet("Add-RoleGroupMember", {"Identity": group_id(dict(target)), "Member": member})
        )
    return out


def _add_member(out: StepPlan, member: str, target: dict[str, Any]) -> None:
    cmd = Cmdlet("Add-RoleGroupMember", {"Identity": group_id(target), "Member": member})
    out.checks.append(
        Check("data-connector-admin", f"Data Connector Admin: {member} will be added to {target['Name']}", False, True)
    )
    out.changes.append(
        change(
            step=NAME,
            key="role-group",
            target=member,
            setting="Data Connector Admin",
            before=None,
            after=f"via {target['Name']}",
            operation=cmdlet_operation(OperationKind.COMPLIANCE, cmd, ["already a member"]),
            side=SCC,
            warnings=[f"{target['Name']} carries more than Data Connector Admin: {', '.join(role_names(target))}"],
            rollback=command("Remove-RoleGroupMember", {"Identity": group_id(target), "Member": member}),
            rollback_note=f"{member} loses every role {target['Name']} carries",
        )
    )


def _advise_member(out: StepPlan, member: str, cmd: Cmdlet) -> None:
    out.checks.append(
        Check(
            "data-connector-admin",
            f"Data Connector Admin: {member} holds no role group that carries it",
            False,
            False,
            f"{cmd.powershell()}, or connector.add_role_group_member = true",
        )
    )
    out.findings.append(
        finding(
            NAME,
            member,
            Severity.HIGH,
            f"{member} can't create the connector: no role group they hold carries {DATA_CONNECTOR_ADMIN_ROLE}",
            f"{cmd.powershell()} (in Security & Compliance PowerShell), or set connector.add_role_group_member = "
            "true so setup does it",
            category="data-connector-admin",
        )
    )


async def _auditing(ctx: StepContext, out: StepPlan) -> None:
    audit = await ctx.session.exchange.invoke(Cmdlet("Get-AdminAuditLogConfig"))
    if audit.error is not None:
        raise audit.error
    unified = bool(audit.objects and audit.objects[0].get("UnifiedAuditLogIngestionEnabled"))
    org = await ctx.session.exchange.invoke(Cmdlet("Get-OrganizationConfig"))
    if org.error is not None:
        raise org.error
    audit_disabled = bool(org.objects and org.objects[0].get("AuditDisabled"))
    ctx.observe("connector.audit", {"unified": unified, "org_audit_disabled": audit_disabled})
    out.extend(auditing_plan(unified, audit_disabled, ctx.config.audit.enabled))


def auditing_plan(unified: bool, audit_disabled: bool, audit_enabled: bool) -> StepPlan:
    """The unified audit log (checked, never set: its cmdlet is outside the spec) and mailbox auditing."""
    out = StepPlan()
    out.checks.append(
        Check(
            "audit-log",
            "unified audit log ingestion is " + ("on" if unified else "OFF"),
            False,
            unified,
            "" if unified else "Set-AdminAuditLogConfig -UnifiedAuditLogIngestionEnabled $true",
        )
    )
    if not unified:
        # Set-AdminAuditLogConfig is not in the cmdlet spec this tool is bound to, so it is never sent.
        out.findings.append(
            finding(
                NAME,
                "organization",
                Severity.HIGH,
                "unified audit log ingestion is off: the connector's admin logs won't be recorded",
                f"in Exchange Online PowerShell: {UNIFIED_AUDIT_COMMAND} (m365archive does not send this cmdlet)",
                category="audit",
            )
        )
    want_disabled = not audit_enabled
    cmd = Cmdlet("Set-OrganizationConfig", {"AuditDisabled": want_disabled})
    out.changes.append(
        change(
            step=NAME,
            key="org-audit",
            target="organization",
            setting="AuditDisabled",
            before=audit_disabled,
            after=want_disabled,
            operation=cmdlet_operation(OperationKind.EXCHANGE, cmd),
            side=EXO,
            rollback=command("Set-OrganizationConfig", {"AuditDisabled": audit_disabled}),
            rollback_note="restores the organization's previous mailbox-auditing switch",
        )
    )
    return out


async def handoff(ctx: StepContext) -> StepPlan:
    """The portal instructions: the last step of the plan (no API creates a data connector)."""
    from m365archive.tenant.clouds import get_cloud

    cfg = ctx.config.connector
    connector = find_connector(cfg.source)
    cloud = get_cloud(ctx.tenant.get("cloud") or ctx.config.tenant.cloud)
    member = cfg.role_group_member or ctx.operator or "an admin who holds Data Connector Admin"
    tenant = f"{ctx.tenant.get('domain') or ctx.config.tenant.id} ({ctx.tenant.get('id') or ctx.config.tenant.id})"
    steps = [
        f"Create the connector by hand: no public API or cmdlet creates Microsoft Purview data connectors. "
        f"Sign in to {cloud.purview_portal} as {member} in tenant {tenant}.",
        "Go to Settings > Data connectors > My connectors, choose Add a connector, and pick "
        f'"{connector.name}" ({connector.provider}); accept the terms of service.',
    ]
    if cfg.partner_app_id:
        steps.append(
            f"{connector.provider}'s app {cfg.partner_app_id} already has a service principal in this tenant "
            "(this plan provisions it); enter the values the partner gave you for their side of the connector."
        )
    if cfg.mapping_file:
        kind = next((k for k in connector.mapping if k != "email"), "email")
        what = {"bloomberg-uuid": "Bloomberg UUID", "phone": "phone number (E.164)", "email": "email address"}[kind]
        source = {"bloomberg-uuid": "bloomberg", "phone": "whatsapp", "email": "email"}[kind]
        steps.append(
            f"User mapping: choose the mapping file option and upload {cfg.mapping_file} ({what} -> mailbox address). "
            f"Check it first with `m365archive mapping check {cfg.mapping_file} --source {source}`: rows that don't "
            "map are not imported."
        )
    else:
        steps.append(
            "User mapping: keep automatic mapping (by the email address on each item). Items whose user can't be "
            "mapped are not imported."
        )
    if connector.litigation_hold_filter:
        choice = "Only users on Litigation hold" if cfg.import_scope == "litigation-hold-only" else "All users"
        steps.append(f'Users to import: choose "{choice}".')
    steps.append(
        "Review and finish. Then check the connector's status in Data connectors and its admin events in Audit "
        "(this plan keeps auditing on)."
    )
    return StepPlan(instructions=steps)
