"""Step 5: consent to the third-party data connector app (appId 8dfbc50b-2111-4d03-9b4d-dd0d00aae7a2).

Nothing here is automatic: consent needs a global administrator in a browser. The step reads
whether the connector's service principal exists, reports it as a Check and a Finding, and puts
the admin-consent URL in the plan's instructions. EWS-based partner ingestion is retired, so a
present connector is flagged as access the tenant may want to remove (`m365archive consent revoke`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from m365archive.engine.checks import Check
from m365archive.engine.plan import Action, Change, Severity, Wait, WaitKind
from m365archive.partners import RETIREMENT
from m365archive.powershell import command
from m365archive.steps.base import GRAPH, StepContext, StepPlan, finding, graph_operation
from m365archive.steps.seams import ConsentReported, Planned
from m365archive.wellknown import CONNECTOR_APP_ID

if TYPE_CHECKING:
    from m365archive.tenant.session import Endpoints, TenantSession

NAME = "connector_consent"
RESOURCE_FIELDS = ["id", "appId", "displayName", "appRoles", "oauth2PermissionScopes"]


# The only redirect URI the reference page documents for the connector app (Step 5). No public source
# shows which redirect URIs the app accepts in the national clouds, so none is invented for them.
CONNECTOR_REDIRECT_URI = "https://portal.azure.com/"


def consent_url(endpoints: Endpoints, state: str | None = None) -> str:
    """The admin-consent link of Step 5: the reference page's URL with the tenant id in place of `common`
    when the tenant is known (an admin signed in to several tenants must not consent in the wrong one),
    on the tenant's cloud's login host (the simulator's login base with --sim)."""
    from m365archive.tenant.clouds import get_cloud

    cloud = get_cloud(endpoints.cloud)
    return cloud.admin_consent_url(
        endpoints.tenant_id or None,
        CONNECTOR_APP_ID,
        redirect_uri=CONNECTOR_REDIRECT_URI,
        state=state,
        login_base=endpoints.login if endpoints.simulator else None,
    )


def consent_url_caveat(endpoints: Endpoints) -> str | None:
    """What is unverified about the consent URL in this cloud, or None (the commercial cloud)."""
    if endpoints.cloud == "global":
        return None
    return (
        f"unverified for the {endpoints.cloud} cloud: the reference page documents only the redirect URI "
        f"{CONNECTOR_REDIRECT_URI} for the connector app, and no public source shows the app or its redirect "
        "URIs in this cloud; if the sign-in page answers AADSTS50011 or AADSTS700016, the app is not available here"
    )


@dataclass
class ConsentState:
    """The connector's service principal in the tenant, and what it was granted."""

    present: bool
    service_principal: dict[str, Any] | None = None
    oauth2_permission_grants: list[dict[str, Any]] = field(default_factory=list)
    app_role_assignments: list[dict[str, Any]] = field(default_factory=list)
    # The resources' own service principals (id -> appId, displayName, appRoles, oauth2PermissionScopes), read
    # to name what the ids mean; a resource that could not be read is absent.
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)

    def resource_name(self, resource_id: Any) -> str:
        """A grant's resource by name (and app id), or its object id when it could not be read."""
        resource = self.resources.get(str(resource_id))
        if not resource:
            return f"resource {resource_id} (not readable)"
        return f"{resource.get('displayName')} (app {resource.get('appId')})"

    def app_role_name(self, assignment: dict[str, Any]) -> str:
        """An application permission by the value its resource publishes (full_access_as_app), with its id."""
        role_id = str(assignment.get("appRoleId"))
        resource = self.resources.get(str(assignment.get("resourceId"))) or {}
        for role in resource.get("appRoles") or []:
            if str(role.get("id")).lower() == role_id.lower():
                return f"{role.get('value')} ({role_id})"
        return f"app role {role_id} (not among the resource's published appRoles)"

    def scope_names(self, grant: dict[str, Any]) -> list[str]:
        """A delegated grant's scopes, each checked against what its resource publishes."""
        resource = self.resources.get(str(grant.get("resourceId"))) or {}
        published = {str(p.get("value")) for p in resource.get("oauth2PermissionScopes") or []}
        return [
            s if s in published else f"{s} (not among the resource's published scopes)"
            for s in str(grant.get("scope", "")).split()
            if s
        ]

    def permissions(self) -> list[dict[str, Any]]:
        """Every permission the connector holds, named: what `consent status` shows and its JSON carries."""
        out: list[dict[str, Any]] = []
        for g in self.oauth2_permission_grants:
            for scope in self.scope_names(g):
                out.append(
                    {
                        "type": "delegated",
                        "permission": scope,
                        "resource": self.resource_name(g.get("resourceId")),
                        "for": "all users"
                        if g.get("consentType") == "AllPrincipals"
                        else f"user {g.get('principalId')}",
                    }
                )
        for a in self.app_role_assignments:
            out.append(
                {
                    "type": "application",
                    "permission": self.app_role_name(a),
                    "resource": self.resource_name(a.get("resourceId")),
                    "since": a.get("createdDateTime"),
                }
            )
        return out

    @property
    def sp_id(self) -> str | None:
        return str(self.service_principal["id"]) if self.service_principal else None

    @property
    def created(self) -> str | None:
        """When consent was given, as far as Graph v1.0 tells: servicePrincipal has no creation time,
        so the earliest app role assignment stands in for it."""
        if self.service_principal and self.service_principal.get("createdDateTime"):
            return str(self.service_principal["createdDateTime"])
        times = sorted(str(a["createdDateTime"]) for a in self.app_role_assignments if a.get("createdDateTime"))
        return times[0] if times else None

    def summary(self) -> str:
        """What the connector was granted, in one line: delegated scopes and application permissions."""
        grants, app_roles = self.oauth2_permission_grants, self.app_role_assignments
        scopes = sorted({s for g in grants for s in self.scope_names(g)})
        roles = sorted({f"{self.app_role_name(a)} on {self.resource_name(a.get('resourceId'))}" for a in app_roles})
        parts = [f"{len(grants)} delegated grant(s)" + (f" ({', '.join(scopes)})" if scopes else "")]
        parts.append(f"{len(app_roles)} application permission(s)" + (f" ({'; '.join(roles)})" if roles else ""))
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        sp = self.service_principal or {}
        return {
            "app_id": CONNECTOR_APP_ID,
            "present": self.present,
            "service_principal": {
                "id": sp.get("id"),
                "displayName": sp.get("displayName"),
                "appId": sp.get("appId"),
                "accountEnabled": sp.get("accountEnabled"),
            }
            if self.present
            else None,
            "created": self.created,
            "oauth2PermissionGrants": self.oauth2_permission_grants,
            "appRoleAssignments": self.app_role_assignments,
            "permissions": self.permissions(),
        }

    def lines(self) -> list[str]:
        """Human lines (tenant strings: print them with markup off)."""
        if not self.present:
            return [f"Connector consent: absent (no service principal for app {CONNECTOR_APP_ID})."]
        sp = self.service_principal or {}
        out = [
            f"Connector consent: present: {sp.get('displayName')} (service principal {sp.get('id')}, "
            f"app {CONNECTOR_APP_ID})",
            f"  created: {self.created or 'not reported by Graph v1.0 (servicePrincipal has no creation time)'}",
            f"  delegated permission grants (oauth2PermissionGrants): {len(self.oauth2_permission_grants)}",
        ]
        for g in self.oauth2_permission_grants:
            who = "all users" if g.get("consentType") == "AllPrincipals" else f"user {g.get('principalId')}"
            scopes = ", ".join(self.scope_names(g)) or "(none)"
            out.append(f"    - {scopes} on {self.resource_name(g.get('resourceId'))} for {who}")
        out.append(f"  application permissions (appRoleAssignments): {len(self.app_role_assignments)}")
        for a in self.app_role_assignments:
            out.append(
                f"    - {self.app_role_name(a)} on {self.resource_name(a.get('resourceId'))}"
                f" (since {a.get('createdDateTime') or 'unknown'})"
            )
        return out


