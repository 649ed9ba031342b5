"""What the retired EWS partner route left behind: find it, remove its access, keep its data.

Leftovers: the third-party data connector app's service principal (with its grants), and a
catch-all account in the Exchange Administrator role whose password a partner knows (and this
machine's keyring may still hold). `plan` removes access (deletes the service principal, takes
the role away, blocks sign-in or rotates the password, deletes the keyring entry) and leaves the
mailbox, its archive and its Litigation Hold untouched, saying so. `leftover_findings` is the
read-only mode that `status` of a partner-ews tenant includes.

Catch-all accounts are found from the config (`[catchall] upn`, `connector.legacy_catchall`),
from `--account`, or by discovery: Exchange Administrators whose mailbox is hidden from address
lists and on hold. Discovered candidates are listed; only confirmed accounts are acted on.

Inputs (steps/seams.py): the command's CleanupRequest (confirmed UPNs from flags, rotate or block, UPNs
an earlier run rotated) and LocalSecrets (does this machine's keyring hold an account's password);
`leftover_findings` also takes ConsentReported from the consent step, so the connector is reported once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from m365archive.engine.plan import Action, Operation, OperationKind, Severity, secret, setting_text
from m365archive.powershell import command, variable
from m365archive.steps.base import GRAPH, LOCAL, StepContext, StepPlan, change, finding, graph_operation
from m365archive.steps.connector_consent import ConsentState, consent_state, revoke_change
from m365archive.steps.seams import CleanupRequest, ConsentReported, LocalSecrets
from m365archive.tenant.exchange import Cmdlet, has_archive
from m365archive.tenant.graph_types import GraphError, GraphRequest
from m365archive.wellknown import CONNECTOR_APP_ID, ENTRA_ROLE_TEMPLATES
from m365archive.wellknown import EXCHANGE_ADMINISTRATOR_ROLE as EXCHANGE_ADMIN_ROLE

NAME = "legacy_cleanup"
FINDINGS = "legacy_leftovers"

USER_FIELDS = ["id", "userPrincipalName", "displayName", "accountEnabled", "assignedLicenses"]
ROLE_NAMES = {
    EXCHANGE_ADMIN_ROLE: "Exchange Administrator",
    ENTRA_ROLE_TEMPLATES["Global Administrator"]: "Global Administrator",
}
SECRET_PREFIX = "legacy-password/"
CLEANUP = "m365archive legacy cleanup"


@dataclass
class Account:
    upn: str
    user: dict[str, Any]
    roles: list[dict[str, Any]] = field(default_factory=list)  # Exchange Administrator assignments
    mailbox: dict[str, Any] | None = None
    full_access: list[str] = field(default_factory=list)
    eligible: list[dict[str, Any]] | None = None  # PIM eligibilities; None: couldn't be read (see eligible_note)
    eligible_note: str = ""

    @property
    def tenant_wide_role(self) -> bool:
        return any(a.get("directoryScopeId", "/") == "/" for a in self.roles)

    @property
    def looks_like_catchall(self) -> bool:
        m = self.mailbox or {}
        hidden_on_hold = bool(m.get("HiddenFromAddressListsEnabled")) and bool(m.get("LitigationHoldEnabled"))
        return bool(self.roles) and hidden_on_hold


@dataclass
class Leftovers:
    sp: dict[str, Any] | None
    grants: list[dict[str, Any]]
    app_roles: list[dict[str, Any]]
    accounts: dict[str, Account]  # lower UPN -> account (confirmed and discovered)
    confirmed: list[str]  # lower UPNs
    candidates: list[str]  # lower UPNs discovered and not confirmed
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)  # the grants' resources, to name them
    impersonation: list[dict[str, Any]] | None = None  # ApplicationImpersonation assignments; None: see note
    impersonation_note: str = ""


def confirmed_accounts(ctx: StepContext, request: CleanupRequest) -> list[str]:
    names: list[str] = []
    if ctx.config.catchall is not None:
        names.append(ctx.config.catchall.upn)
    names += ctx.config.connector.legacy_catchall
    names += list(request.accounts)
    out: list[str] = []
    for name in names:
        if name.lower() not in out:
            out.append(name.lower())
    return out


async def _account(ctx: StepContext, key: str, user: dict[str, Any] | None = None) -> Account | None:
    graph = ctx.session.graph
    user = user or await graph.get_user(key, USER_FIELDS)
    if user is None:
        return None
    upn = str(user.get("userPrincipalName") or key)
    acct = Account(upn=upn, user=user)
    acct.roles = await graph.role_assignments(principal_id=str(user["id"]), role_definition_id=EXCHANGE_ADMIN_ROLE)
    outcome = await ctx.session.exchange.invoke(Cmdlet("Get-Mailbox", {"Identity": upn}))
    if outcome.error is not None and not outcome.error.not_found:
        raise outcome.error
    acct.mailbox = outcome.objects[0] if outcome.ok and outcome.objects else None
    return acct


async def _full_access(ctx: StepContext, acct: Account) -> None:
    if acct.mailbox is None:
        return
    perms = await ctx.session.exchange.invoke(Cmdlet("Get-MailboxPermission", {"Identity": acct.upn}))
    if perms.error is not None:
        raise perms.error
    for perm in perms.objects:
        rights = perm.get("AccessRights") or []
        rights = rights if isinstance(rights, list) else [rights]
        user = str(perm.get("User", ""))
        if "FullAccess" in rights and not perm.get("Deny") and not perm.get("IsInherited") and "\\SELF" not in user:
            acct.full_access.append(user)


async def read_leftovers(ctx: StepContext, request: CleanupRequest) -> Leftovers:
    graph = ctx.session.graph
    ctx.progress("reading the connector app's service principal")
    consent = await consent_state(ctx.session)
    sp, grants, app_roles = consent.service_principal, consent.oauth2_permission_grants, consent.app_role_assignments
    confirmed = confirmed_accounts(ctx, request)
    accounts: dict[str, Account] = {}
    ctx.progress("reading Exchange Administrators")
    holders = await graph.role_assignments(role_definition_id=EXCHANGE_ADMIN_ROLE)
    for principal in sorted({str(a.get("principalId")) for a in holders}):
        user = await graph.get_user(principal, USER_FIELDS)  # None for service principals and groups
        if user is None:
            continue
        acct = await _account(ctx, principal, user)
        if acct is not None:
            accounts[acct.upn.lower()] = acct
    for upn in confirmed:
        if upn not in accounts:
            acct = await _account(ctx, upn)
            if acct is not None:
                accounts[upn] = acct
    candidates = sorted(k for k, a in accounts.items() if a.looks_like_catchall and k not in confirmed)
    for key in confirmed:
        if key in accounts:
            await _full_access(ctx, accounts[key])
            await _eligible(ctx, accounts[key])
    impersonation, impersonation_note = await _impersonation(ctx) if confirmed else (None, "")
    ctx.observe(
        "legacy.service_principal",
        None
        if sp is None
        else {
            "id": sp.get("id"),
            "grants": sorted(str(g.get("id")) for g in grants),
            "app_roles": sorted(str(a.get("id")) for a in app_roles),
        },
    )
    ctx.observe(
        "legacy.accounts",
        {
            k: {
                "id": a.user.get("id"),
                "enabled": a.user.get("accountEnabled"),
                "roles": sorted(str(r.get("id")) for r in a.roles),
                "mailbox": None
                if a.mailbox is None
                else {
                    key: a.mailbox.get(key)
                    for key in (
                        "HiddenFromAddressListsEnabled",
                        "ArchiveGuid",
                        "AutoExpandingArchiveEnabled",
                        "LitigationHoldEnabled",
                        "LitigationHoldDuration",
                    )
                },
                "full_access": sorted(a.full_access),
            }
            for k, a in sorted(accounts.items())
            if k in confirmed or k in candidates
        },
    )
    return Leftovers(
        sp, grants, app_roles, accounts, confirmed, candidates, consent.resources, impersonation, impersonation_note
    )


async def _eligible(ctx: StepContext, acct: Account) -> None:
    """PIM-eligible role assignments: an account whose active role is removed may still activate one."""
    try:
        acct.eligible = await ctx.session.graph.eligible_role_instances(str(acct.user["id"]))
    except GraphError as exc:
        acct.eligible, acct.eligible_note = None, f"can't tell ({exc.status} {exc.code}: no PIM, or not permitted)"


async def _impersonation(ctx: StepContext) -> tuple[list[dict[str, Any]] | None, str]:
    """ApplicationImpersonation assignments, where the tenant still has the role (Exchange Online removed it in
    February 2025: then the role itself is not found)."""
    outcome = await ctx.session.exchange.invoke(
        Cmdlet("Get-ManagementRoleAssignment", {"Role": "ApplicationImpersonation", "GetEffectiveUsers": True})
    )
    if outcome.error is not None:
        if outcome.error.not_found:
            return None, "the tenant no longer has the role (removed from Exchange Online in February 2025)"
        return None, f"can't tell ({outcome.error})"
    return list(outcome.objects), ""


def _impersonates(assignment: dict[str, Any], acct: Account) -> bool:
    names = {acct.upn.lower(), str(acct.user.get("displayName") or "").lower()}
    return any(
        str(assignment.get(key) or "").lower() in names
        for key in ("RoleAssignee", "RoleAssigneeName", "EffectiveUserName", "User")
    )


async def plan(ctx: StepContext, request: CleanupRequest, local: LocalSecrets) -> StepPlan:
    lo = await read_leftovers(ctx, request)
    tenant_wide = any(lo.accounts[k].tenant_wide_role for k in lo.confirmed if k in lo.accounts)
    role_id = await _directory_role_id(ctx) if tenant_wide else None
    return plan_cleanup(lo, Cleanup(ctx.config.tenant.id, ctx.config.mailbox_wait_timeout, request, local, role_id))


@dataclass(frozen=True)
class Cleanup:
    """What planning the cleanup takes besides what was read: the tenant (for the local keyring entry), how
    long to wait for the service principal to go, the operator's request, this machine's keyring, and the
    Exchange Administrator directoryRole's object id (read when a confirmed account holds the role)."""

    tenant_id: str
    timeout: float
    request: CleanupRequest
    local: LocalSecrets
    role_id: str | None = None


