"""What each command needs, per step: one table, pure data and lookups (no I/O).

The README's "Permissions each command needs" section is rendered from this table (a test fails when
they differ), the delegated Graph scopes the CLI asks for follow it, and preflight and the report can
read it. Each permission is a tuple of alternatives: any one of them is enough; every entry of a row
is needed.

Sources (Microsoft Learn, each API's "Permissions" section, checked against the Graph permissions
reference):
- POST /users, PATCH /users/{id}: User.ReadWrite.All (user-post-users, user-update).
- passwordProfile: "In delegated access, the calling app must be assigned the Directory.AccessAsUser.All
  delegated permission"; the least privileged is User-PasswordProfile.ReadWrite.All; resetting the
  password of a user who holds an admin role needs Privileged Authentication Administrator
  (user-update "passwordProfile" row; user-changepassword).
- accountEnabled: User.EnableDisableAccount.All (least privileged) or User.ReadWrite.All (user-update).
- POST /users/{id}/revokeSignInSessions: User.RevokeSessions.All (least privileged) or User.ReadWrite.All
  (user-revokesigninsessions).
- assignLicense: LicenseAssignment.ReadWrite.All (user-assignlicense); subscribedSkus:
  LicenseAssignment.Read.All least privileged, Organization.Read.All higher (subscribedsku-list).
- POST /roleManagement/directory/roleAssignments and directoryRole members: RoleManagement.ReadWrite.Directory,
  Privileged Role Administrator (rbacapplication-post-roleassignments, directoryrole-post-members).
- servicePrincipals: create/delete Application.ReadWrite.All (serviceprincipal-post-serviceprincipals,
  serviceprincipal-delete; the application permission Application.ReadWrite.OwnedBy covers only apps the
  caller owns, not the partner's app).
- Exchange Online and Security & Compliance through the admin API: app-only needs the Office 365
  Exchange Online application permission Exchange.ManageAsApp plus an Entra role (Exchange
  Administrator; Compliance Administrator for S&C); delegated sign-in through your own app registration
  needs its delegated permission Exchange.Manage
  (https://learn.microsoft.com/powershell/exchange/app-only-auth-powershell-v2).
"""

from __future__ import annotations

from dataclasses import dataclass

from m365archive.wellknown import ENTRA_ROLE_TEMPLATES

Alternatives = tuple[str, ...]  # any one of these is enough

# The Office 365 Exchange Online (00000002-0000-0ff1-ce00-000000000000) permissions the admin API needs.
EXCHANGE_APP_ROLE = "Exchange.ManageAsApp"  # application permission (app-only sign-in)
EXCHANGE_DELEGATED = "Exchange.Manage"  # delegated permission (your own app registration, a user signs in)


@dataclass(frozen=True)
class Requirement:
    """What one step of one command needs. Empty tuples mean "nothing of that kind"."""

    command: str  # as typed: "setup", "consent revoke", "legacy cleanup"
    step: str  # the step module or the part of the command
    does: str  # what the step does, in a few words
    graph_delegated: tuple[Alternatives, ...] = ()
    graph_application: tuple[Alternatives, ...] = ()
    entra_roles: tuple[Alternatives, ...] = ()  # the signed-in user's (delegated) or the app's (app-only)
    exchange_role_groups: tuple[Alternatives, ...] = ()  # Exchange Online / Security & Compliance / on-premises
    exchange: bool = False  # runs cmdlets through the Exchange Online or S&C admin API

    @property
    def exchange_app_role(self) -> str | None:
        """The Office 365 Exchange Online application permission app-only runs need, or None."""
        return EXCHANGE_APP_ROLE if self.exchange else None


_READ_GRAPH = (
    ("User.Read.All",),
    ("LicenseAssignment.Read.All", "Organization.Read.All"),
    ("RoleManagement.Read.Directory",),
    ("Application.Read.All",),
    ("GroupMember.Read.All", "Group.Read.All"),
)
_PASSWORD_DELEGATED = ("User-PasswordProfile.ReadWrite.All", "Directory.AccessAsUser.All")
_PASSWORD_APPLICATION = ("User-PasswordProfile.ReadWrite.All", "User.ReadWrite.All")
_ORG_MANAGEMENT = ("Organization Management",)
_EXCHANGE_ADMIN = ("Exchange Administrator",)

