"""Step 2a: the catch-all user in Entra ID: exists, has a usage location, a Plan 2 licence,
and the Exchange Administrator role (Microsoft Graph)."""

from __future__ import annotations

from typing import Any

from m365archive.engine.checks import Check
from m365archive.engine.plan import Action, Severity, Wait, WaitKind, ref, secret
from m365archive.licences import PLAN2_NAMES, sku_grants
from m365archive.powershell import command, variable
from m365archive.powershell import user_id as ps_user_id
from m365archive.steps import rollback
from m365archive.steps.base import GRAPH, StepContext, StepPlan, change, finding, graph_operation
from m365archive.steps.seams import CatchallUser, Planned
from m365archive.wellknown import EXCHANGE_ADMINISTRATOR_ROLE as EXCHANGE_ADMIN_ROLE

NAME = "catchall_account"

SECRET_NAME = "catchall-password"
USER_FIELDS = [
    "id",
    "userPrincipalName",
    "displayName",
    "usageLocation",
    "accountEnabled",
    "assignedLicenses",
    "onPremisesSyncEnabled",
]


def pick_sku(skus: list[dict[str, Any]], wanted: str) -> tuple[dict[str, Any] | None, str]:
    """The SKU to assign and why: a named one, or any carrying Exchange Online Plan 2 (commercial or
    Government, m365archive.licences) with a free seat."""

    def free(sku: dict[str, Any]) -> int:
        return int((sku.get("prepaidUnits") or {}).get("enabled", 0)) - int(sku.get("consumedUnits", 0))

    def has_plan2(sku: dict[str, Any]) -> bool:
        return sku_grants(sku, "plan2")

    if wanted.lower() != "any":
        named = [
            s
            for s in skus
            if wanted.lower() in (str(s.get("skuPartNumber", "")).lower(), str(s.get("skuId", "")).lower())
        ]
        if not named:
            have = ", ".join(sorted(str(s.get("skuPartNumber")) for s in skus)) or "none"
            return None, f"the tenant has no licence {wanted!r} (it has: {have})"
        sku = named[0]
        if not has_plan2(sku):
            return (
                None,
                f"{sku['skuPartNumber']} does not include {PLAN2_NAMES}",
            )
        if free(sku) <= 0:
            return (
                None,
                f"no free seat in {sku['skuPartNumber']} ({sku.get('consumedUnits')} of "
                f"{(sku.get('prepaidUnits') or {}).get('enabled')} used)",
            )
        return sku, f"{sku['skuPartNumber']}: {free(sku)} free seat(s)"
    candidates = [s for s in skus if has_plan2(s)]
    if not candidates:
        return None, f"no licence in the tenant includes {PLAN2_NAMES}"
    with_seats = sorted((s for s in candidates if free(s) > 0), key=lambda s: -free(s))
    if not with_seats:
        names = ", ".join(
            f"{s['skuPartNumber']} ({s.get('consumedUnits')}/{(s.get('prepaidUnits') or {}).get('enabled')} used)"
            for s in candidates
        )
        return None, f"no free seat in any licence with Exchange Online Plan 2: {names}"
    sku = with_seats[0]
    return sku, f"{sku['skuPartNumber']}: {free(sku)} free seat(s)"


async def _check_domain(ctx: StepContext, out: StepPlan, upn: str) -> None:
    """Entra ID refuses a UPN outside the tenant's verified domains: say so before any write."""
    domain = upn.rsplit("@", 1)[-1].lower()
    verified = sorted({d.lower() for d in await ctx.session.graph.verified_domains()})
    ctx.observe("tenant.verified_domains", verified)
    ok = domain in verified
    out.checks.append(
        Check(
            "catchall-domain",
            f"{domain} is " + ("a verified domain of the tenant" if ok else "not a verified domain of the tenant"),
            True,
            ok,
            ""
            if ok
            else f"use a catch-all UPN in a verified domain ({', '.join(verified) or 'none'}) or verify "
            f"{domain} in the Microsoft 365 admin center first",
        )
    )