def plan_cleanup(lo: Leftovers, how: Cleanup) -> StepPlan:
    """The removals planned from what was read: the service principal, then each confirmed account."""
    out = StepPlan()
    _plan_service_principal(out, lo, how.timeout)
    for key in lo.confirmed:
        acct = lo.accounts.get(key)
        if acct is None:
            out.findings.append(
                finding(NAME, key, Severity.INFO, "no such user in the tenant: nothing to clean up", category="absent")
            )
            continue
        for part in ACCOUNT_PARTS:
            part(out, acct, how)
        _report_other_access(out, acct, lo)
    for key in lo.candidates:
        acct = lo.accounts[key]
        out.findings.append(
            finding(
                NAME,
                acct.upn,
                Severity.WARNING,
                "looks like the retired route's catch-all account (Exchange Administrator, mailbox hidden from "
                "address lists and on Litigation Hold); not touched until confirmed",
                f"{CLEANUP} --account {acct.upn} (or list it in connector.legacy_catchall)",
                category="candidate",
            )
        )
    if not lo.confirmed and not lo.candidates:
        out.coverage.append("no catch-all account named in the config or found among Exchange Administrators")
    pending = [c for c in out.changes if c.action is not Action.NOOP]
    out.coverage.insert(
        0,
        f"legacy cleanup: {len(pending)} removal(s) planned; "
        f"{sum(1 for f in out.findings if f.category == 'kept')} object(s) kept; "
        f"{sum(1 for f in out.findings if f.category == 'review')} grant(s) to review",
    )
    return out


