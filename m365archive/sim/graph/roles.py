"""Graph directory roles: role definitions, role assignments, directoryRoles and their members."""

from __future__ import annotations

import uuid
from typing import Any

from m365archive.sim.graph.core import (
    _ROLE_NS,
    Ctx,
    GraphCore,
    Reply,
    bad_request,
    invalid_value,
    not_found,
    render,
)
from m365archive.sim.graph_query import Getter
from m365archive.sim.state import (
    RoleAssignment,
    new_id,
)

ROLE_DEF_FIELDS: dict[str, Getter] = {
    "id": lambda r: r.id,
    "templateId": lambda r: r.id,
    "displayName": lambda r: r.display_name,
    "description": lambda r: r.display_name,
    "isBuiltIn": lambda r: r.is_built_in,
    "isEnabled": lambda r: True,
    "resourceScopes": lambda r: ["/"],
    "rolePermissions": lambda r: [],
    "version": lambda r: "1",
}
ROLE_ASSIGNMENT_FIELDS: dict[str, Getter] = {
    "id": lambda a: a.id,
    "principalId": lambda a: a.principal_id,
    "roleDefinitionId": lambda a: a.role_definition_id,
    "directoryScopeId": lambda a: a.directory_scope_id,
    "appScopeId": lambda a: None,
    "condition": lambda a: None,
}


def eligibility_instances(state: Any) -> list[dict[str, Any]]:
    """The scenario's PIM eligibilities (knob eligible_role_assignments) as unifiedRoleEligibilityScheduleInstance
    objects (rbacapplication-list-roleeligibilityscheduleinstances)."""
    from m365archive.sim.tokens import ROLE_TEMPLATES

    out = []
    for upn, role in state.knobs.eligible_role_assignments:
        user = state.user_by_upn(upn)
        if user is None:
            continue
        template = ROLE_TEMPLATES.get(role, role)
        out.append(
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{user.id}/{template}")),
                "principalId": user.id,
                "roleDefinitionId": template,
                "directoryScopeId": "/",
                "appScopeId": None,
                "memberType": "Direct",
                "roleEligibilityScheduleId": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{user.id}/{template}")),
                "startDateTime": "2024-01-01T00:00:00Z",
                "endDateTime": None,
            }
        )
    # The signed-in principal's (knob principal_eligible_roles), whatever kind of principal it is.
    from m365archive.sim.tokens import principal_oid, principal_role_templates

    oid = principal_oid(state)
    for template in principal_role_templates(state, eligible=True):
        out.append(
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{oid}/{template}")),
                "principalId": oid,
                "roleDefinitionId": template,
                "directoryScopeId": "/",
                "appScopeId": None,
                "memberType": "Direct",
                "roleEligibilityScheduleId": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{oid}/{template}")),
                "startDateTime": "2024-01-01T00:00:00Z",
                "endDateTime": None,
            }
        )
    return out


ELIGIBILITY_FIELDS: dict[str, Getter] = {
    name: (lambda key: lambda e: e[key])(name)
    for name in (
        "id",
        "principalId",
        "roleDefinitionId",
        "directoryScopeId",
        "appScopeId",
        "memberType",
        "roleEligibilityScheduleId",
        "startDateTime",
        "endDateTime",
    )
}