TABLE: tuple[Requirement, ...] = (
    Requirement(
        "setup --dry-run, status, init --from-tenant, capture",
        "read",
        "read users, licences, roles, service principals, groups, mailboxes and policies",
        graph_delegated=_READ_GRAPH,
        graph_application=_READ_GRAPH,
        entra_roles=(("Global Reader",),),
        exchange_role_groups=(("View-Only Organization Management",), ("Compliance Administrator",)),
        exchange=True,
    ),
    Requirement(
        "setup",
        "catchall_account",
        "create the catch-all user and set its usage location",
        graph_delegated=(("User.ReadWrite.All",),),
        graph_application=(("User.ReadWrite.All",),),
        entra_roles=(("User Administrator",),),
    ),
    Requirement(
        "setup",
        "catchall_account",
        "assign Exchange Online Plan 2",
        graph_delegated=(("LicenseAssignment.ReadWrite.All",),),
        graph_application=(("LicenseAssignment.ReadWrite.All",),),
        entra_roles=(("License Administrator", "User Administrator"),),
    ),
    Requirement(
        "setup",
        "catchall_account",
        "make the catch-all an Exchange Administrator",
        graph_delegated=(("RoleManagement.ReadWrite.Directory",),),
        graph_application=(("RoleManagement.ReadWrite.Directory",),),
        entra_roles=(("Privileged Role Administrator",),),
    ),
    Requirement(
        "setup",
        "catchall_mailbox",
        "hide, FullAccess, archive, auto-expanding archive, hold, auditing",
        entra_roles=(_EXCHANGE_ADMIN,),
        exchange_role_groups=(_ORG_MANAGEMENT,),
        exchange=True,
    ),
    Requirement(
        "setup",
        "user_mailboxes",
        "archive and Litigation Hold (or a retention policy) for each user mailbox",
        entra_roles=(_EXCHANGE_ADMIN,),
        exchange_role_groups=(_ORG_MANAGEMENT,),
        exchange=True,
    ),
    Requirement(
        "setup",
        "user_mailboxes (hybrid)",
        "Enable-RemoteMailbox -Archive for directory-synced users, on premises",
        exchange_role_groups=(("Recipient Management", "Organization Management"),),
    ),
    Requirement(
        "setup",
        "retention",
        "retention policy and rule (Security & Compliance)",
        entra_roles=(("Compliance Administrator",),),
        exchange_role_groups=(("Compliance Administrator", "Organization Management"),),
        exchange=True,
    ),
    Requirement(
        "setup",
        "connector_readiness",
        "service principal for the partner's app",
        graph_delegated=(("Application.ReadWrite.All",),),
        graph_application=(("Application.ReadWrite.All",),),
        entra_roles=(("Cloud Application Administrator", "Application Administrator"),),
    ),
    Requirement(
        "setup",
        "connector_readiness",
        "Data Connector Admin holders, unified audit log",
        entra_roles=(("Compliance Administrator",),),
        exchange_role_groups=(("Organization Management",),),
        exchange=True,
    ),
    Requirement(
        "consent grant",
        "connector_consent",
        "admin consent to the connector app (in the browser), then poll for its service principal",
        graph_delegated=(("Application.Read.All",),),
        graph_application=(("Application.Read.All",),),
        entra_roles=(("Global Administrator", "Cloud Application Administrator", "Application Administrator"),),
    ),
    Requirement(
        "consent status",
        "connector_consent",
        "read the connector's service principal, grants and app role assignments",
        graph_delegated=(("Application.Read.All",),),
        graph_application=(("Application.Read.All",),),
        entra_roles=(("Global Reader",),),
    ),
    Requirement(
        "consent revoke",
        "connector_consent",
        "delete the connector's service principal",
        graph_delegated=(("Application.ReadWrite.All",),),
        graph_application=(("Application.ReadWrite.All",),),
        entra_roles=(("Cloud Application Administrator", "Application Administrator"),),
    ),
    Requirement(
        "credentials rotate",
        "catchall_account",
        "reset the catch-all's password (it holds an admin role)",
        graph_delegated=(_PASSWORD_DELEGATED,),
        graph_application=(_PASSWORD_APPLICATION,),
        entra_roles=(("Privileged Authentication Administrator",),),
    ),
    Requirement(
        "legacy cleanup",
        "legacy_cleanup",
        "take the Exchange Administrator role away",
        graph_delegated=(("RoleManagement.ReadWrite.Directory",),),
        graph_application=(("RoleManagement.ReadWrite.Directory",),),
        entra_roles=(("Privileged Role Administrator",),),
    ),
    Requirement(
        "legacy cleanup",
        "legacy_cleanup",
        "block sign-in, or rotate the password (--rotate-password) of an account that holds an admin role",
        graph_delegated=(("User.EnableDisableAccount.All", "User.ReadWrite.All"), _PASSWORD_DELEGATED),
        graph_application=(("User.EnableDisableAccount.All", "User.ReadWrite.All"), _PASSWORD_APPLICATION),
        entra_roles=(("Privileged Authentication Administrator",),),
    ),
    Requirement(
        "legacy cleanup",
        "legacy_cleanup",
        "revoke the account's sign-in sessions after blocking or rotating",
        graph_delegated=(("User.RevokeSessions.All", "User.ReadWrite.All"),),
        graph_application=(("User.RevokeSessions.All", "User.ReadWrite.All"),),
        entra_roles=(("Privileged Authentication Administrator",),),
    ),
    Requirement(
        "legacy cleanup",
        "legacy_cleanup",
        "delete the retired connector's service principal",
        graph_delegated=(("Application.ReadWrite.All",),),
        graph_application=(("Application.ReadWrite.All",),),
        entra_roles=(("Cloud Application Administrator", "Application Administrator"),),
    ),
    Requirement(
        "legacy cleanup",
        "legacy_cleanup",
        "remove FullAccess grants on the catch-all mailbox",
        entra_roles=(_EXCHANGE_ADMIN,),
        exchange_role_groups=(_ORG_MANAGEMENT,),
        exchange=True,
    ),
    Requirement(
        "partner-info, mapping check/export",
        "read",
        "read users, the connector and recipients",
        graph_delegated=(("User.Read.All",), ("Application.Read.All",)),
        graph_application=(("User.Read.All",), ("Application.Read.All",)),
        exchange_role_groups=(("View-Only Recipients", "View-Only Organization Management"),),
        exchange=True,
    ),
    Requirement(
        "verify",
        "read",
        "read the users in scope, their mailboxes and each mailbox's folder statistics",
        graph_delegated=(
            ("User.Read.All",),
            ("LicenseAssignment.Read.All", "Organization.Read.All"),
            ("GroupMember.Read.All", "Group.Read.All"),
        ),
        graph_application=(
            ("User.Read.All",),
            ("LicenseAssignment.Read.All", "Organization.Read.All"),
            ("GroupMember.Read.All", "Group.Read.All"),
        ),
        entra_roles=(("Global Reader",),),
        exchange_role_groups=(("View-Only Organization Management",),),
        exchange=True,
    ),
    Requirement(
        "preflight --onprem",
        "onprem",
        "read remote mailboxes on premises",
        exchange_role_groups=(("Recipient Management", "View-Only Organization Management"),),
    ),
)