def _report_other_access(out: StepPlan, acct: Account, lo: Leftovers) -> None:
    """Access this plan doesn't remove, said out loud: PIM eligibilities and ApplicationImpersonation; and what
    was checked, so "nothing found" is told apart from "not read"."""
    upn = acct.upn
    for e in acct.eligible or []:
        role = ROLE_NAMES.get(str(e.get("roleDefinitionId")), f"role {e.get('roleDefinitionId')}")
        out.findings.append(
            finding(
                NAME,
                upn,
                Severity.HIGH,
                f"eligible (Privileged Identity Management) for {role}: the account can activate it again after "
                "its active role is removed",
                f"remove the eligible assignment in Microsoft Entra PIM (Roles > {role} > Eligible assignments)",
                category="review",
            )
        )
    mine = [a for a in lo.impersonation or [] if _impersonates(a, acct)]
    for a in mine:
        out.findings.append(
            finding(
                NAME,
                upn,
                Severity.HIGH,
                f"holds ApplicationImpersonation (assignment {a.get('Name')}): it can act as any mailbox through EWS",
                command("Remove-ManagementRoleAssignment", {"Identity": str(a.get("Name"))}),
                category="review",
            )
        )
    eligible = acct.eligible_note or f"{len(acct.eligible or [])} found"
    impersonation = lo.impersonation_note or f"{len(mine)} found"
    out.coverage.append(
        f"checked for {upn}: active Exchange Administrator assignments ({len(acct.roles)} found); PIM-eligible role "
        f"assignments ({eligible}); ApplicationImpersonation assignments ({impersonation}); FullAccess grants "
        f"({len(acct.full_access)} found); sign-in, sessions and this machine's keyring (in the changes)"
    )


