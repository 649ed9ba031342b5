"""A credential for the simulated tenant: tokens come from the simulator's token endpoint.

The simulator is the issuer (its discovery document names the endpoint, `services.token`); this
credential fetches and caches tokens as azure-identity does: one per scope set, reused until less than
five minutes are left, fetched again when asked with `claims` (a claims challenge or request bypasses
the cache). Tokens are opaque here: the product never holds the simulator's key.

It is an azure-core TokenCredential, so the real SDK authentication path (msgraph-sdk's
AzureIdentityAuthenticationProvider, our Exchange client's bearer header) runs unchanged.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError

# azure-identity refreshes a cached token this long before it expires (DEFAULT_REFRESH_OFFSET).
REFRESH_OFFSET = 300
# The client id the simulator's credential names (a simulator control, no real app).
SIMULATOR_CLIENT_ID = "5e1a7c0d-0000-4000-8000-00000000a55e"


def token_url(base_url: str, tenant_id: str) -> str:
    """The simulator's token endpoint, in Entra's v2.0 shape."""
    return f"{base_url.rstrip('/')}/{tenant_id}/oauth2/v2.0/token"


class SimulatorCredential:
    """Fetches tokens from a simulator's token endpoint and caches them per scope set."""

    def __init__(self, token_endpoint: str) -> None:
        self.token_endpoint = token_endpoint
        self._cache: dict[str, AccessToken] = {}
        self.fetched = 0  # tokens fetched from the endpoint (cache misses, refreshes, claims requests)

    def _cached(self, scopes: tuple[str, ...], claims: str | None) -> AccessToken | None:
        token = self._cache.get(" ".join(scopes))
        if token is None or claims or token.expires_on - REFRESH_OFFSET <= time.time():
            return None
        return token

    def _form(self, scopes: tuple[str, ...], claims: str | None) -> dict[str, str]:
        form = {"grant_type": "client_credentials", "client_id": SIMULATOR_CLIENT_ID, "scope": " ".join(scopes)}
        if claims:
            form["claims"] = claims
        return form

    def _store(self, scopes: tuple[str, ...], response: httpx.Response) -> AccessToken:
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or "access_token" not in body:
            text = body.get("error_description") or body.get("error") or f"HTTP {response.status_code}"
            raise ClientAuthenticationError(f"the simulator refused a token: {text}")
        token = AccessToken(str(body["access_token"]), int(time.time()) + int(body.get("expires_in", 3600)))
        self._cache[" ".join(scopes)] = token
        self.fetched += 1
        return token

    def get_token(self, *scopes: str, claims: str | None = None, **kwargs: Any) -> AccessToken:
        cached = self._cached(scopes, claims)
        if cached is not None:
            return cached
        try:
            response = httpx.post(self.token_endpoint, data=self._form(scopes, claims), timeout=30)
        except httpx.HTTPError as exc:
            raise ClientAuthenticationError(f"the simulator's token endpoint is unreachable: {exc}") from exc
        return self._store(scopes, response)

    def close(self) -> None:
        return None

    def __enter__(self) -> SimulatorCredential:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class AsyncSimulatorCredential(SimulatorCredential):
    """The same, for azure-core's AsyncTokenCredential protocol (msgraph-sdk uses this one)."""

    async def get_token(  # type: ignore[override]
        self, *scopes: str, claims: str | None = None, **kwargs: Any
    ) -> AccessToken:
        cached = self._cached(scopes, claims)
        if cached is not None:
            return cached
        try:
            async with httpx.AsyncClient(timeout=30) as client:
                response = await client.post(self.token_endpoint, data=self._form(scopes, claims))
        except httpx.HTTPError as exc:
            raise ClientAuthenticationError(f"the simulator's token endpoint is unreachable: {exc}") from exc
        return self._store(scopes, response)

    async def close(self) -> None:  # type: ignore[override]
        return None

    async def __aenter__(self) -> AsyncSimulatorCredential:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None
