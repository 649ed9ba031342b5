"""The product's Microsoft Graph gateway, on msgraph-sdk's request adapter.

How requests travel: every call builds a kiota `RequestInformation` and sends it with the
adapter's `get_http_response_message`, i.e. through msgraph-sdk's own pipeline (the
authentication provider with its allowed-hosts check, then the middleware chain: retry with
Retry-After, redirect, parameter-name decoding, user agent, Graph telemetry). The JSON reply is
decoded as it came, so callers get Graph's camelCase names ("userPrincipalName",
"assignedLicenses": [{"skuId": ...}]) without a round trip through the SDK's model classes, and a
Change's exact request (method, path, body) is exactly what goes on the wire. `client` exposes the
fluent `GraphServiceClient` over the same adapter for code that prefers typed models.

Known traps handled here:
- `http://` is allowed only for localhost / 127.0.0.1 / ::1 (a simulator); real clouds need https.
- The SDK's RetryHandler retries POST on 429/503/504. It stays on: a 503 may come after the write
  took effect, so the retry can meet "already exists"; the product's steps treat that as done.
- Retry-After in seconds (Graph) or fractional seconds (the time-scaled simulator) is honoured.
- `$batch` JSON is built here (msgraph-core 1.5.x's batch helper is unreliable), 20 per request,
  throttled items retried, results in input order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import httpx
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from kiota_http.kiota_client_factory import KiotaClientFactory
from kiota_http.middleware import RetryHandler
from kiota_http.middleware.options import RetryHandlerOption
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import APIVersion, GraphClientFactory  # type: ignore[import-untyped]
from msgraph_core.authentication import AzureIdentityAuthenticationProvider  # type: ignore[import-untyped]
from msgraph_core.middleware import GraphTelemetryHandler  # type: ignore[import-untyped]
from msgraph_core.middleware.options import GraphTelemetryHandlerOption  # type: ignore[import-untyped]

from m365archive.tenant.graph_types import GraphError, GraphRequest, GraphResponse
from m365archive.tenant.tokens import fresh_token_claims_b64, graph_token_refused

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
BATCH_SIZE = 20
_RETRYABLE = frozenset({429, 503, 504})
# Requests that may be resent after a refused token without asking the caller: repeating them is harmless.
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE"})


class _RetryHandler(RetryHandler):
    """The SDK's retry handler, also reading a fractional Retry-After ("0.250") as seconds."""

    def _parse_retry_after(self, retry_after: str) -> float | None:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            return super()._parse_retry_after(retry_after)


