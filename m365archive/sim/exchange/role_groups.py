"""Role group cmdlets (both sides)."""

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

if TYPE_CHECKING:
    from m365archive.sim.exchange.service import ExchangeService


# -- role groups (both sides) -----------------------------------------------------------------------------


def _role_group(svc: ExchangeService, identity: Any) -> RoleGroup:
    key = str(identity).lower().replace(" ", "")
    for group in svc.state.role_groups.values():
        if key in (group.name.lower().replace(" ", ""), group.guid.lower()):
            return group
    raise svc.not_found(identity)


def _role_group_object(group: RoleGroup) -> dict[str, Any]:
    return {
        "Identity": group.name,
        "Name": group.name,
        "Guid": group.guid,
        "Roles": list(group.roles),
        "Members": list(group.members),
        "RoleGroupType": "Standard",
    }


def get_role_group(svc: ExchangeService, ctx: Context) -> Result:
    if ctx.params.get("Identity"):
        return Result(objects=[_role_group_object(_role_group(svc, ctx.params["Identity"]))])
    return Result(objects=[_role_group_object(g) for g in svc.state.role_groups.values()])


def get_role_group_member(svc: ExchangeService, ctx: Context) -> Result:
    group = _role_group(svc, ctx.params["Identity"])
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
    group = _role_group(svc, ctx.params["Identity"])
    member = str(ctx.params["Member"])
    user = svc.state.find_user(member)
    if user is None:
        raise svc.not_found(member)
    upn = user.user_principal_name
    if any(m.lower() == upn.lower() for m in group.members):
        raise CmdletError(MEMBER_EXISTS, f'The recipient "{upn}" is already a member of the group "{group.name}".')
    group.members.append(upn)
    return Result()
