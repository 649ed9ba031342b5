"""Graph applications: service principals, app role assignments, oauth2PermissionGrants."""

from __future__ import annotations

import re
from typing import Any

from m365archive.sim.graph.core import (
    Ctx,
    GraphCore,
    GraphFail,
    Reply,
    _iso,
    bad_request,
    invalid_value,
    not_found,
    render,
)
from m365archive.sim.graph_query import Getter
from m365archive.sim.state import (
    CONNECTOR_APP_ID,
    EXCHANGE_APP_ID,
    GRAPH_APP_ID,
    AppRoleAssignment,
    OAuth2PermissionGrant,
    ServicePrincipal,
    TenantState,
    new_id,
)

MICROSOFT_TENANT = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"  # owner of first-party applications
KNOWN_APPS: dict[str, str] = {
    CONNECTOR_APP_ID: "Third-party data connector",
    GRAPH_APP_ID: "Microsoft Graph",
    EXCHANGE_APP_ID: "Office 365 Exchange Online",
}
# What a first-party resource publishes, as its service principal's appRoles and oauth2PermissionScopes.
# Office 365 Exchange Online: full_access_as_app (application) and EWS.AccessAsUser.All (delegated), with the
# ids of https://learn.microsoft.com/exchange/client-developer/exchange-web-services/how-to-authenticate-an-ews-
# application-by-using-oauth (requiredResourceAccess); Exchange.ManageAsApp's id as public app registrations
# name it. Display names and descriptions other than EWS.AccessAsUser.All's are unverified.
PUBLISHED: dict[str, dict[str, list[dict[str, Any]]]] = {
    EXCHANGE_APP_ID: {
        "appRoles": [
            {
                "allowedMemberTypes": ["Application"],
                "description": "Allows the app to have full access via Exchange Web Services to all mailboxes "
                "without a signed-in user.",
                "displayName": "Use Exchange Web Services with full access to all mailboxes",
                "id": "dc890d15-9560-4a4c-9b7f-a736ec74ec40",
                "isEnabled": True,
                "origin": "Application",
                "value": "full_access_as_app",
            },
            {
                "allowedMemberTypes": ["Application"],
                "description": "Allows the app to manage the organization's Exchange environment without any user "
                "interaction.",
                "displayName": "Manage Exchange As Application",
                "id": "dc50a0fb-09a3-484d-be87-e023b12c6440",
                "isEnabled": True,
                "origin": "Application",
                "value": "Exchange.ManageAsApp",
            },
        ],
        "oauth2PermissionScopes": [
            {
                "adminConsentDescription": "Allows the app to have the same access to mailboxes as the signed-in "
                "user via Exchange Web Services.",
                "adminConsentDisplayName": "Access mailboxes as the signed-in user via Exchange Web Services",
                "id": "3b5f3d61-589b-4a3c-a359-5dd4b5ee5bd5",
                "isEnabled": True,
                "origin": "Application",
                "type": "User",
                "userConsentDescription": "Allows the app full access to your mailboxes on your behalf.",
                "userConsentDisplayName": "Access your mailboxes",
                "value": "EWS.AccessAsUser.All",
            }
        ],
    },
}


def published(state: TenantState, sp: ServicePrincipal, kind: str) -> list[dict[str, Any]]:
    """The permissions a resource's service principal lists (knob resource_permissions_published)."""
    if not state.knobs.resource_permissions_published:
        return []
    return [dict(p) for p in PUBLISHED.get(sp.app_id, {}).get(kind, [])]


_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def sp_fields(state: TenantState) -> dict[str, Getter]:
    return {
        "id": lambda s: s.id,
        "appId": lambda s: s.app_id,
        "displayName": lambda s: s.display_name,
        "appDisplayName": lambda s: s.display_name,
        "servicePrincipalType": lambda s: s.service_principal_type,
        "accountEnabled": lambda s: s.account_enabled,
        "servicePrincipalNames": lambda s: [s.app_id],
        "appOwnerOrganizationId": lambda s: MICROSOFT_TENANT if s.app_id in KNOWN_APPS else state.tenant_id,
        "signInAudience": lambda s: "AzureADMultipleOrgs",
        "tags": lambda s: [],
        "deletedDateTime": lambda s: None,
        "appRoles": lambda s: published(state, s, "appRoles"),
        "oauth2PermissionScopes": lambda s: published(state, s, "oauth2PermissionScopes"),
    }


