"""The simulator as token issuer (Entra ID's part): a token endpoint, signed tokens, and their checks.

`POST /{tenant}/oauth2/v2.0/token` (named in the discovery document as `services.token`) answers
with an access token for the scope's resource, issued to the scenario's signed-in principal: a user
(`signed_in_user`: oid, upn, idtyp "user", scp, wids) or, when the scenario has none, an application
(oid, appid, idtyp "app", roles, wids). Tokens are JWTs signed with HS256 under a key generated when the
tenant state is made (the simulator's start); only the simulator holds it, the client treats tokens as
opaque. Any grant is answered for the scenario's principal: the simulator does not model sign-in.

Lifetime: `Knobs.token_lifetime` real seconds (`exp`; clients compare it with their own clock). Entra's
default is a random 60-90 minutes. Server-side early expiry: with `Knobs.token_early_expiry` > 0 the
services refuse a token that many simulated seconds after it was issued, before its `exp` (clock skew,
revocation): 401 `InvalidAuthenticationToken` "Lifetime validation failed, the token is expired." from
Graph, 401 with `WWW-Authenticate: Bearer ... error="invalid_token"` from Exchange.
"""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import parse_qs

import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from m365archive.sim.state import TenantState

ALGORITHM = "HS256"
# The application the scenario's app-only principal is (a simulator control; no real app).
SIMULATOR_APP_ID = "5e1a7c0d-0000-4000-8000-00000000a55e"
# Graph's message for an expired token (ThomasKur/M365Documentation#58 quotes the whole body).
EXPIRED = "Lifetime validation failed, the token is expired."
EXCHANGE_PREFIXES = ("Exchange.", "full_access_as_app")

# Entra built-in role template ids (Microsoft Entra built-in roles reference), for the `wids` claim.
ROLE_TEMPLATES = {
    "Global Administrator": "62e90394-69f5-4237-9190-012177145e10",
    "Global Reader": "f2ef992c-3afb-46b9-b7cf-a126ee74c451",
    "Privileged Authentication Administrator": "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",
    "Privileged Role Administrator": "e8611ab8-c189-46e8-94e1-60213ab1f814",
    "User Administrator": "fe930be7-5e62-47db-91af-98c3a49a38b1",
    "License Administrator": "4d6ac14f-3453-41d0-bef9-a3e0c569773a",
    "Exchange Administrator": "29232cdf-9323-42fd-ade2-1d097af3e4de",
    "Compliance Administrator": "17315797-102d-40b4-93e0-432062caca18",
    "Cloud Application Administrator": "158c047a-c907-4556-b7ef-446551a6b5f7",
    "Application Administrator": "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
}

# What an administrator who consented to the product holds when a scenario names nothing narrower
# (the simulator's own list; the client's table is m365archive/permissions.py and is not imported).
DEFAULT_SCOPES = (
    "User.Read.All",
    "User.ReadWrite.All",
    "User-PasswordProfile.ReadWrite.All",
    "User.EnableDisableAccount.All",
    "LicenseAssignment.ReadWrite.All",
    "Organization.Read.All",
    "RoleManagement.ReadWrite.Directory",
    "Application.ReadWrite.All",
    "GroupMember.Read.All",
    "Exchange.Manage",
    "Exchange.ManageAsApp",
)


