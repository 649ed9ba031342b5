"""Graph licensing: subscribedSkus."""

from __future__ import annotations

import uuid
from typing import Any

from m365archive.sim.graph.core import (
    _ROLE_NS,
    Ctx,
    GraphCore,
    Reply,
)


class LicencesMixin(GraphCore):
    # -- licensing -------------------------------------------------------------------------------
    def list_skus(self, ctx: Ctx) -> Reply:
        state = self.state

        def sku_json(sku: Any) -> dict[str, Any]:
            return {
                "accountId": state.tenant_id,
                "accountName": state.display_name,
                "appliesTo": "User",
                "capabilityStatus": "Enabled",
                "consumedUnits": state.consumed_units(sku.sku_id),
                "id": sku.id or f"{state.tenant_id}_{sku.sku_id}",
                "prepaidUnits": {"enabled": sku.enabled, "suspended": 0, "warning": 0, "lockedOut": 0},
                "servicePlans": [
                    {
                        "servicePlanId": pid,
                        "servicePlanName": name,
                        "provisioningStatus": "Success",
                        "appliesTo": "User",
                    }
                    for pid, name in sku.service_plans
                ],
                "skuId": sku.sku_id,
                "skuPartNumber": sku.sku_part_number,
                "subscriptionIds": [str(uuid.uuid5(_ROLE_NS, sku.sku_id))],
            }

        return self.page(ctx, "subscribedSkus", lambda: list(state.skus.values()), sku_json, directory=False)