GRANT_FIELDS: dict[str, Getter] = {
    "id": lambda g: g.id,
    "clientId": lambda g: g.client_id,
    "consentType": lambda g: g.consent_type,
    "principalId": lambda g: g.principal_id,
    "resourceId": lambda g: g.resource_id,
    "scope": lambda g: g.scope,
}
APP_ROLE_FIELDS: dict[str, Getter] = {
    "id": lambda a: a.id,
    "appRoleId": lambda a: a.app_role_id,
    "createdDateTime": lambda a: _iso(a.created),
    "deletedDateTime": lambda a: None,
    "principalDisplayName": lambda a: a.principal_display_name,
    "principalId": lambda a: a.principal_id,
    "principalType": lambda a: "ServicePrincipal",
    "resourceDisplayName": lambda a: a.resource_display_name,
    "resourceId": lambda a: a.resource_id,
}


class AppsMixin(GraphCore):
    # -- service principals --------------------------------------------------------------------------
    def sp(self, ctx: Ctx) -> ServicePrincipal:
        if "app_id" in ctx.params:
            key = ctx.params["app_id"]
            sp = self.state.sp_by_app_id(key)
        else:
            key = ctx.params["service_principal_id"]
            found = self.state.service_principals.get(key)
            sp = found if found and found.visible_at <= self.state.clock.elapsed() else None
        if sp is None:
            raise not_found(key)
        return sp

    def sp_json(self, sp: ServicePrincipal, select: list[str] | None = None) -> dict[str, Any]:
        return render(sp, self.sp_fields, select or self.sp_fields)

    def list_sps(self, ctx: Ctx) -> Reply:
        select = self.select(ctx, self.sp_fields, "servicePrincipal", self.sp_fields)
        flt = self.filter(ctx, self.sp_fields, "ServicePrincipal")
        sps = [sp for sp in self.state.visible_service_principals() if flt is None or flt.predicate(sp)]
        return self.page(ctx, "servicePrincipals", lambda: sps, lambda sp: self.sp_json(sp, select), select=select)

    def create_sp(self, ctx: Ctx) -> Reply:
        body = self.body_object(ctx)
        app_id = str(body.get("appId") or "")
        if not _GUID.match(app_id):
            raise invalid_value("appId", "ServicePrincipal")
        sp = self.add_service_principal(app_id)
        out = {"@odata.context": self.context(ctx, "servicePrincipals", entity=True)}
        out.update(self.sp_json(sp))
        return Reply(201, out)

    def add_service_principal(self, app_id: str, display_name: str | None = None) -> ServicePrincipal:
        """A new service principal, visible to reads after `sp_replication_delay`; 409 if one exists."""
        if self.state.sp_by_app_id(app_id, include_unreplicated=True):
            raise GraphFail(
                409,
                "Request_MultipleObjectsWithSameKeyValue",
                "The service principal cannot be created, updated, or restored because the service principal "
                f"name {app_id} is already in use.",
            )
        sp = ServicePrincipal(
            id=new_id(),
            app_id=app_id.lower(),
            display_name=display_name or KNOWN_APPS.get(app_id.lower(), f"App {app_id[:8]}"),
            created=self.state.clock.now(),
            visible_at=self.state.clock.elapsed() + self.state.knobs.sp_replication_delay,
        )
        self.state.service_principals[sp.id] = sp
        return sp

    def get_sp(self, ctx: Ctx) -> Reply:
        select = self.select(ctx, self.sp_fields, "servicePrincipal", self.sp_fields)
        sp = self.sp(ctx)
        out = {"@odata.context": self.context(ctx, "servicePrincipals", select, entity=True)}
        out.update(self.sp_json(sp, select))
        return Reply(200, out)

    def update_sp(self, ctx: Ctx) -> Reply:
        sp = self.sp(ctx)
        body = self.body_object(ctx)
        for key in body:
            if key not in self.sp_fields:
                raise bad_request(
                    f"The property '{key}' does not exist on type 'microsoft.graph.servicePrincipal'. Make sure "
                    "to only use property names that are defined by the type or mark the type as open type.",
                    "BadRequest",
                )
        if "accountEnabled" in body:
            if not isinstance(body["accountEnabled"], bool):
                raise invalid_value("accountEnabled", "ServicePrincipal")
            sp.account_enabled = body["accountEnabled"]
        return Reply(204)

    def delete_sp(self, ctx: Ctx) -> Reply:
        sp = self.sp(ctx)
        remove_service_principal(self.state, sp)
        return Reply(204)

    def sp_grants(self, ctx: Ctx) -> Reply:
        sp = self.sp(ctx)
        grants = [g for g in self.state.oauth2_grants.values() if g.client_id == sp.id]
        return self.page(
            ctx,
            "oauth2PermissionGrants",
            lambda: grants,
            lambda g: render(g, GRANT_FIELDS, GRANT_FIELDS),
            directory=False,
        )

    def sp_app_role_assignments(self, ctx: Ctx) -> Reply:
        sp = self.sp(ctx)
        items = [a for a in self.state.app_role_assignments.values() if a.principal_id == sp.id]
        return self.page(
            ctx,
            f"servicePrincipals('{sp.id}')/appRoleAssignments",
            lambda: items,
            lambda a: render(a, APP_ROLE_FIELDS, APP_ROLE_FIELDS),
            directory=False,
        )

    def create_app_role_assignment(self, ctx: Ctx) -> Reply:
        sp = self.sp(ctx)
        body = self.body_object(ctx)
        if str(body.get("principalId") or "") != sp.id:
            raise invalid_value("principalId", "AppRoleAssignment")
        resource = self.state.service_principals.get(str(body.get("resourceId") or ""))
        if resource is None:
            raise invalid_value("resourceId", "AppRoleAssignment")
        app_role_id = str(body.get("appRoleId") or "")
        if not _GUID.match(app_role_id):
            raise invalid_value("appRoleId", "AppRoleAssignment")
        for existing in self.state.app_role_assignments.values():
            if (existing.principal_id, existing.resource_id, existing.app_role_id) == (
                sp.id,
                resource.id,
                app_role_id,
            ):
                raise bad_request("Permission being assigned already exists on the object")
        assignment = add_app_role_assignment(self.state, sp, resource, app_role_id)
        out = {"@odata.context": self.context(ctx, f"servicePrincipals('{sp.id}')/appRoleAssignments", entity=True)}
        out.update(render(assignment, APP_ROLE_FIELDS, APP_ROLE_FIELDS))
        return Reply(201, out)

    def list_grants(self, ctx: Ctx) -> Reply:
        flt = self.filter(ctx, GRANT_FIELDS, "OAuth2PermissionGrant")
        grants = [g for g in self.state.oauth2_grants.values() if flt is None or flt.predicate(g)]
        return self.page(
            ctx,
            "oauth2PermissionGrants",
            lambda: grants,
            lambda g: render(g, GRANT_FIELDS, GRANT_FIELDS),
            directory=False,
        )

    def create_grant(self, ctx: Ctx) -> Reply:
        body = self.body_object(ctx)
        client = self.state.service_principals.get(str(body.get("clientId") or ""))
        if client is None:
            raise invalid_value("clientId", "OAuth2PermissionGrant")
        resource = self.state.service_principals.get(str(body.get("resourceId") or ""))
        if resource is None:
            raise invalid_value("resourceId", "OAuth2PermissionGrant")
        consent_type = body.get("consentType")
        if consent_type not in ("AllPrincipals", "Principal"):
            raise invalid_value("consentType", "OAuth2PermissionGrant")
        principal_id = body.get("principalId")
        if consent_type == "Principal" and principal_id not in self.state.users:
            raise invalid_value("principalId", "OAuth2PermissionGrant")
        for g in self.state.oauth2_grants.values():
            if (g.client_id, g.resource_id, g.consent_type, g.principal_id) == (
                client.id,
                resource.id,
                consent_type,
                principal_id if consent_type == "Principal" else None,
            ):
                raise GraphFail(409, "Request_MultipleObjectsWithSameKeyValue", "Permission entry already exists.")
        grant = OAuth2PermissionGrant(
            id=new_id(),
            client_id=client.id,
            consent_type=str(consent_type),
            resource_id=resource.id,
            scope=str(body.get("scope") or ""),
            principal_id=str(principal_id) if consent_type == "Principal" else None,
        )
        self.state.oauth2_grants[grant.id] = grant
        out = {"@odata.context": self.context(ctx, "oauth2PermissionGrants", entity=True)}
        out.update(render(grant, GRANT_FIELDS, GRANT_FIELDS))
        return Reply(201, out)


def remove_service_principal(state: TenantState, sp: ServicePrincipal) -> None:
    """Delete a service principal with its delegated grants and app role assignments (as Entra does)."""
    state.service_principals.pop(sp.id, None)
    for gid in [g.id for g in state.oauth2_grants.values() if sp.id in (g.client_id, g.resource_id)]:
        del state.oauth2_grants[gid]
    for aid in [a.id for a in state.app_role_assignments.values() if sp.id in (a.principal_id, a.resource_id)]:
        del state.app_role_assignments[aid]
    for rid in [r.id for r in state.role_assignments.values() if r.principal_id == sp.id]:
        del state.role_assignments[rid]


def add_app_role_assignment(
    state: TenantState, sp: ServicePrincipal, resource: ServicePrincipal, app_role_id: str
) -> AppRoleAssignment:
    assignment = AppRoleAssignment(
        id=new_id(),
        principal_id=sp.id,
        principal_display_name=sp.display_name,
        resource_id=resource.id,
        resource_display_name=resource.display_name,
        app_role_id=app_role_id,
        created=state.clock.now(),
    )
    state.app_role_assignments[assignment.id] = assignment
    return assignment
