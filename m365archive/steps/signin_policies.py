"""Would the tenant's sign-in policies block the partner's password sign-in to the catch-all?

The documented procedure hands the partner the catch-all's user ID and password (Step 4), and the catch-all
holds the Exchange Administrator role (Step 2). Security defaults require that role to do multifactor
authentication at every sign-in, and a Conditional Access policy may require it too: then a password alone
doesn't sign in. An advisory check: it reads the policies where the operator may, and says "can't tell"
where it may not.
"""

from __future__ import annotations

from typing import Any

from m365archive.engine.checks import Check
from m365archive.steps.base import StepContext
from m365archive.tenant.graph_types import GraphError
from m365archive.wellknown import EXCHANGE_ADMINISTRATOR_ROLE as EXCHANGE_ADMINISTRATOR

# What the partner signs in to: Exchange Online (its app id), all of Office 365, or every app.
EXCHANGE_TARGETS = {"all", "office365", "00000002-0000-0ff1-ce00-000000000000"}
SECURITY_DEFAULTS_SOURCE = "https://learn.microsoft.com/entra/fundamentals/security-defaults"
CONDITIONAL_ACCESS_SOURCE = "https://learn.microsoft.com/graph/api/resources/conditionalaccesspolicy"
CHECK_ID = "catchall-mfa"
REMEDY = (
    "the partner's password sign-in to the catch-all will be refused: agree with the partner how it meets "
    "multifactor authentication before handing the sign-in over (the EWS route is retired anyway)"
)


def requires_mfa(policy: dict[str, Any]) -> bool:
    grant = policy.get("grantControls") or {}
    controls = [str(c).lower() for c in grant.get("builtInControls") or []]
    return "mfa" in controls or bool(grant.get("authenticationStrength"))


def applies_to_catchall(policy: dict[str, Any], user_id: str | None) -> bool:
    """An enabled policy for Exchange Online (all apps, Office 365 or Exchange Online itself, not excluded) whose
    users include the catch-all (all users, its id, or the Exchange Administrator role) and don't exclude it.
    Groups are not resolved: a policy naming only groups is not counted."""
    if policy.get("state") != "enabled":
        return False
    apps = (policy.get("conditions") or {}).get("applications")
    if apps is not None:  # a policy for other apps (say, Azure management) doesn't touch an Exchange sign-in
        include_apps = {str(a).lower() for a in apps.get("includeApplications") or []}
        exclude_apps = {str(a).lower() for a in apps.get("excludeApplications") or []}
        if not include_apps & EXCHANGE_TARGETS or exclude_apps & EXCHANGE_TARGETS:
            return False
    users = (policy.get("conditions") or {}).get("users") or {}
    include_users = [str(u).lower() for u in users.get("includeUsers") or []]
    include_roles = [str(r).lower() for r in users.get("includeRoles") or []]
    exclude_users = [str(u).lower() for u in users.get("excludeUsers") or []]
    exclude_roles = [str(r).lower() for r in users.get("excludeRoles") or []]
    if (user_id and user_id.lower() in exclude_users) or EXCHANGE_ADMINISTRATOR in exclude_roles:
        return False
    return (
        "all" in include_users
        or bool(user_id and user_id.lower() in include_users)
        or (EXCHANGE_ADMINISTRATOR in include_roles)
    )


async def catchall_mfa_check(ctx: StepContext, upn: str) -> Check:
    """Security defaults, then Conditional Access: an advisory Check either way."""
    graph = ctx.session.graph
    user = await graph.get_user(upn, ["id"])
    user_id = str(user["id"]) if user else None
    try:
        defaults_on = await graph.security_defaults_enabled()
    except GraphError as exc:
        if exc.status not in (401, 403):
            raise
        return cant_tell(upn, "reading Security defaults (GET /policies/identitySecurityDefaultsEnforcementPolicy)")
    if defaults_on:
        return Check(
            CHECK_ID,
            f"Security defaults are on: the Exchange Administrator role must do multifactor authentication at every "
            f"sign-in, so a password alone can't sign in to {upn} (source: {SECURITY_DEFAULTS_SOURCE})",
            False,
            False,
            REMEDY,
        )
    try:
        policies = await graph.conditional_access_policies()
    except GraphError as exc:
        if exc.status not in (401, 403):
            raise
        return cant_tell(
            upn, "Security defaults are off; reading Conditional Access (GET /identity/conditionalAccess/policies)"
        )
    blocking = sorted(
        str(p.get("displayName")) for p in policies if requires_mfa(p) and applies_to_catchall(p, user_id)
    )
    if blocking:
        return Check(
            CHECK_ID,
            f"Conditional Access requires multifactor authentication for {upn}, so a password alone can't sign in: "
            f"{'; '.join(blocking)} (source: {CONDITIONAL_ACCESS_SOURCE})",
            False,
            False,
            REMEDY,
        )
    return Check(
        CHECK_ID,
        f"neither Security defaults nor an enabled Conditional Access policy ({len(policies)} read) requires "
        f"multifactor authentication for {upn} (policies that name groups are not resolved)",
        False,
        True,
    )


def cant_tell(upn: str, what: str) -> Check:
    return Check(
        CHECK_ID,
        f"can't tell whether multifactor authentication blocks the partner's password sign-in to {upn}: {what} "
        "was refused",
        False,
        False,
        "check Security defaults and Conditional Access in the Microsoft Entra admin center, or sign in with "
        "Policy.Read.All consented (the check reads both policies with it)",
    )
