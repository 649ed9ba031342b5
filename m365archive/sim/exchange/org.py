"""Organization and audit configuration, users and recipients."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from m365archive.sim import cmdlets
from m365archive.sim.exchange.core import (
    Context,
    Result,
    _page,
)
from m365archive.sim.exchange.filters import compile_filter
from m365archive.sim.exchange.mailboxes import _mailbox_query
from m365archive.sim.state import (
    Mailbox,
    User,
)

if TYPE_CHECKING:
    from m365archive.sim.exchange.service import ExchangeService


def get_organization_config(svc: ExchangeService, ctx: Context) -> Result:
    org = svc.state.org_config
    return Result(objects=[{"Identity": org.get("Name", svc.state.domain), "Guid": svc.state.tenant_id, **org}])


def set_organization_config(svc: ExchangeService, ctx: Context) -> Result:
    p = {k: v for k, v in ctx.params.items() if k not in ("Confirm", "Force", *cmdlets.COMMON_PARAMETERS)}
    if p.pop("AutoExpandingArchive", None) is True:
        svc.state.org_config["AutoExpandingArchiveEnabled"] = True  # one-way (exchange-facts.json org_aea)
    p.pop("Identity", None)
    svc.state.org_config.update(p)
    return Result()


def get_admin_audit_log_config(svc: ExchangeService, ctx: Context) -> Result:
    return Result(
        objects=[
            {
                "Identity": "Admin Audit Log Settings",
                "Name": "Admin Audit Log Settings",
                **svc.state.admin_audit_log_config,
            }
        ]
    )


def _user_object(svc: ExchangeService, user: User) -> dict[str, Any]:
    mbx = svc.state.mailboxes.get(user.id)
    has_mailbox = mbx is not None and mbx.visible_at <= svc.state.clock.elapsed()
    return {
        "Identity": user.mail_nickname or user.user_principal_name,
        "Name": user.mail_nickname or user.user_principal_name,
        "Guid": user.id,
        "ExternalDirectoryObjectId": user.id,
        "UserPrincipalName": user.user_principal_name,
        "DisplayName": user.display_name,
        "WindowsEmailAddress": user.mail or "",
        "RecipientType": "UserMailbox" if has_mailbox else "User",
        "RecipientTypeDetails": mbx.recipient_type_details if has_mailbox and mbx else "User",
        "IsDirSynced": bool(user.on_premises_sync_enabled),
        "AccountDisabled": not user.account_enabled,
        "UsageLocation": user.usage_location or "",
    }


def get_user(svc: ExchangeService, ctx: Context) -> Result:
    p = ctx.params
    if p.get("Identity") not in (None, ""):
        ident = str(p["Identity"])
        user = svc.state.find_user(ident) or next(
            (u for u in svc.state.users.values() if u.mail_nickname.lower() == ident.lower()), None
        )
        if user is None:
            raise svc.not_found(ident)
        return Result(objects=[_user_object(svc, user)])
    types = {t.lower() for t in (p.get("RecipientTypeDetails") or [])}
    predicate = (
        compile_filter(str(p["Filter"]), _user_object(svc, User(id="", user_principal_name="", display_name="")))
        if p.get("Filter")
        else None
    )

    def keep(u: User) -> bool:
        if not types and predicate is None:
            return True
        obj = _user_object(svc, u)
        return (not types or obj["RecipientTypeDetails"].lower() in types) and (predicate is None or predicate(obj))

    return _page(ctx, list(svc.state.users.values()), keep, lambda u: _user_object(svc, u))


def get_recipient(svc: ExchangeService, ctx: Context) -> Result:
    def render(m: Mailbox) -> dict[str, Any]:
        obj = svc.mailbox_object(m)
        keys = (
            "Identity",
            "Name",
            "Guid",
            "ExternalDirectoryObjectId",
            "Alias",
            "DisplayName",
            "PrimarySmtpAddress",
            "EmailAddresses",
            "RecipientType",
            "RecipientTypeDetails",
            "HiddenFromAddressListsEnabled",
            "ArchiveStatus",
            "ArchiveGuid",
            "IsDirSynced",
        )
        return {k: obj[k] for k in keys}

    return _mailbox_query(svc, ctx, render)


def get_mailbox_audit_bypass(svc: ExchangeService, ctx: Context) -> Result:
    def render(m: Mailbox) -> dict[str, Any]:
        return {"Identity": m.alias, "Name": m.alias, "AuditBypassEnabled": False}

    if ctx.params.get("Identity") not in (None, ""):
        return Result(objects=[render(svc.mailbox(ctx.params["Identity"]))])
    now = svc.state.clock.elapsed()
    return _page(ctx, list(svc.state.mailboxes.values()), lambda m: m.visible_at <= now, render)
