"""Graph organization: the tenant's own object, with its verified domains.

GET /organization answers a collection of one (https://learn.microsoft.com/graph/api/organization-list);
`verifiedDomains` lists every domain the tenant verified, its initial *.onmicrosoft.com domain
included (https://learn.microsoft.com/graph/api/resources/verifieddomain).
"""

from __future__ import annotations

from typing import Any

from m365archive.sim.graph.core import Ctx, GraphCore, Reply, render
from m365archive.sim.graph_query import Getter
from m365archive.sim.state import TenantState


def _verified(state: TenantState) -> list[dict[str, Any]]:
    names = [state.domain, *(d for d in state.verified_domains if d.lower() != state.domain.lower())]
    initial = next((n for n in names if n.lower().endswith(".onmicrosoft.com")), state.domain)
    return [
        {
            "capabilities": "Email, OfficeCommunicationsOnline",
            "isDefault": name == state.domain,
            "isInitial": name == initial,
            "name": name,
            "type": "Managed",
        }
        for name in names
    ]


ORGANIZATION_FIELDS: dict[str, Getter] = {
    "id": lambda s: s.tenant_id,
    "displayName": lambda s: s.display_name,
    "verifiedDomains": _verified,
}


class OrganizationMixin(GraphCore):
    def list_organization(self, ctx: Ctx) -> Reply:
        select = self.select(ctx, ORGANIZATION_FIELDS, "organization", ORGANIZATION_FIELDS)
        return self.page(
            ctx,
            "organization",
            lambda: [self.state],
            lambda s: render(s, ORGANIZATION_FIELDS, select),
            select=select,
            directory=False,
        )