async def consent_state(session: TenantSession) -> ConsentState:
    graph = session.graph
    sp = await graph.service_principal_by_app_id(CONNECTOR_APP_ID)
    if sp is None:
        return ConsentState(present=False)
    sp_id = str(sp["id"])
    grants, roles = await asyncio.gather(graph.oauth2_permission_grants(sp_id), graph.app_role_assignments(sp_id))
    resource_ids = sorted({str(x.get("resourceId")) for x in [*grants, *roles] if x.get("resourceId")})
    found = await asyncio.gather(*(graph.service_principal(r, RESOURCE_FIELDS) for r in resource_ids))
    return ConsentState(True, sp, grants, roles, {r: f for r, f in zip(resource_ids, found, strict=True) if f})


def revoke_change(state: ConsentState, *, step: str, timeout: float) -> Change:
    """The one Change that revokes the connector's consent: DELETE its service principal (its delegated
    grants and app role assignments go with it), then wait until Graph no longer shows it."""
    sp = state.service_principal or {}
    sp_id = str(sp["id"])
    return Change(
        id=f"{step}/service-principal/{CONNECTOR_APP_ID}",
        step=step,
        target=str(sp.get("displayName") or CONNECTOR_APP_ID),
        setting="connector app service principal (and its grants)",
        action=Action.DELETE,
        before=f"present: service principal {sp_id}, {state.summary()}",
        after=None,
        operation=graph_operation(
            "DELETE",
            f"/servicePrincipals/{sp_id}",
            powershell=command("Remove-MgServicePrincipal", {"ServicePrincipalId": sp_id}),
            ok_if_error=["does not exist"],
        ),
        side=GRAPH,
        warnings=[
            "The partner connector can no longer sign in to this tenant: deleting the service principal revokes "
            "every consent given to the connector app, with its delegated grants and app role assignments."
        ],
        rollback_note="no command: a global administrator consents again in a browser (`m365archive consent grant`; "
        "the retired route can't import anyway)",
        wait=Wait(
            WaitKind.SERVICE_PRINCIPAL_GONE,
            CONNECTOR_APP_ID,
            timeout,
            "waiting until Graph no longer shows the connector app's service principal",
        ),
        category="consent",
    )