def _plan_service_principal(out: StepPlan, lo: Leftovers, timeout: float) -> None:
    sp = lo.sp
    if sp:
        state = ConsentState(True, sp, lo.grants, lo.app_roles, lo.resources)
        out.changes.append(revoke_change(state, step=NAME, timeout=timeout))
        out.findings.append(
            finding(
                NAME,
                CONNECTOR_APP_ID,
                Severity.INFO,
                "kept: the items the connector imported stay in their mailboxes; only the app's access is removed",
                category="kept",
            )
        )
        return
    out.changes.append(
        change(
            step=NAME,
            key="service-principal",
            target=CONNECTOR_APP_ID,
            setting="connector app service principal (and its grants)",
            before=None,
            after=None,
            operation=None,
            side=GRAPH,
            action=Action.NOOP,
            category="consent",
        )
    )


async def _directory_role_id(ctx: StepContext) -> str:
    """The Exchange Administrator directoryRole's object id (the member $ref lives under it)."""
    reply = await ctx.session.graph.send(
        GraphRequest("GET", f"/directoryRoles(roleTemplateId='{EXCHANGE_ADMIN_ROLE}')")
    )
    return str((reply.body or {})["id"])


def _role(out: StepPlan, acct: Account, how: Cleanup) -> None:
    """1. The Exchange Administrator role: the tenant-wide assignment removed, scoped ones for review."""
    uid = str(acct.user["id"])
    held = acct.tenant_wide_role
    op = None
    if held and how.role_id:
        # The documented form (microsoft-graph-docs-contrib directoryrole-delete-member.md), not `$ref?$id=`.
        op = graph_operation(
            "DELETE",
            f"/directoryRoles/{how.role_id}/members/{uid}/$ref",
            powershell=command(
                "Remove-MgDirectoryRoleMemberByRef", {"DirectoryRoleId": how.role_id, "DirectoryObjectId": uid}
            ),
            ok_if_error=["does not exist"],
        )
    assignment = {"PrincipalId": uid, "RoleDefinitionId": EXCHANGE_ADMIN_ROLE, "DirectoryScopeId": "/"}
    out.changes.append(
        change(
            step=NAME,
            key="role",
            target=acct.upn,
            setting="Exchange Administrator role",
            before="Exchange Administrator" if held else None,
            after=None,
            operation=op,
            side=GRAPH,
            action=Action.DELETE if held else Action.NOOP,
            category="catchall",
            rollback=command("New-MgRoleManagementDirectoryRoleAssignment", assignment) if held else None,
            rollback_note="gives the account the Exchange Administrator role back" if held else "",
        )
    )
    for a in acct.roles:
        if a.get("directoryScopeId", "/") == "/":
            continue
        out.findings.append(
            finding(
                NAME,
                acct.upn,
                Severity.HIGH,
                f"holds Exchange Administrator scoped to {a.get('directoryScopeId')} (assignment {a.get('id')})",
                "remove it in the Entra admin center: Roles and administrators > Exchange Administrator "
                f"(assignment {a.get('id')})",
                category="review",
            )
        )


