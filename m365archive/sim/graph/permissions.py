"""Which Graph writes a token's permissions allow (the simulator's own table; the client's is
m365archive/permissions.py and is not imported).

Each write needs one of its permissions among the token's `scp` (delegated) or `roles` (application),
from each API's "Permissions" section on Microsoft Learn. Changing the password or the sign-in state
of a user who holds an administrator role also needs the caller to be a Privileged Authentication
Administrator or a Global Administrator (user-update). Refusals are Graph's 403
`Authorization_RequestDenied` "Insufficient privileges to complete the operation.". Writes not listed
here are not checked (unverified). Knob `permission_check` off: any valid token may write.
"""

from __future__ import annotations

import re
from typing import Any

from m365archive.sim.state import TenantState
from m365archive.sim.tokens import ROLE_TEMPLATES

_USER = r"^/users/[^/]+$"
_DIRECTORY_WRITE = ("Directory.ReadWrite.All",)
PASSWORD = ("User-PasswordProfile.ReadWrite.All", "Directory.AccessAsUser.All")
PASSWORD_APP = ("User-PasswordProfile.ReadWrite.All", "User.ReadWrite.All", *_DIRECTORY_WRITE)
ENABLE = ("User.EnableDisableAccount.All", "User.ReadWrite.All", *_DIRECTORY_WRITE)
USERS = ("User.ReadWrite.All", *_DIRECTORY_WRITE)
LICENCES = ("LicenseAssignment.ReadWrite.All", "User.ReadWrite.All", *_DIRECTORY_WRITE)
ROLES = ("RoleManagement.ReadWrite.Directory",)
APPS = ("Application.ReadWrite.All", *_DIRECTORY_WRITE)
SESSIONS = ("User.RevokeSessions.All", "User.ReadWrite.All", *_DIRECTORY_WRITE)

# (methods, path pattern, body property or None, delegated alternatives, application alternatives)
RULES: list[tuple[frozenset[str], re.Pattern[str], str | None, tuple[str, ...], tuple[str, ...]]] = [
    (frozenset({"PATCH"}), re.compile(_USER), "passwordProfile", PASSWORD, PASSWORD_APP),
    (frozenset({"PATCH"}), re.compile(_USER), "accountEnabled", ENABLE, ENABLE),
    (frozenset({"POST"}), re.compile(r"^/users/[^/]+/assignLicense$"), None, LICENCES, LICENCES),
    (frozenset({"POST"}), re.compile(r"^/users/[^/]+/revokeSignInSessions$"), None, SESSIONS, SESSIONS),
    (frozenset({"POST", "PATCH", "DELETE"}), re.compile(r"^/users(/[^/]+)?$"), None, USERS, USERS),
    (
        frozenset({"POST", "DELETE"}),
        re.compile(r"^/(roleManagement/directory/roleAssignments|directoryRoles)"),
        None,
        ROLES,
        ROLES,
    ),
    (frozenset({"POST", "PATCH", "DELETE"}), re.compile(r"^/servicePrincipals"), None, APPS, APPS),
]
# Reads checked (the others are not: unverified which answer what): (path, permissions any one of which is
# needed, Entra roles a delegated caller must also hold one of, or none). The sign-in policies
# (identitysecuritydefaultsenforcementpolicy-get, conditionalaccessroot-list-policies: Policy.Read.All least
# privileged); PIM eligibilities (rbacapplication-list-roleeligibilityscheduleinstances, "Permissions").
ELIGIBILITY_READ = (
    "RoleEligibilitySchedule.Read.Directory",
    "RoleManagement.Read.Directory",
    "RoleManagement.Read.All",
    "RoleEligibilitySchedule.ReadWrite.Directory",
    "RoleManagement.ReadWrite.Directory",
)
# ...and in delegated access the signed-in user must hold one of these Entra roles (same page).
ELIGIBILITY_READ_ROLES = frozenset(
    ROLE_TEMPLATES[r] for r in ("Global Administrator", "Global Reader", "Privileged Role Administrator")
) | {
    "5d6b6bb7-de71-4623-b4af-96380a352509",  # Security Reader
    "5f2222b1-57c3-48ba-8ad5-d4759f1fde6f",  # Security Operator
    "194ae4cb-b126-40b2-bd5b-6091b380977d",  # Security Administrator
}
READ_RULES: list[tuple[re.Pattern[str], tuple[str, ...], frozenset[str]]] = [
    (
        re.compile(r"^/policies/identitySecurityDefaultsEnforcementPolicy$"),
        ("Policy.Read.All", "Policy.ReadWrite.SecurityDefaults"),
        frozenset(),
    ),
    (
        re.compile(r"^/identity/conditionalAccess/policies"),
        ("Policy.Read.All", "Policy.ReadWrite.ConditionalAccess"),
        frozenset(),
    ),
    (
        re.compile(r"^/roleManagement/directory/roleEligibilityScheduleInstances"),
        ELIGIBILITY_READ,
        ELIGIBILITY_READ_ROLES,
    ),
]
SENSITIVE = ("passwordProfile", "accountEnabled")
PRIVILEGED_AUTH = {ROLE_TEMPLATES["Privileged Authentication Administrator"], ROLE_TEMPLATES["Global Administrator"]}
DENIED = "Insufficient privileges to complete the operation."


def denied(state: TenantState, claims: dict[str, Any] | None, method: str, path: str, body: Any) -> str | None:
    """The message of Graph's 403 Authorization_RequestDenied when the token may not make this write, else None
    (core turns it into the reply: this module imports nothing of core)."""
    if not state.knobs.permission_check or claims is None:
        return None
    app = claims.get("idtyp") == "app"
    held = set(claims.get("roles") or []) if app else set(str(claims.get("scp") or "").split())
    if method == "GET":
        wids = set(claims.get("wids") or [])
        for pattern, needs, roles in READ_RULES:
            if pattern.search(path) and (not held & set(needs) or (roles and not app and not wids & roles)):
                return DENIED
        return None
    if method not in ("POST", "PATCH", "DELETE", "PUT"):
        return None
    fields = set(body) if isinstance(body, dict) else set()
    for methods, pattern, field, delegated, application in RULES:
        if method not in methods or not pattern.search(path) or (field is not None and field not in fields):
            continue
        if not held & set(application if app else delegated):
            return DENIED
        if field is None or fields <= set(SENSITIVE):
            break  # the general rule of the path does not apply to a change of these properties alone
    if method == "PATCH" and fields & set(SENSITIVE) and re.search(_USER, path):
        target = state.find_user(path.split("/")[2])
        privileged = set(claims.get("wids") or []) & PRIVILEGED_AUTH
        if target is not None and _holds_admin_role(state, target.id) and not privileged:
            return DENIED
    return None


def _holds_admin_role(state: TenantState, user_id: str) -> bool:
    return any(a.principal_id == user_id for a in state.role_assignments.values())