class RolesMixin(GraphCore):
    # -- roles -----------------------------------------------------------------------------------
    def list_role_definitions(self, ctx: Ctx) -> Reply:
        flt = self.filter(ctx, ROLE_DEF_FIELDS, "UnifiedRoleDefinition")
        defs = [r for r in self.state.role_definitions.values() if flt is None or flt.predicate(r)]
        return self.page(
            ctx,
            "roleManagement/directory/roleDefinitions",
            lambda: defs,
            lambda r: render(r, ROLE_DEF_FIELDS, ROLE_DEF_FIELDS),
            directory=False,
        )

    def list_role_assignments(self, ctx: Ctx) -> Reply:
        flt = self.filter(ctx, ROLE_ASSIGNMENT_FIELDS, "UnifiedRoleAssignment")
        items = [a for a in self.state.role_assignments.values() if flt is None or flt.predicate(a)]
        return self.page(
            ctx,
            "roleManagement/directory/roleAssignments",
            lambda: items,
            lambda a: render(a, ROLE_ASSIGNMENT_FIELDS, ROLE_ASSIGNMENT_FIELDS),
            directory=False,
        )

    def list_eligibility_instances(self, ctx: Ctx) -> Reply:
        flt = self.filter(ctx, ELIGIBILITY_FIELDS, "UnifiedRoleEligibilityScheduleInstance")
        items = [e for e in eligibility_instances(self.state) if flt is None or flt.predicate(e)]
        return self.page(
            ctx,
            "roleManagement/directory/roleEligibilityScheduleInstances",
            lambda: items,
            lambda e: render(e, ELIGIBILITY_FIELDS, ELIGIBILITY_FIELDS),
            directory=False,
        )

    def principal_exists(self, principal_id: str) -> bool:
        user = self.state.users.get(principal_id)
        if user is not None:
            return self.state.clock.elapsed() >= user.replicated_at  # not yet replicated: "does not exist"
        sp = self.state.service_principals.get(principal_id)
        return sp is not None and sp.visible_at <= self.state.clock.elapsed()

    def create_role_assignment(self, ctx: Ctx) -> Reply:
        body = self.body_object(ctx)
        principal_id = str(body.get("principalId") or "")
        role_id = str(body.get("roleDefinitionId") or "")
        scope = str(body.get("directoryScopeId") or "")
        if not principal_id:
            raise invalid_value("principalId", "UnifiedRoleAssignment")
        if not role_id:
            raise invalid_value("roleDefinitionId", "UnifiedRoleAssignment")
        if not scope:
            raise invalid_value("directoryScopeId", "UnifiedRoleAssignment")
        if role_id not in self.state.role_definitions:
            raise not_found(role_id)
        if not self.principal_exists(principal_id):
            raise not_found(principal_id)
        assignment = self.add_role_assignment(principal_id, role_id, scope)
        body_out = {"@odata.context": self.context(ctx, "roleManagement/directory/roleAssignments", entity=True)}
        body_out.update(render(assignment, ROLE_ASSIGNMENT_FIELDS, ROLE_ASSIGNMENT_FIELDS))
        return Reply(201, body_out)

    def add_role_assignment(self, principal_id: str, role_id: str, scope: str = "/") -> RoleAssignment:
        for existing in self.state.role_assignments.values():
            if (existing.principal_id, existing.role_definition_id, existing.directory_scope_id) == (
                principal_id,
                role_id,
                scope,
            ):
                raise bad_request(
                    "A conflicting object with one or more of the specified property values is present "
                    "in the directory."
                )
        assignment = RoleAssignment(
            id=new_id(), principal_id=principal_id, role_definition_id=role_id, directory_scope_id=scope
        )
        self.state.role_assignments[assignment.id] = assignment
        return assignment

    def directory_role_id(self, template_id: str) -> str:
        return str(uuid.uuid5(_ROLE_NS, f"{self.state.tenant_id}/{template_id}"))

    def active_role_templates(self) -> list[str]:
        assigned = {a.role_definition_id for a in self.state.role_assignments.values() if a.directory_scope_id == "/"}
        active = assigned | self.state.activated_directory_roles
        return [rid for rid in self.state.role_definitions if rid in active]

    def directory_role_json(self, template_id: str) -> dict[str, Any]:
        role = self.state.role_definitions[template_id]
        return {
            "id": self.directory_role_id(template_id),
            "deletedDateTime": None,
            "description": role.display_name,
            "displayName": role.display_name,
            "roleTemplateId": template_id,
        }

    def template_for_role(self, role_id: str) -> str:
        for template in self.active_role_templates():
            if self.directory_role_id(template) == role_id:
                return template
        raise not_found(role_id)

    def list_directory_roles(self, ctx: Ctx) -> Reply:
        fields: dict[str, Getter] = {
            "id": lambda t: self.directory_role_id(t),
            "roleTemplateId": lambda t: t,
            "displayName": lambda t: self.state.role_definitions[t].display_name,
        }
        flt = self.filter(ctx, fields, "DirectoryRole")
        templates = [t for t in self.active_role_templates() if flt is None or flt.predicate(t)]
        return self.page(ctx, "directoryRoles", lambda: templates, self.directory_role_json, directory=False)

    def activate_directory_role(self, ctx: Ctx) -> Reply:
        body = self.body_object(ctx)
        template = str(body.get("roleTemplateId") or "").lower()
        if template not in self.state.role_definitions:
            raise invalid_value("roleTemplateId", "DirectoryRole")
        if template in self.active_role_templates():
            raise bad_request(
                "A conflicting object with one or more of the specified property values is present in the directory."
            )
        self.state.activated_directory_roles.add(template)
        out = {"@odata.context": self.context(ctx, "directoryRoles", entity=True)}
        out.update(self.directory_role_json(template))
        return Reply(201, out)

    def get_directory_role(self, ctx: Ctx) -> Reply:
        template = ctx.params["role_template_id"].lower()
        if template not in self.active_role_templates():
            raise not_found(template)
        out = {"@odata.context": self.context(ctx, "directoryRoles", entity=True)}
        out.update(self.directory_role_json(template))
        return Reply(200, out)

    def list_role_member_refs(self, ctx: Ctx) -> Reply:
        template = self.template_for_role(ctx.params["directory_role_id"])
        members = [
            a.principal_id
            for a in self.state.role_assignments.values()
            if a.role_definition_id == template and a.directory_scope_id == "/"
        ]
        return self.page(
            ctx,
            "directoryObjects",
            lambda: members,
            lambda pid: {"@odata.id": f"{ctx.base}/directoryObjects/{pid}"},
            directory=True,
        )

    def add_role_member(self, ctx: Ctx) -> Reply:
        template = self.template_for_role(ctx.params["directory_role_id"])
        ref = self.body_object(ctx).get("@odata.id")
        if not isinstance(ref, str) or not ref:
            raise invalid_value("@odata.id", "DirectoryRole")
        principal_id = ref.rstrip("/").rsplit("/", 1)[-1]
        if not self.principal_exists(principal_id):
            raise not_found(principal_id)
        for a in self.state.role_assignments.values():
            if (a.principal_id, a.role_definition_id, a.directory_scope_id) == (principal_id, template, "/"):
                raise bad_request(
                    "One or more added object references already exist for the following modified "
                    "properties: 'members'."
                )
        self.add_role_assignment(principal_id, template)
        return Reply(204)

    def remove_role_member(self, ctx: Ctx) -> Reply:
        """DELETE .../members/{id}/$ref (documented), or .../members/$ref?@id=<url> (the SDKs' form). The
        `$id` query spelling is no documented form: refused unless the knob ref_form_check is off."""
        template = self.template_for_role(ctx.params["directory_role_id"])
        ref = ctx.params.get("member_id") or ctx.query.get("@id")
        if not ref and ctx.query.get("$id") and not self.state.knobs.ref_form_check:
            ref = ctx.query.get("$id")
        if not ref:  # unverified text
            raise bad_request("The '@id' query option or a member key segment is required to delete a reference.")
        principal_id = ref.rstrip("/").rsplit("/", 1)[-1]
        doomed = [
            a.id
            for a in self.state.role_assignments.values()
            if (a.principal_id, a.role_definition_id, a.directory_scope_id) == (principal_id, template, "/")
        ]
        if not doomed:
            raise not_found(principal_id)
        for aid in doomed:
            del self.state.role_assignments[aid]
        return Reply(204)

    # -- the signed-in principal's roles (preflight) ------------------------------------------------
    def principal_roles_of(self, principal_id: str) -> list[str]:
        """Role templates a principal holds now: the signed-in principal's from its knobs (what its tokens'
        `wids` say), anyone else's from the directory's role assignments."""
        from m365archive.sim.tokens import principal_oid, principal_role_templates

        if principal_id.lower() == principal_oid(self.state).lower():
            return [t for t in principal_role_templates(self.state) if t in self.state.role_definitions]
        assigned = {
            a.role_definition_id
            for a in self.state.role_assignments.values()
            if a.principal_id == principal_id and a.directory_scope_id == "/"
        }
        return [t for t in self.state.role_definitions if t in assigned]

    def _member_of_roles(self, ctx: Ctx, principal_id: str) -> Reply:
        templates = self.principal_roles_of(principal_id)
        return self.page(ctx, "directoryRoles", lambda: templates, self.directory_role_json, directory=False)

    def me_directory_roles(self, ctx: Ctx) -> Reply:
        """GET /me/transitiveMemberOf/graph.directoryRole: the directory roles the signed-in user holds, directly
        or through groups (an app-only token has no /me: 400, as Graph answers)."""
        claims = getattr(ctx.request.state, "token_claims", None) or {}
        if claims.get("idtyp") == "app":
            raise bad_request("/me request is only valid with delegated authentication flow.")
        return self._member_of_roles(ctx, str(claims.get("oid") or ""))

    def sp_directory_roles(self, ctx: Ctx) -> Reply:
        """GET /servicePrincipals/{id}/transitiveMemberOf/graph.directoryRole."""
        return self._member_of_roles(ctx, ctx.params["service_principal_id"])