def _access(out: StepPlan, acct: Account, how: Cleanup) -> None:
    """2. Sign-in blocked, or the password the partner knows rotated."""
    upn, uid = acct.upn, str(acct.user["id"])
    if not how.request.rotate:
        out.changes.append(
            change(
                step=NAME,
                key="sign-in",
                target=upn,
                setting="accountEnabled",
                before=bool(acct.user.get("accountEnabled", True)),
                after=False,
                operation=graph_operation(
                    "PATCH",
                    f"/users/{uid}",
                    {"accountEnabled": False},
                    powershell=command("Update-MgUser", {"UserId": uid, "AccountEnabled": False}),
                ),
                side=GRAPH,
                category="catchall",
                rollback=command("Update-MgUser", {"UserId": uid, "AccountEnabled": True}),
                rollback_note="the account can sign in again with the password the partner knows",
            )
        )
        _revoke_sessions(out, acct)
        return
    rotated = how.request.was_rotated(upn)
    body = {"passwordProfile": {"forceChangePasswordNextSignIn": False, "password": secret(SECRET_PREFIX + upn)}}
    profile = {"ForceChangePasswordNextSignIn": False, "Password": variable("password")}
    out.changes.append(
        change(
            step=NAME,
            key="password",
            target=upn,
            setting="password",
            before="rotated by an earlier run" if rotated else "known to the partner",
            after="rotated by an earlier run" if rotated else "rotated (random, not kept anywhere)",
            operation=graph_operation(
                "PATCH",
                f"/users/{uid}",
                body,
                powershell=command("Update-MgUser", {"UserId": uid, "PasswordProfile": profile}),
            ),
            side=GRAPH,
            sensitive=True,
            category="catchall",
            warnings=["The new password is random and kept nowhere: nobody can sign in as this account."],
            rollback_note="can't be undone: the old password is not kept",
        )
    )
    _revoke_sessions(out, acct)


def _revoke_sessions(out: StepPlan, acct: Account) -> None:
    """2b. Sessions and refresh tokens issued with the password the partner knows stay valid after sign-in is
    blocked or the password rotated, until revoked (user-revokesigninsessions): revoke them right after."""
    signin = out.changes[-1]
    if signin.action is Action.NOOP:
        return
    uid = str(acct.user["id"])
    out.changes.append(
        change(
            step=NAME,
            key="revoke-sessions",
            target=acct.upn,
            setting="sign-in sessions and refresh tokens",
            before="valid (issued with the password the partner knows)",
            after="revoked",
            operation=graph_operation(
                "POST",
                f"/users/{uid}/revokeSignInSessions",
                powershell=command("Revoke-MgUserSignInSession", {"UserId": uid}),
            ),
            side=GRAPH,
            category="catchall",
            depends_on=[signin.id],
            rollback_note="can't be undone, and nothing is lost: whoever may still sign in signs in again",
        )
    )


def _keyring(out: StepPlan, acct: Account, how: Cleanup) -> None:
    """3. The password this machine kept for the partner: a local change, sent only after every change to the
    account succeeded (while the tenant still trusts the old password, this copy is the way back in)."""
    upn = acct.upn
    account_changes = [c.id for c in out.changes if c.target == upn and c.step == NAME and c.action is not Action.NOOP]
    held = how.local.held(upn)
    if held is None:
        out.findings.append(
            finding(
                NAME,
                upn,
                Severity.INFO,
                "no keyring on this machine, so no stored password to delete here",
                "delete the catch-all password wherever else it was kept (password files, vaults, the partner)",
                category="local",
            )
        )
    out.changes.append(
        change(
            step=NAME,
            key="keyring",
            target=upn,
            setting="password kept in this machine's keyring",
            before="present" if held else None,
            after=None,
            operation=local_operation("delete-keyring-secret", {"tenant": how.tenant_id, "account": upn})
            if held
            else None,
            side=LOCAL,
            action=Action.DELETE if held else Action.NOOP,
            category="catchall",
            depends_on=account_changes if held else [],
        )
    )


def local_operation(what: str, request: dict[str, Any]) -> Operation:
    """A change on this machine, never sent to the tenant: the apply executor runs kind "local" itself."""
    return Operation(
        kind=OperationKind.LOCAL,
        request={"action": what, **request},
        display=f"{what} {request.get('account', '')} (on this machine)",
    )


