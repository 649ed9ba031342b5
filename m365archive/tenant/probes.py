"""Raw read requests for `doctor`: each observes one behaviour the product relies on, as it comes over the wire.

The product's runners hide exactly what `doctor` wants to see (they discover the regional host once, always
send continue-on-error and the full header set, never follow a redirect). `ServiceProbe` sends single
requests with the headers a probe chooses and returns the status, the header names and the body, nothing
more: every request is a read (a GET, an InvokeCommand of a Get- cmdlet, a `$batch` of Get- cmdlets).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from m365archive.tenant.exchange_rest import CONTINUE_ON_ERROR, MODULE_VERSION, anchor_for
from m365archive.tenant.hostmap import HostMapTransport

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

    from m365archive.tenant.session import Endpoints


@dataclass
class Answer:
    status: int  # 0: the request did not get an answer
    header_names: list[str] = field(default_factory=list)
    body: Any = None
    location: str = ""  # a redirect's Location
    failure: str = ""  # a transport failure, when status is 0


def _claims(token: str) -> dict[str, Any]:
    from m365archive.tenant.tokens import token_claims

    return token_claims(token)


class ServiceProbe:
    """Single read requests to Exchange Online, Security & Compliance and Graph, headers chosen by the caller."""

    def __init__(self, endpoints: Endpoints, credential: AsyncTokenCredential) -> None:
        self.endpoints = endpoints
        self._credential = credential
        transport: httpx.AsyncBaseTransport | None = None
        if endpoints.host_map:
            transport = HostMapTransport(dict(endpoints.host_map), httpx.AsyncHTTPTransport())
        self._client = httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(60.0), follow_redirects=False)
        self._tokens: dict[str, str] = {}

    async def aclose(self) -> None:
        await self._client.aclose()

    async def token(self, scope: str) -> str:
        if scope not in self._tokens:
            self._tokens[scope] = str((await self._credential.get_token(scope)).token)
        return self._tokens[scope]

    async def anchor(self) -> str:
        """The X-AnchorMailbox the product sends (the user's UPN, or the system mailbox for an app)."""
        token = await self.token(self.endpoints.exchange_scope)
        return anchor_for(_claims(token), self.endpoints.tenant_id)

    async def headers(
        self, cmdlet: str, *, scope: str | None = None, anchor: str | None = None, prefer: str | None = None
    ) -> dict[str, str]:
        token = await self.token(scope or self.endpoints.exchange_scope)
        out = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json; charset=utf-8",
            "Accept": "application/json",
            "X-ResponseFormat": "json",
            "X-AnchorMailbox": anchor if anchor is not None else await self.anchor(),
            "X-CmdletName": cmdlet,
            "X-ClientApplication": "m365archive",
            "client-request-id": str(uuid.uuid4()),
            "Prefer": prefer or "odata.maxpagesize=10",
        }
        return out

    async def _send(self, method: str, url: str, headers: dict[str, str], body: Any = None) -> Answer:
        try:
            response = await self._client.request(
                method, url, headers=headers, content=None if body is None else json.dumps(body).encode()
            )
        except httpx.TransportError as exc:
            return Answer(0, failure=type(exc).__name__)
        try:
            parsed: Any = response.json() if response.content else None
        except ValueError:
            parsed = None
        return Answer(
            response.status_code,
            sorted({k.lower() for k in response.headers}),
            parsed,
            response.headers.get("location", ""),
        )

    def invoke_url(self, base: str) -> str:
        return f"{base.rstrip('/')}/adminapi/beta/{self.endpoints.tenant_id}/InvokeCommand"

    def batch_url(self, base: str) -> str:
        return f"{base.rstrip('/')}/adminapi/beta/{self.endpoints.tenant_id}/$batch"

    async def banner(self, base: str) -> Answer:
        """GET EXOBanner('AutogenSession'), redirects not followed: how the module finds the regional host."""
        token = await self.token(self.endpoints.compliance_scope)
        url = f"{base.rstrip('/')}/adminapi/beta/{self.endpoints.tenant_id}/EXOBanner('AutogenSession')"
        headers = {
            "Authorization": f"Bearer {token}",
            "X-AnchorMailbox": await self.anchor(),
            "Accept": "application/json",
            "client-request-id": str(uuid.uuid4()),
        }
        return await self._send("GET", f"{url}?Version={MODULE_VERSION}", headers)

    async def invoke(
        self,
        base: str,
        cmdlet: str,
        parameters: dict[str, Any] | None = None,
        *,
        scope: str | None = None,
        anchor: str | None = None,
    ) -> Answer:
        """One Get- cmdlet through InvokeCommand."""
        if not cmdlet.startswith("Get-"):
            raise ValueError(f"a probe only reads: {cmdlet}")
        headers = await self.headers(cmdlet, scope=scope, anchor=anchor)
        body = {"CmdletInput": {"CmdletName": cmdlet, "Parameters": parameters or {}}}
        return await self._send("POST", self.invoke_url(base), headers, body)

    async def batch(
        self,
        base: str,
        items: list[tuple[str, dict[str, Any]]],
        *,
        continue_on_error: bool,
        authorize_items: bool = True,
        scope: str | None = None,
    ) -> Answer:
        """A `$batch` of Get- cmdlets; with `continue_on_error` the preference the module sends, on the batch and
        every item; `authorize_items` False leaves out each item's Authorization (the rest of its headers stay)."""
        requests = []
        for number, (cmdlet, parameters) in enumerate(items):
            if not cmdlet.startswith("Get-"):
                raise ValueError(f"a probe only reads: {cmdlet}")
            prefer = f"odata.maxpagesize=10;{CONTINUE_ON_ERROR}" if continue_on_error else "odata.maxpagesize=10"
            headers = await self.headers(cmdlet, scope=scope, prefer=prefer)
            if not authorize_items:
                headers.pop("Authorization")
            requests.append(
                {
                    "id": str(number),
                    "method": "POST",
                    "url": self.invoke_url(base),
                    "headers": headers,
                    "body": {"CmdletInput": {"CmdletName": cmdlet, "Parameters": parameters}},
                }
            )
        headers = await self.headers("$batch", scope=scope, prefer=CONTINUE_ON_ERROR if continue_on_error else None)
        if not continue_on_error:
            headers.pop("Prefer")
        return await self._send("POST", self.batch_url(base), headers, {"requests": requests})

    async def graph_get(self, path: str) -> Answer:
        token = await self.token(self.endpoints.graph_scope)
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        return await self._send("GET", self.endpoints.graph.rstrip("/") + path, headers)
