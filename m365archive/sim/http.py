"""Shared HTTP plumbing for the simulator's routes: tokens, error bodies, request notes.

Route modules (graph/, exchange/, consent.py, onprem.py) each expose
`routes(state) -> list[starlette.routing.BaseRoute]`; app.py mounts them.
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from m365archive.sim import tokens
from m365archive.sim.state import TenantState

# Token audiences per cloud (resource URIs as Entra issues them). The simulator keeps its own table
# rather than importing the client's (m365archive.tenant.clouds), so a wrong client table fails here.
# Sources: docs/fidelity.md rows cloud-hosts, cloud-dod-scc-audience, cloud-china-exchange-audience.
AUDIENCES: dict[str, dict[str, str]] = {
    "global": {
        "graph": "https://graph.microsoft.com",
        "exchange": "https://outlook.office365.com",
        "compliance": "https://ps.compliance.protection.outlook.com",
    },
    "gcc": {
        "graph": "https://graph.microsoft.com",
        "exchange": "https://outlook.office365.com",
        "compliance": "https://ps.compliance.protection.outlook.com",
    },
    "gcc-high": {
        "graph": "https://graph.microsoft.us",
        "exchange": "https://outlook.office365.us",
        "compliance": "https://ps.compliance.protection.office365.us",
    },
    "dod": {
        "graph": "https://dod-graph.microsoft.us",
        "exchange": "https://outlook-dod.office365.us",
        "compliance": "https://ps.compliance.protection.office365.us",
    },
    "china": {
        "graph": "https://microsoftgraph.chinacloudapi.cn",
        "exchange": "https://partner.outlook.cn",
        "compliance": "https://ps.compliance.protection.partner.outlook.cn",
    },
}


def check_bearer(request: Request, state: TenantState, service: str) -> tuple[int, str] | None:
    """None when the request carries a token this simulator issued for `service` in this tenant and still
    honours (its claims are kept in `request.state.token_claims`), else (status, reason)."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        return 401, "Access token is empty."
    try:
        claims = tokens.verify(state, header[7:].strip())
    except tokens.TokenRefused as refused:
        if refused.token_id:
            note(request, tokenId=refused.token_id)  # the token's id, never the token: which request used which
        return 401, refused.reason
    expected = AUDIENCES.get(state.cloud, AUDIENCES["global"])[service].rstrip("/")
    if state.knobs.audience_check and str(claims.get("aud", "")).rstrip("/") != expected:
        return 401, "Access token validation failure. Invalid audience."
    if str(claims.get("tid", "")).lower() != state.tenant_id.lower():
        return 401, "Access token validation failure. The token is for another tenant."
    request.state.token_claims = claims
    note(request, tokenId=claims.get("uti"))
    return None


def request_id(request: Request) -> str:
    """The id the simulator answers under (also sent as the request-id header)."""
    rid: str | None = getattr(request.state, "request_id", None)
    if rid is None:
        rid = str(uuid.uuid4())
        request.state.request_id = rid
    return rid


def note(request: Request, **fields: Any) -> None:
    """Add fields to this request's line in the request log (e.g. cmdlet=..., parameters=...)."""
    notes: dict[str, Any] = request.scope.setdefault("state", {}).setdefault("log_notes", {})
    notes.update(fields)


def graph_error(
    request: Request,
    state: TenantState,
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An error in Graph's shape: error.code, error.message, error.innerError."""
    rid = request_id(request)
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": state.clock.now().strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": rid,
                "client-request-id": request.headers.get("client-request-id", rid),
            },
        }
    }
    return JSONResponse(body, status_code=status, headers={"request-id": rid, **(headers or {})})
