"""Step 2a: the catch-all user in Entra ID: exists, has a usage location, a Plan 2 licence,
and the Exchange Administrator role (Microsoft Graph)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from m365archive.config import CatchallConfig
from m365archive.engine.checks import Check
from m365archive.engine.plan import Action, Operation, Severity, Wait, WaitKind, ref, secret
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


@dataclass(frozen=True)
class AccountState:
    """What the step reads: the tenant's verified domains (lower-cased, sorted), the catch-all user (None:
    not there yet), the tenant's SKUs, and whether the user holds Exchange Administrator tenant-wide."""

    verified_domains: tuple[str, ...]
    user: Mapping[str, Any] | None
    skus: tuple[Mapping[str, Any], ...]
    has_role: bool = False


async def read(ctx: StepContext, upn: str) -> AccountState:
    graph = ctx.session.graph
    verified = tuple(sorted({d.lower() for d in await graph.verified_domains()}))
    ctx.observe("tenant.verified_domains", list(verified))
    ctx.progress(f"reading user {upn}")
    user = await graph.get_user(upn, USER_FIELDS)
    skus = await graph.subscribed_skus()
    ctx.observe("catchall.user", {k: (user or {}).get(k) for k in USER_FIELDS} if user else None)
    has_role = False
    if user is not None:
        has_role = bool(await graph.role_assignments(principal_id=user["id"], role_definition_id=EXCHANGE_ADMIN_ROLE))
    ctx.observe("catchall.exchange_admin", has_role)
    return AccountState(verified, user, tuple(skus), has_role)


async def plan(ctx: StepContext) -> Planned[CatchallUser]:
    cfg = ctx.config.catchall
    assert cfg is not None
    state = await read(ctx, cfg.upn)
    account = Account(cfg, state, ctx.config.mailbox_wait_timeout)
    ctx.observe("catchall.license", account.licence_observed())
    return account.plan()


@dataclass
class Account:
    """The catch-all account planned from what was read: a short loop over SETTINGS."""

    cfg: CatchallConfig
    state: AccountState
    mailbox_wait_timeout: float
    out: StepPlan = field(default_factory=StepPlan)

    @property
    def upn(self) -> str:
        return self.cfg.upn

    @property
    def user(self) -> Mapping[str, Any] | None:
        return self.state.user

    @property
    def create_id(self) -> str:
        return f"{NAME}/create-user/{self.upn}"

    @property
    def user_id(self) -> str:
        """The user's id, or the reference to the id its creation returns."""
        return str(self.user["id"]) if self.user else ref(self.create_id, "id")

    @property
    def ps_id(self) -> Any:
        """The id, or the lookup that yields it after apply (a PowerShell expression)."""
        return ps_user_id(self.upn, str(self.user["id"]) if self.user else None)

    def plan2_held(self) -> list[Mapping[str, Any]]:
        held = {lic.get("skuId") for lic in (self.user or {}).get("assignedLicenses") or []}
        return [s for s in self.state.skus if s.get("skuId") in held and sku_grants(dict(s), "plan2")]

    def licence_observed(self) -> Any:
        held = self.plan2_held()
        if held:
            return sorted(str(s["skuId"]) for s in held)
        sku, _ = pick_sku([dict(s) for s in self.state.skus], self.cfg.license)
        return {"wanted": self.cfg.license, "sku": sku.get("skuId") if sku else None}

    def change(
        self, key: str, setting: str, before: Any, after: Any, operation: Operation | None, **extra: Any
    ) -> None:
        self.out.changes.append(
            change(
                step=NAME,
                key=key,
                target=self.upn,
                setting=setting,
                before=before,
                after=after,
                operation=operation,
                side=GRAPH,
                **extra,
            )
        )

    def plan(self) -> Planned[CatchallUser]:
        self.out.checks.append(domain_check(self.upn, self.state.verified_domains))
        for setting in SETTINGS:
            setting(self)
        licence_id = f"{NAME}/license/{self.upn}"
        mailbox_after = tuple(c.id for c in self.out.changes if c.id == licence_id and c.operation is not None)
        return Planned(self.out, CatchallUser(exists=self.user is not None, mailbox_after=mailbox_after))


def domain_check(upn: str, verified: tuple[str, ...]) -> Check:
    """Entra ID refuses a UPN outside the tenant's verified domains: say so before any write."""
    domain = upn.rsplit("@", 1)[-1].lower()
    ok = domain in verified
    return Check(
        "catchall-domain",
        f"{domain} is " + ("a verified domain of the tenant" if ok else "not a verified domain of the tenant"),
        True,
        ok,
        ""
        if ok
        else f"use a catch-all UPN in a verified domain ({', '.join(verified) or 'none'}) or verify "
        f"{domain} in the Microsoft 365 admin center first",
    )


