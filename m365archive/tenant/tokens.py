"""When a service refuses a token before its `exp`: how to tell, and how to ask for a new one.

Graph answers an expired or revoked token with 401 `InvalidAuthenticationToken` ("Lifetime validation
failed, the token is expired."); Exchange's admin API with 401 and `WWW-Authenticate: Bearer ...
error="invalid_token"`. The SDK's own continuous-access-evaluation retry handles only 401s that carry
a `claims` challenge, and a client refreshes its cached token only shortly before `exp` (azure-identity
and the Exchange runner: 300 s), so a token the service stops honouring earlier (clock skew,
revocation) is answered by the gateways: they ask the credential for a new token with a claims request
for a token issued now (the shape of Entra's claims challenges, which makes azure-identity/MSAL skip
their cache) and resend the request once, if it is safe to resend.

The bound: one re-acquire and one resend per request (counted in tenant/retry.py's MAX_SENDS); a new
token refused again is that request's answer (401: an authentication failure, never a loop). A
credential that can't give a new token is `TokenUnavailable`: nothing more can be sent, so the command
ends with exit 5, never change by change.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import jwt

from m365archive.tenant.exchange import TransportError


class TokenUnavailable(TransportError):
    """The credential can't give a token (refused, unreachable): nothing more can be sent to this tenant, so
    the command stops with exit 5 (AUTH)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=401, auth=True)


def token_claims(token: str) -> dict[str, Any]:
    """A token's claims, read without checking its signature (the product holds no key: it only picks the
    operator's name and the Exchange anchor mailbox from them); {} for anything that is not a JWT."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}
    return claims if isinstance(claims, dict) else {}


def fresh_token_claims() -> str:
    """A claims request for a token issued no earlier than now (JSON, as `get_token(claims=...)` takes)."""
    return json.dumps({"access_token": {"nbf": {"essential": True, "value": str(int(time.time()))}}})


def fresh_token_claims_b64() -> str:
    """The same, base64-encoded, as kiota's request adapter takes a claims challenge."""
    return base64.b64encode(fresh_token_claims().encode()).decode()


def graph_token_refused(response: httpx.Response) -> bool:
    """Graph's answer to a token it no longer honours, without a claims challenge (the SDK retries those)."""
    if response.status_code != 401 or "claims=" in response.headers.get("www-authenticate", ""):
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    error = body.get("error") if isinstance(body, dict) else None
    return isinstance(error, dict) and error.get("code") == "InvalidAuthenticationToken"


def exchange_token_refused(status: int, headers: httpx.Headers) -> bool:
    """Exchange's admin API answer to a token it no longer honours."""
    challenge = headers.get("www-authenticate", "")
    return status == 401 and 'error="invalid_token"' in challenge and "claims=" not in challenge