def _check_base_url(base_url: str) -> tuple[str, str]:
    """(scheme://host[:port], hostname); refuses http:// for anything but the local machine."""
    parts = urlsplit(base_url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError(f"not a Graph base URL: {base_url!r}")
    if parts.scheme == "http" and host not in LOCAL_HOSTS:
        raise ValueError(f"Graph needs https:// ({base_url!r}); http:// is allowed only for a local simulator")
    return f"{parts.scheme}://{parts.netloc}", host


def build_graph_client(
    base_url: str,
    credential: AsyncTokenCredential,
    *,
    scopes: list[str] | None = None,
    max_retries: int = RetryHandlerOption.DEFAULT_MAX_RETRIES,
    retry_delay: float = RetryHandlerOption.DEFAULT_DELAY,
) -> tuple[GraphServiceClient, GraphRequestAdapter, httpx.AsyncClient]:
    """A GraphServiceClient for `base_url` (a version root), with the adapter and httpx client under it.

    `retry_delay` is the RetryHandler's base delay when no Retry-After comes (SDK default 3 s).
    """
    origin, host = _check_base_url(base_url)
    auth = AzureIdentityAuthenticationProvider(
        credential,
        scopes=scopes or [f"{origin}/.default"],
        allowed_hosts=[host.strip("[]") if host == "[::1]" else host],
    )
    retry = RetryHandlerOption(delay=retry_delay, max_retries=max_retries)
    options: dict[str, Any] = {
        RetryHandlerOption.get_key(): retry,
        GraphTelemetryHandlerOption.get_key(): GraphTelemetryHandlerOption(api_version=APIVersion.v1),
    }
    middleware = [
        _RetryHandler(retry) if isinstance(m, RetryHandler) else m
        for m in KiotaClientFactory.get_default_middleware(options)
    ]
    middleware.append(GraphTelemetryHandler(options=options[GraphTelemetryHandlerOption.get_key()]))
    http = GraphClientFactory.create_with_custom_middleware(middleware, client=KiotaClientFactory.get_default_client())
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = base_url.rstrip("/")
    return GraphServiceClient(request_adapter=adapter), adapter, http


class GraphGateway:
    """Graph v1.0 for the product: exact requests, reads returning Graph's JSON as dicts."""

    def __init__(
        self,
        base_url: str,
        credential: AsyncTokenCredential,
        *,
        scopes: list[str] | None = None,
        max_retries: int = RetryHandlerOption.DEFAULT_MAX_RETRIES,
        retry_delay: float = RetryHandlerOption.DEFAULT_DELAY,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._origin = _check_base_url(self.base_url)[0]
        self.client, self._adapter, self._http = build_graph_client(
            self.base_url, credential, scopes=scopes, max_retries=max_retries, retry_delay=retry_delay
        )
        self.max_retries = max_retries
        self.retry_delay = retry_delay
        self.token_resends = 0  # requests resent once after a refused token

    # -- the one way out -----------------------------------------------------------------------
    async def _raw(
        self,
        method: str,
        url: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        *,
        resend: bool | None = None,
    ) -> httpx.Response:
        """Send one request through the SDK's pipeline. A token Graph no longer honours (401
        InvalidAuthenticationToken without a claims challenge) is replaced and the request resent once when
        `resend` allows it (default: reads and idempotent writes); otherwise GraphError, not confirmed."""
        info = RequestInformation()
        info.http_method = Method(method.upper())
        info.url = url if url.startswith(("http://", "https://")) else self.base_url + _encode_path(url)
        info.headers.try_add("Accept", "application/json")
        for name, value in (headers or {}).items():
            info.headers.try_add(name, value)
        if body is not None:
            info.headers.try_add("Content-Type", "application/json")
            info.content = json.dumps(body).encode()
        span = self._adapter.start_tracing_span(info, f"m365archive {method.upper()}")
        attempts = 3 if method.upper() == "GET" else 1
        try:
            for attempt in range(attempts):
                try:
                    response: httpx.Response = await self._adapter.get_http_response_message(info, span)
                    if graph_token_refused(response):
                        return await self._token_refused(info, span, method, response, resend)
                    return response
                except httpx.TransportError as exc:
                    # A dropped connection: safe to repeat a read; a write may have happened, so report it.
                    if attempt + 1 >= attempts:
                        raise GraphError(0, "ConnectionError", f"{type(exc).__name__}: {exc}") from exc
                    await asyncio.sleep(min(0.2 * 2**attempt, 2.0))
            raise AssertionError("unreachable")
        finally:
            span.end()

    async def _token_refused(
        self, info: RequestInformation, span: Any, method: str, response: httpx.Response, resend: bool | None
    ) -> httpx.Response:
        """The one place a refused token is handled: a new token (claims request for a token issued now, so
        the credential skips its cache) and one resend, or GraphError when the request is not safe to repeat."""
        safe = resend if resend is not None else method.upper() in IDEMPOTENT
        if not safe:
            raise GraphError(
                401,
                "InvalidAuthenticationToken",
                f"{_result_message(response)} (the token was refused before its expiry; this {method.upper()} is "
                "not safe to repeat, so it was not resent and is not confirmed: a new plan reads what happened)",
                response.headers.get("request-id"),
            )
        self.token_resends += 1
        retried: httpx.Response = await self._adapter.get_http_response_message(info, span, fresh_token_claims_b64())
        return retried

    async def send(self, request: GraphRequest, *, resend: bool | None = None) -> GraphResponse:
        """Send exactly this request; GraphError on a 4xx/5xx after the SDK's retries. `resend`: whether the
        request may be sent again after a refused token (default: reads and idempotent writes)."""
        response = await self._raw(request.method, request.path, request.body, dict(request.headers), resend=resend)
        return _result(response)

    async def _get_json(self, path: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        result = _result(await self._raw("GET", path, None, headers))
        return result.body or {}

    async def _pages(self, path: str, headers: dict[str, str] | None = None) -> AsyncIterator[list[dict[str, Any]]]:
        url: str | None = path
        while url:
            body = await self._get_json(url, headers)
            yield list(body.get("value", []))
            url = body.get("@odata.nextLink")
            if url and not url.startswith(self._origin + "/"):
                raise GraphError(0, "UnexpectedNextLink", f"nextLink points away from {self.base_url}: {url}")

    async def _collect(self, path: str, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        async for page in self._pages(path, headers):
            out.extend(page)
        return out

    # -- reads -----------------------------------------------------------------------------------
    async def _get_or_none(self, path: str) -> dict[str, Any] | None:
        """One object, or None when Graph answers 404."""
        try:
            return await self._get_json(path)
        except GraphError as exc:
            if exc.not_found:
                return None
            raise

    async def get_user(self, key: str, select: list[str]) -> dict[str, Any] | None:
        return await self._get_or_none(f"/users/{key}" + _query(select=select))

    def iter_users(
        self, *, select: list[str], filter: str | None = None, page_size: int = 999, eventual: bool = False
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Pages of users. `eventual` sends ConsistencyLevel: eventual and $count=true (advanced queries)."""
        query = _query(select=select, filter=filter, top=page_size, count=eventual)
        headers = {"ConsistencyLevel": "eventual"} if eventual else None
        return self._pages("/users" + query, headers)

    async def subscribed_skus(self) -> list[dict[str, Any]]:
        return await self._collect("/subscribedSkus")

    async def role_assignments(
        self, *, principal_id: str | None = None, role_definition_id: str | None = None
    ) -> list[dict[str, Any]]:
        clauses = []
        if principal_id:
            clauses.append(f"principalId eq '{_odata_str(principal_id)}'")
        if role_definition_id:
            clauses.append(f"roleDefinitionId eq '{_odata_str(role_definition_id)}'")
        query = _query(filter=" and ".join(clauses) or None)
        return await self._collect("/roleManagement/directory/roleAssignments" + query)

    async def eligible_role_instances(self, principal_id: str) -> list[dict[str, Any]]:
        """PIM: the directory roles a principal is eligible for (needs RoleEligibilitySchedule.Read.Directory
        or RoleManagement.Read.Directory; a tenant without PIM answers an error)."""
        query = _query(filter=f"principalId eq '{_odata_str(principal_id)}'")
        return await self._collect("/roleManagement/directory/roleEligibilityScheduleInstances" + query)

    async def verified_domains(self) -> list[str]:
        """The tenant's verified domain names (organization.verifiedDomains; readable with User.Read)."""
        orgs = await self._collect("/organization" + _query(select=["verifiedDomains"]))
        return [str(d["name"]) for org in orgs for d in org.get("verifiedDomains") or [] if d.get("name")]

    def transitive_member_users(self, group_id: str, select: list[str]) -> AsyncIterator[list[dict[str, Any]]]:
        if not _GUID.match(group_id):  # never paste a path fragment into a Graph URL
            raise ValueError(f"{group_id!r} is not a group object id (GUID)")
        return self._pages(f"/groups/{group_id}/transitiveMembers/graph.user" + _query(select=select, top=999))

    async def service_principal_by_app_id(self, app_id: str) -> dict[str, Any] | None:
        return await self._get_or_none(f"/servicePrincipals(appId='{_odata_str(app_id)}')")

    async def service_principal(self, sp_id: str, select: list[str]) -> dict[str, Any] | None:
        if not _GUID.match(sp_id):  # never paste a path fragment into a Graph URL
            raise ValueError(f"{sp_id!r} is not a service principal object id (GUID)")
        return await self._get_or_none(f"/servicePrincipals/{sp_id}" + _query(select=select))

    async def security_defaults_enabled(self) -> bool:
        """Security defaults (needs Policy.Read.All; a refusal is a GraphError 403)."""
        body = await self._get_json("/policies/identitySecurityDefaultsEnforcementPolicy")
        return bool(body.get("isEnabled"))

    async def conditional_access_policies(self) -> list[dict[str, Any]]:
        """Every Conditional Access policy (needs Policy.Read.All; a refusal is a GraphError 403)."""
        return await self._collect("/identity/conditionalAccess/policies")

    async def oauth2_permission_grants(self, sp_id: str) -> list[dict[str, Any]]:
        return await self._collect(f"/servicePrincipals/{sp_id}/oauth2PermissionGrants")

    async def app_role_assignments(self, sp_id: str) -> list[dict[str, Any]]:
        return await self._collect(f"/servicePrincipals/{sp_id}/appRoleAssignments")

    # -- $batch ----------------------------------------------------------------------------------
    async def batch(self, requests: list[GraphRequest]) -> list[GraphResponse]:
        """Send requests as JSON batches of 20; one GraphResponse per request, in input order.

        Failed items come back as responses with their status and Graph error body (not raised).
        Items answered 429 (and 503/504 for GETs) are sent again after their Retry-After.
        """
        results: list[GraphResponse | None] = [None] * len(requests)
        for start in range(0, len(requests), BATCH_SIZE):
            pending = list(range(start, min(start + BATCH_SIZE, len(requests))))
            for attempt in range(self.max_retries + 1):
                wait = await self._batch_once(requests, pending, results)
                pending = [
                    i
                    for i in pending
                    if (r := results[i]) is not None
                    and (r.status == 429 or (r.status in _RETRYABLE and requests[i].method.upper() == "GET"))
                ]
                if not pending or attempt == self.max_retries:
                    break
                await asyncio.sleep(wait if wait is not None else self.retry_delay * 2**attempt)
        return [r if r is not None else GraphResponse(0, None) for r in results]

    async def _batch_once(
        self, requests: list[GraphRequest], indexes: list[int], results: list[GraphResponse | None]
    ) -> float | None:
        items = []
        for i in indexes:
            req = requests[i]
            item: dict[str, Any] = {"id": str(i), "method": req.method.upper(), "url": _encode_path(req.path)}
            headers = dict(req.headers)
            if req.body is not None:
                headers.setdefault("Content-Type", "application/json")
                item["body"] = req.body
            if headers:
                item["headers"] = headers
            items.append(item)
        safe = all(item["method"] in IDEMPOTENT for item in items)
        reply = _result(await self._raw("POST", "/$batch", {"requests": items}, resend=safe))
        wait: float | None = None
        for entry in (reply.body or {}).get("responses", []):
            index = int(entry["id"])
            headers = {str(k).lower(): str(v) for k, v in (entry.get("headers") or {}).items()}
            body = entry.get("body")
            results[index] = GraphResponse(
                int(entry.get("status", 0)),
                body if isinstance(body, dict) else None,
                request_id=headers.get("request-id") or reply.request_id,
            )
            if "retry-after" in headers:
                with contextlib.suppress(ValueError):
                    wait = max(wait or 0.0, float(headers["retry-after"]))
        return wait

    async def aclose(self) -> None:
        await self._http.aclose()


def _result(response: httpx.Response) -> GraphResponse:
    rid = response.headers.get("request-id") or response.headers.get("client-request-id")
    body: Any = None
    if response.content:
        try:
            body = response.json()
        except ValueError:
            body = None
    if response.status_code >= 400:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        code = str(error.get("code") or "")
        message = str(error.get("message") or response.reason_phrase or f"HTTP {response.status_code}")
        inner = error.get("innerError") or {}
        raise GraphError(response.status_code, code, message, inner.get("request-id") or rid)
    return GraphResponse(response.status_code, body if isinstance(body, dict) else None, rid)


def _result_message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}"


_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9\-._~!$&'()*+,;=:@/?%]")


def _encode_path(path: str) -> str:
    """Percent-encode what can't travel raw (spaces, '#', non-ASCII); leave OData punctuation as is."""
    return _UNSAFE.sub(lambda m: quote(m.group(0), safe=""), path)


def _odata_str(value: str) -> str:
    return value.replace("'", "''")


def _query(
    *, select: list[str] | None = None, filter: str | None = None, top: int | None = None, count: bool = False
) -> str:
    parts = []
    if select:
        parts.append("$select=" + ",".join(select))
    if filter:
        parts.append("$filter=" + quote(filter, safe="'(),/$:@"))
    if top:
        parts.append(f"$top={top}")
    if count:
        parts.append("$count=true")
    return "?" + "&".join(parts) if parts else ""