async def plan(ctx: StepContext) -> Planned[CatchallUser]:
    cfg = ctx.config.catchall
    assert cfg is not None
    out = StepPlan()
    graph = ctx.session.graph
    upn = cfg.upn
    await _check_domain(ctx, out, upn)
    ctx.progress(f"reading user {upn}")
    user = await graph.get_user(upn, USER_FIELDS)
    skus = await graph.subscribed_skus()
    ctx.observe("catchall.user", {k: (user or {}).get(k) for k in USER_FIELDS} if user else None)

    create_id = f"{NAME}/create-user/{upn}"
    mailbox_after: tuple[str, ...] = ()
    user_id = user["id"] if user else ref(create_id, "id")
    ps_id = ps_user_id(upn, user["id"] if user else None)  # the id, or the lookup that yields it after apply

    # 1. The user itself.
    desired_user = {
        "userPrincipalName": upn,
        "displayName": cfg.display_name,
        "accountEnabled": True,
        "usageLocation": cfg.usage_location,
    }
    if user is None:
        body = {
            "accountEnabled": True,
            "displayName": cfg.display_name,
            "mailNickname": upn.split("@")[0],
            "userPrincipalName": upn,
            "usageLocation": cfg.usage_location,
            "passwordProfile": {"forceChangePasswordNextSignIn": False, "password": secret(SECRET_NAME)},
        }
        out.changes.append(
            change(
                NAME,
                "create-user",
                upn,
                "user account",
                None,
                desired_user,
                graph_operation(
                    "POST",
                    "/users",
                    body,
                    powershell=command(
                        "New-MgUser",
                        {
                            "AccountEnabled": True,
                            "DisplayName": cfg.display_name,
                            "MailNickname": upn.split("@")[0],
                            "UserPrincipalName": upn,
                            "UsageLocation": cfg.usage_location,
                            "PasswordProfile": {
                                "ForceChangePasswordNextSignIn": False,
                                "Password": variable("password"),
                            },
                        },
                    ),
                    ok_if_error=["already exists"],
                    on_conflict_get=f"/users/{upn}",
                ),
                side=GRAPH,
                sensitive=True,
                outputs={"id": "id"},
                warnings=["The password is generated on this machine and kept in its keyring; it is never printed."],
                rollback=command("Remove-MgUser", {"UserId": ps_id}),
                rollback_note=rollback.USER_DELETE,
            )
        )
    else:
        if user.get("onPremisesSyncEnabled"):
            out.findings.append(
                finding(
                    NAME,
                    upn,
                    Severity.WARNING,
                    "the catch-all account is synchronized from on-premises Active Directory",
                    "its attributes are mastered on-premises; use a cloud-only account",
                )
            )
        current_location = user.get("usageLocation")
        if current_location != cfg.usage_location:
            out.changes.append(
                change(
                    NAME,
                    "usage-location",
                    upn,
                    "usageLocation",
                    current_location,
                    cfg.usage_location,
                    graph_operation(
                        "PATCH",
                        f"/users/{user['id']}",
                        {"usageLocation": cfg.usage_location},
                        powershell=command("Update-MgUser", {"UserId": ps_id, "UsageLocation": cfg.usage_location}),
                    ),
                    side=GRAPH,
                    rollback=command("Update-MgUser", {"UserId": ps_id, "UsageLocation": current_location})
                    if current_location
                    else None,
                    rollback_note="restores the previous usage location"
                    if current_location
                    else "none needed: a licensed user must keep a usage location",
                )
            )
        else:
            out.changes.append(
                change(
                    NAME,
                    "usage-location",
                    upn,
                    "usageLocation",
                    current_location,
                    cfg.usage_location,
                    None,
                    side=GRAPH,
                )
            )

    # 2. A licence with Exchange Online Plan 2.
    held = {lic.get("skuId") for lic in (user or {}).get("assignedLicenses") or []}
    plan2_held = [s for s in skus if s.get("skuId") in held and sku_grants(s, "plan2")]
    license_id = f"{NAME}/license/{upn}"
    if plan2_held:
        names = ", ".join(str(s["skuPartNumber"]) for s in plan2_held)
        out.checks.append(Check("licence", f"{upn} holds {names} (Exchange Online Plan 2)", True, True))
        out.changes.append(change(NAME, "license", upn, "licence", names, names, None, side=GRAPH))
        ctx.observe("catchall.license", sorted(str(s["skuId"]) for s in plan2_held))
    else:
        sku, why = pick_sku(skus, cfg.license)
        ctx.observe("catchall.license", {"wanted": cfg.license, "sku": sku.get("skuId") if sku else None})
        out.checks.append(
            Check(
                "licence-seats",
                f"catch-all licence: {why}",
                True,
                sku is not None,
                "free a seat or buy one in a licence with Exchange Online Plan 2, or name another in catchall.license",
            )
        )
    if not plan2_held and sku is not None:
        deps = [create_id] if user is None else []
        if user is not None and user.get("usageLocation") != cfg.usage_location:
            deps.append(f"{NAME}/usage-location/{upn}")
        out.changes.append(
            change(
                NAME,
                "license",
                upn,
                "licence",
                "(none with Exchange Online Plan 2)",
                sku["skuPartNumber"],
                graph_operation(
                    "POST",
                    f"/users/{user_id}/assignLicense",
                    {"addLicenses": [{"skuId": sku["skuId"], "disabledPlans": []}], "removeLicenses": []},
                    powershell=command(
                        "Set-MgUserLicense",
                        {
                            "UserId": ps_id,
                            "AddLicenses": [{"SkuId": sku["skuId"], "DisabledPlans": []}],
                            "RemoveLicenses": [],
                        },
                    ),
                ),
                side=GRAPH,
                depends_on=deps,
                action=Action.UPDATE if user else Action.CREATE,
                wait=Wait(
                    WaitKind.EXCHANGE_MAILBOX,
                    upn,
                    ctx.config.mailbox_wait_timeout,
                    f"waiting for Exchange Online to provision the mailbox of {upn}",
                ),
                rollback=command(
                    "Set-MgUserLicense", {"UserId": ps_id, "AddLicenses": [], "RemoveLicenses": [sku["skuId"]]}
                ),
                rollback_note=rollback.LICENCE_REMOVE,
                warnings=[f"uses one seat of {sku['skuPartNumber']}"],
            )
        )
        mailbox_after = (license_id,)

    # 3. The Exchange Administrator role (the documented procedure asks for it).
    has_role = False
    if user is not None:
        assignments = await graph.role_assignments(principal_id=user["id"], role_definition_id=EXCHANGE_ADMIN_ROLE)
        has_role = bool(assignments)
    ctx.observe("catchall.exchange_admin", has_role)
    if not cfg.exchange_admin_role:  # false: the role is left as it is (never removed here)
        return Planned(out, CatchallUser(exists=user is not None, mailbox_after=mailbox_after))
    role_before = "Exchange Administrator" if has_role else None
    out.changes.append(
        change(
            NAME,
            "role",
            upn,
            "directory role",
            role_before,
            "Exchange Administrator",
            graph_operation(
                "POST",
                "/roleManagement/directory/roleAssignments",
                {"principalId": user_id, "roleDefinitionId": EXCHANGE_ADMIN_ROLE, "directoryScopeId": "/"},
                powershell=command(
                    "New-MgRoleManagementDirectoryRoleAssignment",
                    {"PrincipalId": ps_id, "RoleDefinitionId": EXCHANGE_ADMIN_ROLE, "DirectoryScopeId": "/"},
                ),
                ok_if_error=["conflicting object"],
            ),
            side=GRAPH,
            depends_on=[create_id] if user is None else [],
            warnings=[
                "The catch-all account holds the Exchange Administrator role, and the documented procedure "
                "hands its password to the partner: an administrator credential leaves the organization."
            ],
            rollback=rollback.role_assignment_removal(upn, user["id"] if user else None, EXCHANGE_ADMIN_ROLE),
            rollback_note=rollback.EXCHANGE_ADMIN_REMOVE,
        )
    )
    return Planned(out, CatchallUser(exists=user is not None, mailbox_after=mailbox_after))