def for_command(command: str) -> list[Requirement]:
    """The rows of one command (as typed, e.g. "setup" or "consent revoke")."""
    return [r for r in TABLE if command in (c.strip() for c in r.command.split(","))]


def _first(entries: tuple[Alternatives, ...]) -> list[str]:
    return [alternatives[0] for alternatives in entries]


def delegated_scopes() -> tuple[str, ...]:
    """The delegated Graph scopes to ask for so that every command works: the first (least privileged)
    alternative of each entry, once each, in table order."""
    seen: dict[str, None] = {}
    for row in TABLE:
        for name in _first(row.graph_delegated):
            seen.setdefault(name, None)
    return tuple(seen)


def application_permissions() -> tuple[str, ...]:
    """The Graph application permissions an app registration needs for every command (app-only)."""
    seen: dict[str, None] = {}
    for row in TABLE:
        for name in _first(row.graph_application):
            seen.setdefault(name, None)
    return tuple(seen)


def _cell(entries: tuple[Alternatives, ...]) -> str:
    if not entries:
        return "none"
    return ", ".join(a[0] + (f" (or {' or '.join(a[1:])})" if len(a) > 1 else "") for a in entries)


def render_markdown() -> str:
    """The README's permissions section body (the table and its notes), exactly."""
    lines = [
        "| Command | Step | What it does | Graph (delegated) | Graph (application) | Entra roles "
        "| Exchange / S&C role groups | Exchange app permission |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in TABLE:
        exo = f"{EXCHANGE_APP_ROLE} (app-only); {EXCHANGE_DELEGATED} (your own app, delegated)" if r.exchange else "-"
        lines.append(
            f"| `{r.command}` | {r.step} | {r.does} | {_cell(r.graph_delegated)} | {_cell(r.graph_application)} "
            f"| {_cell(r.entra_roles)} | {_cell(r.exchange_role_groups)} | {exo} |"
        )
    lines += [
        "",
        "Delegated sign-in asks Graph for: " + ", ".join(delegated_scopes()) + ".",
        "An app registration (app-only) needs the Graph application permissions "
        + ", ".join(application_permissions())
        + f", the Office 365 Exchange Online application permission {EXCHANGE_APP_ROLE}, and the Entra roles "
        "above assigned to its service principal (Exchange Administrator for Exchange Online, Compliance "
        "Administrator for Security & Compliance).",
    ]
    return "\n".join(lines) + "\n"


# --- what a principal holds against what a run needs (preflight, and setup's plan-time checks) ------------

ROLE_NAMES_BY_TEMPLATE = {v: k for k, v in ENTRA_ROLE_TEMPLATES.items()}
GLOBAL_ADMIN = "Global Administrator"

# Entra roles whose holders Exchange Online and Security & Compliance count as members of a role group (through
# the TenantAdmins_*, ExchangeServiceAdmins_*, GlobalReaders_*, ComplianceAdmins_* groups that are members of it):
# https://learn.microsoft.com/exchange/permissions-exo/permissions-exo ("Global roles in Microsoft Entra ID allow
# you to manage ... Exchange Online"); the per-role mapping is unverified by Microsoft (Microsoft365DSC's
# settings.json pair Global Reader with View-Only Organization Management and Exchange Administrator with
# Organization Management).
ROLE_GROUPS_OF_ENTRA_ROLE: dict[str, tuple[str, ...]] = {
    "Global Administrator": ("Organization Management",),
    "Exchange Administrator": ("Organization Management",),
    "Global Reader": ("View-Only Organization Management",),
    "Compliance Administrator": ("Compliance Administrator",),
    "Exchange Recipient Administrator": ("Recipient Management",),
}
# Role groups whose members can do everything another's can (Exchange's built-in role groups).
ROLE_GROUP_COVERS: dict[str, tuple[str, ...]] = {
    "Organization Management": ("View-Only Organization Management", "Recipient Management", "View-Only Recipients"),
    "View-Only Organization Management": ("View-Only Recipients",),
}
# Role groups that live in Security & Compliance (the others are Exchange Online's, or on premises).
COMPLIANCE_STEPS = ("retention", "connector_readiness")
COMPLIANCE_ROLE_GROUPS = ("Compliance Administrator", "Compliance Data Administrator")

HAVE, MISSING, ELIGIBLE, UNKNOWN = "have", "missing", "eligible", "can't tell"
# The permission kinds of a need, in the order preflight lists them.
KINDS = ("graph-permission", "exchange-permission", "entra-role", "role-group", "service-principal")
# The resource apps a run's tokens are for (first-party service principals every tenant has).
RESOURCE_APPS = {
    "Microsoft Graph": "00000003-0000-0000-c000-000000000000",
    "Office 365 Exchange Online": "00000002-0000-0ff1-ce00-000000000000",
}


@dataclass(frozen=True)
class Need:
    """One thing a run needs: any one of `names` (a permission, an Entra role, a role group, an app id)."""

    kind: str
    names: Alternatives
    side: str = ""  # role groups: "exchange-online", "compliance" or "on-premises"
    entra: Alternatives = ()  # role groups: Entra roles that do as well (the row's Entra roles)
    steps: tuple[str, ...] = ()  # the table rows' "command / step: does" that need it

    @property
    def label(self) -> str:
        text = " or ".join(self.names)
        if self.kind == "role-group":
            where = {"compliance": "Security & Compliance", "on-premises": "on-premises Exchange"}.get(
                self.side, "Exchange Online"
            )
            return f"{text} ({where} role group)"
        return text


@dataclass(frozen=True)
class Held:
    """What the signed-in principal holds, as read (None: it could not be read)."""

    app_only: bool
    graph: frozenset[str] | None  # the Graph token's scp (delegated) or roles (application)
    exchange: frozenset[str] | None  # the Exchange token's scp or roles
    roles: frozenset[str] | None  # active Entra roles (names)
    eligible: frozenset[str] | None  # Entra roles PIM lists as eligible, not active
    role_groups: dict[str, frozenset[str] | None]  # side -> role groups the principal is a member of
    service_principals: dict[str, bool | None]  # app id -> present
    own_client: bool = True  # signed in through an app whose delegated permissions the config names


def _higher(name: str) -> set[str]:
    """Permissions that include `name` (its ReadWrite form; Graph's permissions reference lists them as higher
    privileged alternatives on each API page)."""
    out = {name}
    if ".Read." in name:
        out.add(name.replace(".Read.", ".ReadWrite."))
    return out


def needs_for_rows(rows: list[Requirement], *, app_only: bool) -> list[Need]:
    """The needs of these rows for a delegated or an app-only sign-in, each once, with the rows that need it."""
    merged: dict[tuple[str, Alternatives, str, Alternatives], list[str]] = {}

    def add(kind: str, names: Alternatives, where: str, side: str = "", entra: Alternatives = ()) -> None:
        merged.setdefault((kind, names, side, entra), [])
        if where not in merged[(kind, names, side, entra)]:
            merged[(kind, names, side, entra)].append(where)

    for row in rows:
        where = f"{row.command} / {row.step}: {row.does}"
        graph = row.graph_application if app_only else row.graph_delegated
        for alternatives in graph:
            add("graph-permission", alternatives, where)
        if graph:
            add("service-principal", ("Microsoft Graph",), where)
        if row.exchange:
            add("exchange-permission", (EXCHANGE_APP_ROLE if app_only else EXCHANGE_DELEGATED,), where)
            add("service-principal", ("Office 365 Exchange Online",), where)
        onprem = "hybrid" in row.step or row.command.startswith("preflight --onprem")
        if onprem:
            for alternatives in row.exchange_role_groups:
                add("role-group", alternatives, where, "on-premises")
            continue
        if app_only or not row.exchange_role_groups:
            for alternatives in row.entra_roles:
                add("entra-role", alternatives, where)
            continue
        entra = tuple(name for alternatives in row.entra_roles for name in alternatives)
        for alternatives in row.exchange_role_groups:
            compliance = row.step in COMPLIANCE_STEPS or alternatives[0] in COMPLIANCE_ROLE_GROUPS
            add("role-group", alternatives, where, "compliance" if compliance else "exchange-online", entra)
    needs = [Need(kind, names, side, entra, tuple(steps)) for (kind, names, side, entra), steps in merged.items()]
    return sorted(needs, key=lambda n: KINDS.index(n.kind))


def _role_verdict(names: Alternatives, held: Held) -> tuple[str, str]:
    wanted = (*names, GLOBAL_ADMIN)
    if held.roles is not None:
        have = next((n for n in wanted if n in held.roles), None)
        if have:
            return HAVE, have
    if held.eligible is not None:
        eligible = next((n for n in wanted if n in held.eligible), None)
        if eligible:
            return ELIGIBLE, eligible
    if held.roles is None:
        return UNKNOWN, "the principal's directory roles could not be read"
    return MISSING, "" if held.eligible is not None else "PIM eligibility could not be read"


def evaluate(need: Need, held: Held) -> tuple[str, str]:
    """(verdict, what satisfies it or why it can't be told) for one need."""
    if need.kind in ("graph-permission", "exchange-permission"):
        granted = held.graph if need.kind == "graph-permission" else held.exchange
        if granted is None:
            return UNKNOWN, "no token could be read for this resource"
        for name in need.names:
            found = next((g for g in sorted(granted) if g in _higher(name)), None)
            if found:
                return HAVE, found
        if need.kind == "exchange-permission" and not held.app_only and not held.own_client:
            # Microsoft's Exchange Online PowerShell client: which delegated scopes its tokens carry is undocumented.
            return (
                UNKNOWN,
                "signed in through Microsoft's Exchange Online PowerShell client, whose scopes are undocumented",
            )
        return MISSING, ""
    if need.kind == "entra-role":
        return _role_verdict(need.names, held)
    if need.kind == "service-principal":
        present = held.service_principals.get(RESOURCE_APPS.get(need.names[0], need.names[0]))
        if present is None:
            return UNKNOWN, "the service principal could not be read"
        return (HAVE, need.names[0]) if present else (MISSING, "")
    return _role_group_verdict(need, held)


def _entra_grants(role: str, need: Need) -> bool:
    """Whether holding Entra role `role` does what membership of the need's role group does."""
    return role in need.entra or role == GLOBAL_ADMIN or _covers(ROLE_GROUPS_OF_ENTRA_ROLE.get(role, ()), need)


def _role_group_verdict(need: Need, held: Held) -> tuple[str, str]:
    groups = held.role_groups.get(need.side)
    member = next((g for g in sorted(groups or ()) if _covers((g,), need)), None)
    if need.side == "on-premises":  # Entra roles grant nothing on premises
        if groups is None:
            return UNKNOWN, "on-premises rights are checked by `m365archive preflight --onprem`"
        return (HAVE, f"member of {member}") if member else (MISSING, "")
    candidates = (*need.entra, GLOBAL_ADMIN, *ROLE_GROUPS_OF_ENTRA_ROLE)
    active = next((r for r in candidates if held.roles and r in held.roles and _entra_grants(r, need)), None)
    if active:
        return HAVE, f"Entra role {active}"
    if member:
        return HAVE, f"member of {member}"
    eligible = next((r for r in candidates if held.eligible and r in held.eligible and _entra_grants(r, need)), None)
    if eligible:
        return ELIGIBLE, f"Entra role {eligible}"
    if groups is None:
        return UNKNOWN, "the role group's members could not be read"
    return MISSING, "" if held.eligible is not None else "PIM eligibility could not be read"


def entra_role_for(need: Need) -> str:
    """The Entra role to assign instead of a role-group membership: the one Exchange counts into that group."""
    for role, groups in ROLE_GROUPS_OF_ENTRA_ROLE.items():
        if role != GLOBAL_ADMIN and any(_norm(g) in {_norm(n) for n in need.names} for g in groups):
            return role
    return need.entra[0] if need.entra else ""


def _norm(name: str) -> str:
    return name.replace(" ", "").replace("-", "").lower()


def _covers(groups: tuple[str, ...], need: Need) -> bool:
    """Whether membership of any of `groups` (names as read: "OrganizationManagement" or "Organization Management")
    satisfies the need."""
    wanted = {_norm(n) for n in need.names}
    for group in groups:
        if _norm(group) in wanted:
            return True
        covered = next((c for k, c in ROLE_GROUP_COVERS.items() if _norm(k) == _norm(group)), ())
        if any(_norm(c) in wanted for c in covered):
            return True
    return False
