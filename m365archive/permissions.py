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
