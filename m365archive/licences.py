"""Which Exchange Online service plans give what: shipped data from Microsoft's licensing table.

`data/service-plans.json` lists the service plans that matter here (commercial and Government) and
what each grants: `plan2` (Exchange Online Plan 2, what the catch-all needs), `mailbox`, `archive`,
`hold` (Litigation Hold). A SKU's service plans come from the tenant (`subscribedSkus`), so a suite
that carries one of these plans is recognized without being listed. The file names its source
(MicrosoftDocs/entra-docs, "Product names and service plan identifiers for licensing").
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data" / "service-plans.json"


@cache
def _data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DATA.read_text(encoding="utf-8"))
    return data


@cache
def plans_granting(grant: str) -> frozenset[str]:
    """Service plan ids (lower case) that grant `grant`: plan2, mailbox, archive or hold."""
    return frozenset(str(p["id"]).lower() for p in _data()["service_plans"] if grant in p["grants"])


def sku_grants(sku: dict[str, Any], grant: str) -> bool:
    """Whether a subscribedSku (Graph's shape) carries a service plan granting `grant`."""
    wanted = plans_granting(grant)
    return any(str(p.get("servicePlanId", "")).lower() in wanted for p in sku.get("servicePlans") or [])


PLAN2_NAMES = "Exchange Online Plan 2 (EXCHANGE_S_ENTERPRISE or EXCHANGE_S_ENTERPRISE_GOV)"