def observed(state: ConsentState) -> dict[str, Any]:
    """What a plan that reads the connector's consent records for its fingerprint."""
    return {
        "present": state.present,
        "id": state.sp_id,
        "grants": sorted(str(g.get("id")) for g in state.oauth2_permission_grants),
        "app_roles": sorted(str(a.get("id")) for a in state.app_role_assignments),
    }


async def plan(ctx: StepContext) -> Planned[ConsentReported]:
    ctx.progress(f"reading the connector's service principal (app {CONNECTOR_APP_ID})")
    state = await consent_state(ctx.session)
    ctx.observe("connector.consent", observed(state))
    return consent_plan(state, ctx.session.endpoints)


def consent_plan(state: ConsentState, endpoints: Endpoints) -> Planned[ConsentReported]:
    """Step 5 from the connector's consent as read: a retired route's access to flag, or the manual step."""
    out = StepPlan()
    target = f"third-party data connector ({CONNECTOR_APP_ID})"
    if state.present:
        out.checks.append(
            Check(
                "connector-consent",
                f"connector consent: service principal {state.sp_id} present: "
                f"{len(state.oauth2_permission_grants)} delegated "
                f"grant(s), {len(state.app_role_assignments)} app role assignment(s)",
                False,
                True,
            )
        )
        out.findings.append(
            finding(
                NAME,
                target,
                Severity.WARNING,
                f"the connector holds consent in this tenant, but the route it serves was retired on "
                f"{RETIREMENT['date']}",
                "if no partner still needs it: `m365archive consent revoke` (deletes its service principal)",
                category="consent",
            )
        )
        return Planned(out, ConsentReported(reported=True))
    url = consent_url(endpoints)
    out.checks.append(
        Check(
            "connector-consent",
            "connector consent absent: no service principal for the connector app",
            False,
            False,
            "an admin consents with `m365archive consent grant` (Step 5)",
        )
    )
    out.findings.append(
        finding(
            NAME,
            target,
            Severity.INFO,
            "Step 5 is not done: a global administrator has not consented to the connector app (this tool "
            "can't consent for them)",
            "`m365archive consent grant` (states the retirement, opens the consent page, waits for the "
            "service principal)",
            category="consent",
        )
    )
    out.instructions.append(
        f"Step 5 (manual, global administrator, retired route): consent to the third-party data connector at "
        f"{url} , or run `m365archive consent grant`; check with `m365archive consent status`."
    )
    caveat = consent_url_caveat(endpoints)
    if caveat:
        out.instructions.append(f"The consent URL is {caveat}.")
    return Planned(out, ConsentReported(reported=True))
