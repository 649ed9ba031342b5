"""Graph sign-in policies: Security defaults and Conditional Access, read-only.

GET /policies/identitySecurityDefaultsEnforcementPolicy answers the tenant's one policy object
(https://learn.microsoft.com/graph/api/identitysecuritydefaultsenforcementpolicy-get); GET
/identity/conditionalAccess/policies the tenant's conditionalAccessPolicy objects
(https://learn.microsoft.com/graph/api/conditionalaccessroot-list-policies). Both need Policy.Read.All
(sim/graph/permissions.py READ_RULES). Knobs `security_defaults` and `conditional_access_policies`.
"""

from __future__ import annotations

from typing import Any

from m365archive.sim.graph.core import Ctx, GraphCore, Reply

# The policy object's fixed id and texts: as Microsoft365DSC and public tenant dumps show them; unverified
# beyond isEnabled, which is the only field the simulator's behaviour rests on.
SECURITY_DEFAULTS_ID = "00000000-0000-0000-0000-000000000005"


class PoliciesMixin(GraphCore):
    def get_security_defaults(self, ctx: Ctx) -> Reply:
        return Reply(
            200,
            {
                "@odata.context": self.context(ctx, "policies/identitySecurityDefaultsEnforcementPolicy", entity=True),
                "id": SECURITY_DEFAULTS_ID,
                "displayName": "Security Defaults",
                "description": "Security defaults is a set of basic identity security mechanisms recommended by "
                "Microsoft. When enabled, these recommendations will be automatically enforced in your organization.",
                "isEnabled": self.state.knobs.security_defaults,
            },
        )

    def list_conditional_access_policies(self, ctx: Ctx) -> Reply:
        policies: list[dict[str, Any]] = [dict(p) for p in self.state.knobs.conditional_access_policies]
        return self.page(
            ctx,
            "identity/conditionalAccess/policies",
            lambda: policies,
            lambda p: p,
            directory=False,
        )
