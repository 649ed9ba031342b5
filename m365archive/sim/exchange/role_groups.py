"""Role group cmdlets (both sides).

Get-RoleGroup's Roles are path-qualified identities (`FFO.extest.microsoft.com/Microsoft Exchange Hosted
Organizations/<tenant>/<role>`): Microsoft365DSC's MSFT_SCRoleGroup strips everything up to the last `/`
before comparing (knob `role_identities_qualified`). A built-in group addressed by name in
Get-RoleGroupMember can answer "...matches multiple entries", by Name or by its Identity (a public Purview
role report switched to ExchangeObjectId for it; knob `role_group_name_ambiguous`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from m365archive.sim.exchange.core import (
    MEMBER_EXISTS,
    CmdletError,
    Context,
    Result,
)
from m365archive.sim.state import (
    RoleGroup,
)

# Built-in Purview role groups (the scenario's defaults): the ones whose names can be ambiguous.
BUILT_IN_ROLE_GROUPS = frozenset(
    {
        "OrganizationManagement",
        "ComplianceAdministrator",
        "ComplianceDataAdministrator",
        "eDiscoveryManager",
        "RecordsManagement",
    }
)
# The class a public script quotes for "...matches multiple entries": a not-found exception.
AMBIGUOUS = "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException"

if TYPE_CHECKING:
    from m365archive.sim.exchange.service import ExchangeService


# -- role groups (both sides) -----------------------------------------------------------------------------


ORGANIZATION_ROOT = "FFO.extest.microsoft.com/Microsoft Exchange Hosted Organizations"


def _qualified(svc: ExchangeService, *parts: str) -> str:
    return "/".join((ORGANIZATION_ROOT, svc.state.domain, *parts))


def get_management_role_assignment(svc: ExchangeService, ctx: Context) -> Result:
    """Get-ManagementRoleAssignment -Role ApplicationImpersonation [-RoleAssignee X] [-GetEffectiveUsers]: the
    role's direct assignments (knob application_impersonation_assignees). Exchange Online removed the role in
    February 2025: then the role is not found (the answer's text is unverified). Other roles: none (unverified)."""
    role = str(ctx.params.get("Role") or "")
    assignees = svc.state.knobs.application_impersonation_assignees
    if role.lower() != "applicationimpersonation":
        return Result([])
    if assignees is None:
        raise svc.not_found(role)
    wanted = str(ctx.params.get("RoleAssignee") or "").lower()
    objects = []
    for upn in assignees:
        user = svc.state.user_by_upn(upn)
        name = user.display_name if user else upn
        if wanted and wanted not in (upn.lower(), name.lower()):
            continue
        assignment = f"ApplicationImpersonation-{upn.split('@')[0]}"
        obj: dict[str, Any] = {
            "Name": assignment,
            "Identity": assignment,
            "Role": "ApplicationImpersonation",
            "RoleAssignee": upn,
            "RoleAssigneeName": name,
            "RoleAssigneeType": "User",
            "AssignmentMethod": "Direct",
            "Enabled": True,
        }
        if ctx.params.get("GetEffectiveUsers") is True:
            obj["EffectiveUserName"] = name
        objects.append(obj)
    return Result(objects)


def _role_group(svc: ExchangeService, identity: Any, *, by_member_cmdlet: bool = False) -> RoleGroup:
    key = str(identity).lower().replace(" ", "")
    for group in svc.state.role_groups.values():
        qualified = _qualified(svc, "Configuration", group.name).lower().replace(" ", "")
        if key == group.guid.lower():
            return group
        if key in (group.name.lower().replace(" ", ""), qualified):
            if by_member_cmdlet and svc.state.knobs.role_group_name_ambiguous and group.name in BUILT_IN_ROLE_GROUPS:
                raise CmdletError(
                    AMBIGUOUS,
                    "The operation couldn't be performed because object: "
                    f"'{_qualified(svc, 'Configuration', group.name)}' matches multiple entries.",
                )
            return group
    raise svc.not_found(identity)


def _role_group_object(svc: ExchangeService, group: RoleGroup) -> dict[str, Any]:
    qualified = svc.state.knobs.role_identities_qualified
    return {
        "Identity": _qualified(svc, "Configuration", group.name) if qualified else group.name,
        "Name": group.name,
        "Guid": group.guid,
        "ExchangeObjectId": group.guid,
        "Roles": [_qualified(svc, role) if qualified else role for role in group.roles],
        "Members": list(group.members),
        "RoleGroupType": "Standard",
    }


def get_role_group(svc: ExchangeService, ctx: Context) -> Result:
    if ctx.params.get("Identity"):
        return Result(objects=[_role_group_object(svc, _role_group(svc, ctx.params["Identity"]))])
    return Result(objects=[_role_group_object(svc, g) for g in svc.state.role_groups.values()])


def get_role_group_member(svc: ExchangeService, ctx: Context) -> Result:
    group = _role_group(svc, ctx.params["Identity"], by_member_cmdlet=True)
    out = []
    for member in group.members:
        user = svc.state.find_user(member)
        out.append(
            {
                "Identity": member,
                "Name": user.mail_nickname if user else member,
                "DisplayName": user.display_name if user else member,
                "PrimarySmtpAddress": member,
                "WindowsLiveID": member,
                "ExternalDirectoryObjectId": user.id if user else "",
                "RecipientType": "UserMailbox" if user and user.id in svc.state.mailboxes else "User",
            }
        )
    return Result(objects=out)


def add_role_group_member(svc: ExchangeService, ctx: Context) -> Result:
    group = _role_group(svc, ctx.params["Identity"], by_member_cmdlet=True)
    member = str(ctx.params["Member"])
    user = svc.state.find_user(member)
    if user is None:
        raise svc.not_found(member)
    upn = user.user_principal_name
    if any(m.lower() == upn.lower() for m in group.members):
        raise CmdletError(MEMBER_EXISTS, f'The recipient "{upn}" is already a member of the group "{group.name}".')
    group.members.append(upn)
    return Result()
