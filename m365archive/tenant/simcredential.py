"""A credential for the simulated tenant: unsigned JWTs (`alg: none`) for the scope asked.

It is an azure-core TokenCredential, so the real SDK authentication path (msgraph-sdk's
AzureIdentityAuthenticationProvider, our Exchange client's bearer header) runs unchanged.
The simulator accepts these tokens; Microsoft's services never would.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from azure.core.credentials import AccessToken


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).rstrip(b"=").decode()


class SimulatorCredential:
    """Mints `alg: none` tokens whose `aud` is the scope's resource and `tid` the tenant id."""

    def __init__(self, tenant_id: str, upn: str | None = None) -> None:
        self.tenant_id = tenant_id
        self.upn = upn

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        resource = scopes[0] if scopes else ""
        for suffix in ("/.default", ".default"):
            if resource.endswith(suffix):
                resource = resource[: -len(suffix)]
                break
        now = int(time.time())
        claims = {
            "aud": resource.rstrip("/"),
            "tid": self.tenant_id,
            "iat": now,
            "exp": now + 3600,
            "iss": f"https://sts.windows.net/{self.tenant_id}/",
            "upn": self.upn,
        }
        token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
        return AccessToken(token, now + 3600)

    async def close(self) -> None:
        return None

    def __enter__(self) -> SimulatorCredential:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class AsyncSimulatorCredential(SimulatorCredential):
    """The same, for azure-core's AsyncTokenCredential protocol (msgraph-sdk uses this one)."""

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:  # type: ignore[override]
        return SimulatorCredential.get_token(self, *scopes, **kwargs)

    async def __aenter__(self) -> AsyncSimulatorCredential:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None