class TokenRefused(Exception):
    def __init__(self, reason: str, *, expired: bool = False, token_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.expired = expired
        self.token_id = token_id  # the token's `uti`, when it was one of ours


def _resource(scope: str) -> str:
    first = scope.split()[0] if scope.split() else ""
    for suffix in ("/.default", ".default"):
        if first.endswith(suffix):
            return first[: -len(suffix)].rstrip("/")
    return first.rsplit("/", 1)[0] if first.startswith("http") else first


def principal_oid(state: TenantState) -> str:
    """The object id of the scenario's signed-in principal: the operator's user object, or the app's service
    principal (the `oid` of its tokens)."""
    if state.signed_in_user:
        user = state.user_by_upn(state.signed_in_user)
        return user.id if user else str(uuid.uuid5(uuid.NAMESPACE_URL, state.signed_in_user))
    return str(uuid.uuid5(uuid.NAMESPACE_URL, SIMULATOR_APP_ID + state.tenant_id))


def principal_role_templates(state: TenantState, *, eligible: bool = False) -> list[str]:
    """The principal's active Entra roles (`wids`, transitiveMemberOf), or with `eligible` the roles PIM lists
    as eligible only, as role template ids (knobs `principal_roles`, `principal_eligible_roles`)."""
    names = state.knobs.principal_eligible_roles if eligible else state.knobs.principal_roles
    return [ROLE_TEMPLATES.get(r, r) for r in names]


def issue(state: TenantState, scope: str) -> tuple[str, int]:
    """(access token, expires_in seconds) for the scenario's principal and the scope's resource."""
    k = state.knobs
    now = int(time.time())
    lifetime = max(1, int(k.token_lifetime))
    resource = _resource(scope)
    exchange = not any(g in resource for g in ("graph.microsoft", "microsoftgraph"))
    granted = k.principal_scopes if k.principal_scopes is not None else DEFAULT_SCOPES
    for_resource = [s for s in granted if s.startswith(EXCHANGE_PREFIXES) == exchange]
    wids = principal_role_templates(state)
    uti = uuid.uuid4().hex
    claims: dict[str, Any] = {
        "aud": resource,
        "iss": f"https://sts.windows.net/{state.tenant_id}/",
        "tid": state.tenant_id,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "uti": uti,
        "wids": wids,
    }
    if state.signed_in_user:
        claims.update(
            oid=principal_oid(state),
            upn=state.signed_in_user,
            idtyp="user",
            scp=" ".join(s for s in for_resource if s != "Exchange.ManageAsApp"),
        )
    else:
        claims.update(
            oid=principal_oid(state),
            appid=SIMULATOR_APP_ID,
            idtyp="app",
            roles=[s for s in for_resource if s != "Exchange.Manage"],
        )
    with state.lock:
        state.issued_tokens[uti] = state.clock.elapsed()
    return jwt.encode(claims, state.token_key, algorithm=ALGORITHM), lifetime


def verify(state: TenantState, token: str) -> dict[str, Any]:
    """The claims of a token this simulator issued and still honours; TokenRefused otherwise."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            state.token_key,
            algorithms=[ALGORITHM],
            options={"verify_aud": False, "verify_exp": False, "verify_nbf": False, "verify_iat": False},
        )
    except jwt.PyJWTError:
        raise TokenRefused("Access token validation failure.") from None
    uti = str(claims.get("uti", ""))
    if float(claims.get("exp", 0)) <= time.time():
        raise TokenRefused(EXPIRED, expired=True, token_id=uti)
    early = state.knobs.token_early_expiry
    issued = state.issued_tokens.get(uti)
    if early > 0 and issued is not None and state.clock.elapsed() - issued >= early:
        raise TokenRefused(EXPIRED, expired=True, token_id=uti)
    return claims


def routes(state: TenantState) -> list[BaseRoute]:
    async def token(request: Request) -> Response:
        tenant = request.path_params["tenant"].lower()
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        if tenant not in (state.tenant_id.lower(), state.domain.lower(), "organizations", "common"):
            return JSONResponse(
                {
                    "error": "invalid_tenant",
                    "error_description": f"AADSTS90002: Tenant '{tenant}' not found.",
                },
                status_code=400,
            )
        scope = str(form.get("scope") or "")
        if not scope:
            return JSONResponse(
                {
                    "error": "invalid_request",
                    "error_description": "AADSTS900144: The request body must contain the following parameter: "
                    "'scope'.",
                },
                status_code=400,
            )
        user = state.user_by_upn(state.signed_in_user) if state.signed_in_user else None
        if user is not None and not user.account_enabled:
            # A disabled account gets no new token (Entra ID's error codes reference; the body as
            # Azure/azure-cli#2591 shows it); tokens issued before stay valid until they expire.
            return JSONResponse(
                {
                    "error": "invalid_grant",
                    "error_description": "AADSTS50057: User account is disabled.",
                    "error_codes": [50057],
                },
                status_code=400,
            )
        access, lifetime = issue(state, scope)
        return JSONResponse(
            {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": access}
        )

    return [Route("/{tenant}/oauth2/v2.0/token", token, methods=["POST"], name="token")]