def _user(a: Account) -> None:
    """1. The user itself: created (with a generated password), or its usage location kept as configured."""
    cfg, upn = a.cfg, a.upn
    if a.user is None:
        a.change(
            "create-user",
            "user account",
            None,
            {"userPrincipalName": upn, "displayName": cfg.display_name, "accountEnabled": True,
             "usageLocation": cfg.usage_location},
            _create_user(cfg),
            sensitive=True,
            outputs={"id": "id"},
            warnings=["The password is generated on this machine and kept in its keyring; it is never printed."],
            rollback=command("Remove-MgUser", {"UserId": a.ps_id}),
            rollback_note=rollback.USER_DELETE,
        )  # fmt: skip
        return
    if a.user.get("onPremisesSyncEnabled"):
        a.out.findings.append(
            finding(
                NAME,
                upn,
                Severity.WARNING,
                "the catch-all account is synchronized from on-premises Active Directory",
                "its attributes are mastered on-premises; use a cloud-only account",
            )
        )
    current = a.user.get("usageLocation")
    if current == cfg.usage_location:
        a.change("usage-location", "usageLocation", current, cfg.usage_location, None)
        return
    a.change(
        "usage-location",
        "usageLocation",
        current,
        cfg.usage_location,
        graph_operation(
            "PATCH",
            f"/users/{a.user['id']}",
            {"usageLocation": cfg.usage_location},
            powershell=command("Update-MgUser", {"UserId": a.ps_id, "UsageLocation": cfg.usage_location}),
        ),
        rollback=command("Update-MgUser", {"UserId": a.ps_id, "UsageLocation": current}) if current else None,
        rollback_note="restores the previous usage location"
        if current
        else "none needed: a licensed user must keep a usage location",
    )


def _create_user(cfg: CatchallConfig) -> Operation:
    nickname = cfg.upn.split("@")[0]
    body = {
        "accountEnabled": True,
        "displayName": cfg.display_name,
        "mailNickname": nickname,
        "userPrincipalName": cfg.upn,
        "usageLocation": cfg.usage_location,
        "passwordProfile": {"forceChangePasswordNextSignIn": False, "password": secret(SECRET_NAME)},
    }
    powershell = command(
        "New-MgUser",
        {
            "AccountEnabled": True,
            "DisplayName": cfg.display_name,
            "MailNickname": nickname,
            "UserPrincipalName": cfg.upn,
            "UsageLocation": cfg.usage_location,
            "PasswordProfile": {"ForceChangePasswordNextSignIn": False, "Password": variable("password")},
        },
    )
    return graph_operation(
        "POST",
        "/users",
        body,
        powershell=powershell,
        ok_if_error=["already exists"],
        on_conflict_get=f"/users/{cfg.upn}",
    )


def _licence(a: Account) -> None:
    """2. A licence with Exchange Online Plan 2: held, or assigned from a SKU with a free seat."""
    upn = a.upn
    held = a.plan2_held()
    if held:
        names = ", ".join(str(s["skuPartNumber"]) for s in held)
        a.out.checks.append(Check("licence", f"{upn} holds {names} (Exchange Online Plan 2)", True, True))
        a.change("license", "licence", names, names, None)
        return
    sku, why = pick_sku([dict(s) for s in a.state.skus], a.cfg.license)
    a.out.checks.append(
        Check(
            "licence-seats",
            f"catch-all licence: {why}",
            True,
            sku is not None,
            "free a seat or buy one in a licence with Exchange Online Plan 2, or name another in catchall.license",
        )
    )
    if sku is None:
        return
    deps = [a.create_id] if a.user is None else []
    if a.user is not None and a.user.get("usageLocation") != a.cfg.usage_location:
        deps.append(f"{NAME}/usage-location/{upn}")
    add = {"addLicenses": [{"skuId": sku["skuId"], "disabledPlans": []}], "removeLicenses": []}
    a.change(
        "license",
        "licence",
        "(none with Exchange Online Plan 2)",
        sku["skuPartNumber"],
        graph_operation(
            "POST",
            f"/users/{a.user_id}/assignLicense",
            add,
            powershell=command(
                "Set-MgUserLicense",
                {
                    "UserId": a.ps_id,
                    "AddLicenses": [{"SkuId": sku["skuId"], "DisabledPlans": []}],
                    "RemoveLicenses": [],
                },
            ),
        ),
        depends_on=deps,
        action=Action.UPDATE if a.user else Action.CREATE,
        wait=Wait(
            WaitKind.EXCHANGE_MAILBOX,
            upn,
            a.mailbox_wait_timeout,
            f"waiting for Exchange Online to provision the mailbox of {upn}",
        ),
        rollback=command("Set-MgUserLicense", {"UserId": a.ps_id, "AddLicenses": [], "RemoveLicenses": [sku["skuId"]]}),
        rollback_note=rollback.LICENCE_REMOVE,
        warnings=[f"uses one seat of {sku['skuPartNumber']}"],
    )


def _role(a: Account) -> None:
    """3. The Exchange Administrator role (the documented procedure asks for it)."""
    if not a.cfg.exchange_admin_role:  # false: the role is left as it is (never removed here)
        return
    assignment = {"principalId": a.user_id, "roleDefinitionId": EXCHANGE_ADMIN_ROLE, "directoryScopeId": "/"}
    a.change(
        "role",
        "directory role",
        "Exchange Administrator" if a.state.has_role else None,
        "Exchange Administrator",
        graph_operation(
            "POST",
            "/roleManagement/directory/roleAssignments",
            assignment,
            powershell=command(
                "New-MgRoleManagementDirectoryRoleAssignment",
                {"PrincipalId": a.ps_id, "RoleDefinitionId": EXCHANGE_ADMIN_ROLE, "DirectoryScopeId": "/"},
            ),
            ok_if_error=["conflicting object"],
        ),
        depends_on=[a.create_id] if a.user is None else [],
        warnings=[
            "The catch-all account holds the Exchange Administrator role, and the documented procedure "
            "hands its password to the partner: an administrator credential leaves the organization."
        ],
        rollback=rollback.role_assignment_removal(a.upn, str(a.user["id"]) if a.user else None, EXCHANGE_ADMIN_ROLE),
        rollback_note=rollback.EXCHANGE_ADMIN_REMOVE,
    )


SETTINGS: tuple[Callable[[Account], None], ...] = (_user, _licence, _role)
