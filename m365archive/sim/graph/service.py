"""The composed Graph service: every area's handlers in one table, and the routes that expose them."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from m365archive.sim.graph.apps import AppsMixin, sp_fields
from m365archive.sim.graph.batch import BatchMixin
from m365archive.sim.graph.core import (
    Handler,
)
from m365archive.sim.graph.groups import GroupsMixin
from m365archive.sim.graph.licences import LicencesMixin
from m365archive.sim.graph.organization import OrganizationMixin
from m365archive.sim.graph.policies import PoliciesMixin
from m365archive.sim.graph.roles import RolesMixin
from m365archive.sim.graph.users import UsersMixin
from m365archive.sim.graph_query import Cursors
from m365archive.sim.load import TokenBucket
from m365archive.sim.state import (
    TenantState,
)


class GraphService(
    UsersMixin, LicencesMixin, OrganizationMixin, RolesMixin, GroupsMixin, AppsMixin, PoliciesMixin, BatchMixin
):
    """The handlers for one tenant, and the routes that expose them."""

    def __init__(self, state: TenantState) -> None:
        self.state = state
        self.cursors = Cursors()
        self.bucket = TokenBucket(state.knobs.graph_rate, state.knobs.graph_burst)
        self.sp_fields = sp_fields(state)
        self.table: list[tuple[str, dict[str, Handler]]] = [
            ("/$batch", {"POST": self.batch}),
            ("/users", {"GET": self.list_users, "POST": self.create_user}),
            ("/users/{user_id}", {"GET": self.get_user, "PATCH": self.update_user}),
            ("/users/{user_id}/assignLicense", {"POST": self.assign_license}),
            ("/users/{user_id}/revokeSignInSessions", {"POST": self.revoke_sign_in_sessions}),
            ("/subscribedSkus", {"GET": self.list_skus}),
            ("/organization", {"GET": self.list_organization}),
            ("/roleManagement/directory/roleDefinitions", {"GET": self.list_role_definitions}),
            (
                "/roleManagement/directory/roleAssignments",
                {"GET": self.list_role_assignments, "POST": self.create_role_assignment},
            ),
            ("/me/transitiveMemberOf/graph.directoryRole", {"GET": self.me_directory_roles}),
            (
                "/servicePrincipals/{service_principal_id}/transitiveMemberOf/graph.directoryRole",
                {"GET": self.sp_directory_roles},
            ),
            (
                "/roleManagement/directory/roleEligibilityScheduleInstances",
                {"GET": self.list_eligibility_instances},
            ),
            ("/directoryRoles", {"GET": self.list_directory_roles, "POST": self.activate_directory_role}),
            ("/directoryRoles(roleTemplateId='{role_template_id}')", {"GET": self.get_directory_role}),
            (
                "/directoryRoles/{directory_role_id}/members/$ref",
                {
                    "GET": self.list_role_member_refs,
                    "POST": self.add_role_member,
                    "DELETE": self.remove_role_member,
                },
            ),
            # The documented removal form (microsoft-graph-docs-contrib directoryrole-delete-member.md):
            # the member's id as a key segment before $ref (OData's reference to one entity of a collection).
            ("/directoryRoles/{directory_role_id}/members/{member_id}/$ref", {"DELETE": self.remove_role_member}),
            ("/groups/{group_id}/members", {"GET": self.group_members}),
            ("/groups/{group_id}/members/graph.user", {"GET": self.group_member_users}),
            ("/groups/{group_id}/transitiveMembers", {"GET": self.group_transitive_members}),
            ("/groups/{group_id}/transitiveMembers/graph.user", {"GET": self.group_transitive_users}),
            ("/servicePrincipals", {"GET": self.list_sps, "POST": self.create_sp}),
            (
                "/servicePrincipals(appId='{app_id}')",
                {"GET": self.get_sp, "PATCH": self.update_sp, "DELETE": self.delete_sp},
            ),
            (
                "/servicePrincipals/{service_principal_id}",
                {"GET": self.get_sp, "PATCH": self.update_sp, "DELETE": self.delete_sp},
            ),
            (
                "/servicePrincipals/{service_principal_id}/oauth2PermissionGrants",
                {"GET": self.sp_grants},
            ),
            (
                "/servicePrincipals/{service_principal_id}/appRoleAssignments",
                {"GET": self.sp_app_role_assignments, "POST": self.create_app_role_assignment},
            ),
            ("/oauth2PermissionGrants", {"GET": self.list_grants, "POST": self.create_grant}),
            ("/policies/identitySecurityDefaultsEnforcementPolicy", {"GET": self.get_security_defaults}),
            ("/identity/conditionalAccess/policies", {"GET": self.list_conditional_access_policies}),
        ]
        self._routes: list[Route] = []


def routes(state: TenantState) -> list[BaseRoute]:
    return GraphService(state).routes()
