"""Mailbox permission cmdlets: Add-, Get-, Remove-MailboxPermission."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from m365archive.sim.exchange.core import (
    Context,
    Result,
)
from m365archive.sim.state import (
    Mailbox,
    MailboxPermission,
)

if TYPE_CHECKING:
    from m365archive.sim.exchange.service import ExchangeService


def _permission_object(svc: ExchangeService, mbx: Mailbox, perm: MailboxPermission) -> dict[str, Any]:
    return {
        "Identity": mbx.alias,
        "User": perm.user,
        "AccessRights": list(perm.access_rights),
        "IsInherited": perm.is_inherited,
        "Deny": perm.deny,
        "InheritanceType": "All",
    }


def _self_permission(mbx: Mailbox) -> dict[str, Any]:
    return {
        "Identity": mbx.alias,
        "User": "NT AUTHORITY\\SELF",
        "AccessRights": ["FullAccess", "ReadPermission"],
        "IsInherited": False,
        "Deny": False,
        "InheritanceType": "All",
    }


def _trustee(svc: ExchangeService, value: Any) -> str:
    """A trustee must be a known user (by UPN or id), as Exchange resolves -User."""
    text = str(value)
    user = svc.state.find_user(text)
    if user is None:
        raise svc.not_found(text)
    return user.user_principal_name


def add_mailbox_permission(svc: ExchangeService, ctx: Context) -> Result:
    p = ctx.params
    mbx = svc.mailbox(p["Identity"])
    trustee = _trustee(svc, p["User"])
    rights = [str(r) for r in p["AccessRights"]]
    deny = p.get("Deny") is True
    for perm in svc.state.permissions:
        if perm.mailbox_guid == mbx.guid and perm.user.lower() == trustee.lower() and perm.deny == deny:
            missing = [r for r in rights if r not in perm.access_rights]
            if not missing:
                return Result(
                    objects=[_permission_object(svc, mbx, perm)],
                    warnings=[
                        f'The appropriate access control entry is already present on the object "{mbx.alias}" '
                        f'for account "{trustee}".'
                    ],
                )
            perm.access_rights.extend(missing)
            return Result(objects=[_permission_object(svc, mbx, perm)])
    perm = MailboxPermission(
        mailbox_guid=mbx.guid,
        user=trustee,
        access_rights=rights,
        deny=deny,
        automapping=p.get("AutoMapping", True) is not False,
    )
    svc.state.permissions.append(perm)
    return Result(objects=[_permission_object(svc, mbx, perm)])


def get_mailbox_permission(svc: ExchangeService, ctx: Context) -> Result:
    p = ctx.params
    mbx = svc.mailbox(p["Identity"])
    objects = [_self_permission(mbx)]
    objects += [_permission_object(svc, mbx, perm) for perm in svc.state.permissions if perm.mailbox_guid == mbx.guid]
    if p.get("User"):
        wanted = str(p["User"]).lower()
        user = svc.state.find_user(str(p["User"]))
        names = {wanted, user.user_principal_name.lower()} if user else {wanted}
        objects = [o for o in objects if str(o["User"]).lower() in names]
    return Result(objects=objects)


def remove_mailbox_permission(svc: ExchangeService, ctx: Context) -> Result:
    p = ctx.params
    mbx = svc.mailbox(p["Identity"])
    if p.get("ClearAutoMapping") is True:
        for perm in svc.state.permissions:
            if perm.mailbox_guid == mbx.guid:
                perm.automapping = False
        return Result()
    trustee_text = str(p.get("User") or "")
    user = svc.state.find_user(trustee_text)
    trustee = user.user_principal_name if user else trustee_text
    rights = [str(r) for r in (p.get("AccessRights") or [])]
    deny = p.get("Deny") is True
    for perm in list(svc.state.permissions):
        if perm.mailbox_guid == mbx.guid and perm.user.lower() == trustee.lower() and perm.deny == deny:
            perm.access_rights = [r for r in perm.access_rights if r not in rights]
            if not perm.access_rights:
                svc.state.permissions.remove(perm)
            return Result()
    return Result(
        warnings=[
            f'Can\'t remove the access control entry on the object "{trustee}" for the user account because '
            "the ACE doesn't exist on the object."
        ]
    )