def _kept(out: StepPlan, acct: Account, how: Cleanup) -> None:
    """4. What stays: the data, and who can read it."""
    upn = acct.upn
    mbx = acct.mailbox
    if mbx is None:
        out.findings.append(
            finding(NAME, upn, Severity.INFO, "kept: no mailbox found for this account", category="kept")
        )
        return
    hidden = "hidden from address lists" if mbx.get("HiddenFromAddressListsEnabled") else "visible in address lists"
    out.findings.append(
        finding(
            NAME,
            upn,
            Severity.INFO,
            f"kept: mailbox ({mbx.get('RecipientTypeDetails', 'UserMailbox')}, {hidden}) and its licence; the "
            "imported third-party data stays",
            category="kept",
        )
    )
    archive = setting_text(has_archive(mbx))  # ArchiveGuid, not ArchiveStatus (can read None)
    aea = ", auto-expanding" if mbx.get("AutoExpandingArchiveEnabled") else ""
    out.findings.append(
        finding(NAME, upn, Severity.INFO, f"kept: archive ({archive}{aea}), untouched", category="kept")
    )
    on_hold = bool(mbx.get("LitigationHoldEnabled"))
    hold = f"on, {mbx.get('LitigationHoldDuration') or 'Unlimited'}" if on_hold else "off"
    out.findings.append(
        finding(NAME, upn, Severity.INFO, f"kept: Litigation Hold ({hold}), untouched", category="kept")
    )
    for user in acct.full_access:
        out.findings.append(
            finding(
                NAME,
                upn,
                Severity.WARNING,
                f"kept for review: {user} has FullAccess to the catch-all mailbox",
                f"if {user} no longer reviews this data: "
                + command(
                    "Remove-MailboxPermission",
                    {"Identity": upn, "User": user, "AccessRights": ["FullAccess"], "InheritanceType": "All"},
                ),
                category="review",
            )
        )


ACCOUNT_PARTS: tuple[Callable[[StepPlan, Account, Cleanup], None], ...] = (_role, _access, _keyring, _kept)


async def leftover_findings(ctx: StepContext, consent: ConsentReported, local: LocalSecrets) -> StepPlan:
    """Read-only: the retired route's leftovers as findings with severity (for `status`)."""
    return leftover_plan(await read_leftovers(ctx, CleanupRequest()), consent, local)


def leftover_plan(lo: Leftovers, consent: ConsentReported, local: LocalSecrets) -> StepPlan:
    out = StepPlan()
    # partner-ews's connector_consent step already reports the service principal; say it once.
    if lo.sp is not None and not consent.reported:
        out.findings.append(
            finding(
                FINDINGS,
                CONNECTOR_APP_ID,
                Severity.HIGH,
                "the retired route's connector app still has a service principal in the tenant: "
                + ConsentState(True, lo.sp, lo.grants, lo.app_roles, lo.resources).summary(),
                f"{CLEANUP} deletes it (the imported data stays)",
                category="legacy-service-principal",
            )
        )
    for key in lo.confirmed:
        acct = lo.accounts.get(key)
        if acct is None:
            continue
        enabled = bool(acct.user.get("accountEnabled", True))
        if acct.roles and enabled:
            sev, what = Severity.CRITICAL, "holds Exchange Administrator and can sign in"
        elif acct.roles:
            sev, what = Severity.HIGH, "holds Exchange Administrator (sign-in blocked)"
        elif enabled:
            sev, what = Severity.WARNING, "can still sign in"
        else:
            continue
        out.findings.append(
            finding(
                FINDINGS,
                acct.upn,
                sev,
                f"the catch-all account, whose password the retired route handed to a partner, {what}",
                f"{CLEANUP} removes the role and blocks sign-in (mailbox, archive and hold are kept)",
                category="legacy-catchall",
            )
        )
        if local.held(acct.upn):
            out.findings.append(
                finding(
                    FINDINGS,
                    acct.upn,
                    Severity.INFO,
                    "this machine's keyring still holds the catch-all account's password",
                    f"{CLEANUP} deletes it",
                    category="legacy-keyring",
                )
            )
    for key in lo.candidates:
        acct = lo.accounts[key]
        out.findings.append(
            finding(
                FINDINGS,
                acct.upn,
                Severity.WARNING,
                "looks like a catch-all account of the retired route (Exchange Administrator, hidden mailbox on "
                "Litigation Hold)",
                f"{CLEANUP} --account {acct.upn}",
                category="legacy-candidate",
            )
        )
    return out
