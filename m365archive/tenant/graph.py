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
- The SDK's RetryHandler retries POST on 429/503/504, on top of any retry of ours. It stays in the
  chain but switched off: every resend is decided by the floor's one policy (tenant/retry.py), which
  bounds how many times a request is sent in all (`retry.MAX_SENDS`) and resends a 503/504 only when
  that is harmless (a 503 may come after the write took effect).
- Retry-After in seconds (Graph) or fractional seconds (the time-scaled simulator) is honoured
  (`retry.retry_after`).
- `$batch` JSON is built here (msgraph-core 1.5.x's batch helper is unreliable), 20 per request,
  throttled items retried, results in input order.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import httpx
from azure.core.exceptions import ClientAuthenticationError
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
from m365archive.tenant.retry import MAX_SENDS, Again, Backoff, StopSignal, retry_after, sends
from m365archive.tenant.tokens import TokenUnavailable, fresh_token_claims_b64, graph_token_refused

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
BATCH_SIZE = 20
_RETRYABLE = frozenset({429, 503, 504})
# Requests that may be resent after a refused token without asking the caller: repeating them is harmless.
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE"})


# How long a write is retried while the object it names may not have replicated yet: "tens of seconds,
# up to a minute or two" (microsoftgraph/msgraph-sdk-dotnet#2772); "15-30 seconds" (Azure/azure-powershell#6493).
# The pauses double and, over the whole bound of sends, add up to this.
REPLICATION_BOUND = 180.0


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
    base_url: str, credential: AsyncTokenCredential, *, scopes: list[str] | None = None
) -> tuple[GraphServiceClient, GraphRequestAdapter, httpx.AsyncClient]:
    """A GraphServiceClient for `base_url` (a version root), with the adapter and httpx client under it.

    The SDK's RetryHandler is switched off: GraphGateway resends under the floor's one policy.
    """
    origin, host = _check_base_url(base_url)
    auth = AzureIdentityAuthenticationProvider(
        credential,
        scopes=scopes or [f"{origin}/.default"],
        allowed_hosts=[host.strip("[]") if host == "[::1]" else host],
    )
    retry = RetryHandlerOption(max_retries=0, should_retry=False)
    options: dict[str, Any] = {
        RetryHandlerOption.get_key(): retry,
        GraphTelemetryHandlerOption.get_key(): GraphTelemetryHandlerOption(api_version=APIVersion.v1),
    }
    middleware = [
        RetryHandler(retry) if isinstance(m, RetryHandler) else m
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
        max_sends: int = MAX_SENDS,
        retry_delay: float = 3.0,
        time_scale: float = 1.0,
        stop: StopSignal | None = None,
    ) -> None:
        """`retry_delay`: the back-off's first pause when no Retry-After comes (the SDK's default, 3 s);
        `time_scale` scales the replication-lag pauses (a time-scaled simulator); `stop` ends pauses (Ctrl-C)."""
        self.base_url = base_url.rstrip("/")
        self._origin = _check_base_url(self.base_url)[0]
        self.client, self._adapter, self._http = build_graph_client(self.base_url, credential, scopes=scopes)
        self.max_sends = min(max_sends, MAX_SENDS)
        self.backoff = Backoff(retry_delay, 60.0 * min(1.0, time_scale) if retry_delay else 0.0)
        self.lag_bound = REPLICATION_BOUND * time_scale
        self.stop = stop or StopSignal()
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
        lag: bool = False,
        budget: int | None = None,
    ) -> tuple[httpx.Response, int]:
        """Send one request through the SDK's pipeline, resent under the floor's policy (tenant/retry.py):
        429 always; 503/504 and dropped connections when `resend` allows it (default: reads and idempotent
        writes); a token Graph no longer honours (401 InvalidAuthenticationToken without a claims challenge)
        once, with a new token, when `resend` allows it, otherwise GraphError, not confirmed; with `lag`, a
        write answered "does not exist" while what it names replicates. At most `max_sends` sends in all;
        the last answer is returned with how many sends it took (GraphError for a connection that never
        answered)."""
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
        sending = _Sending(method.upper(), resend if resend is not None else method.upper() in IDEMPOTENT, lag)
        try:
            async for attempt in sends(self.backoff, self.stop, max_sends=budget or self.max_sends):
                with attempt:
                    return await self._once(info, span, sending), sending.sends
        except Again as last:  # the bound: the last answer stands
            if isinstance(last.answer, httpx.Response):
                return last.answer, sending.sends
            raise GraphError(0, "ConnectionError", last.reason, sends=sending.sends) from None
        finally:
            span.end()
        raise AssertionError("unreachable")

    async def _once(self, info: RequestInformation, span: Any, sending: _Sending) -> httpx.Response:
        """One send, and what to do about its answer: return it, or raise Again (send it again)."""
        sending.sends += 1
        claims, sending.claims = sending.claims, ""
        try:
            response: httpx.Response = await self._adapter.get_http_response_message(info, span, claims)
        except httpx.TransportError as exc:
            text = f"{type(exc).__name__}: {exc}"
            if sending.safe:  # a dropped connection: safe to repeat a read; a write may have happened
                raise Again(text) from exc
            raise GraphError(0, "ConnectionError", text, sends=sending.sends) from exc
        except ClientAuthenticationError as exc:
            raise TokenUnavailable(f"Microsoft Graph: could not get a new token: {_first_line(exc)}") from exc
        if graph_token_refused(response):
            return self._token_refused(response, sending)
        status = response.status_code
        wait = retry_after(response.headers.get("retry-after"))
        if status == 429 or (status in _RETRYABLE and sending.safe):
            raise Again(f"HTTP {status}", delay=wait, answer=response)
        if sending.lag and _replication_lag(sending.method, response):
            sending.lag_pauses += 1
            raise Again("not replicated yet", delay=self._lag_pause(sending.lag_pauses), answer=response)
        return response

    def _token_refused(self, response: httpx.Response, sending: _Sending) -> httpx.Response:
        """The one place a refused token is handled: a new token (claims request for a token issued now, so
        the credential skips its cache) and one resend, or GraphError when the request is not safe to repeat;
        a new token refused again is the answer (GraphError 401), never a loop."""
        if sending.renewed:
            return response
        if not sending.safe:
            raise GraphError(
                401,
                "InvalidAuthenticationToken",
                f"{_result_message(response)} (the token was refused before its expiry; this {sending.method} is "
                "not safe to repeat, so it was not resent and is not confirmed: a new plan reads what happened)",
                response.headers.get("request-id"),
            )
        sending.renewed = True
        sending.claims = fresh_token_claims_b64()
        self.token_resends += 1
        raise Again("token refused", delay=0.0, answer=response)

    def _lag_pause(self, n: int) -> float:
        """The n-th pause for replication lag: doubling, all of them together the replication bound."""
        return self.lag_bound * float(2 ** (n - 1)) / float(2 ** (MAX_SENDS - 1) - 1)

    async def send(self, request: GraphRequest, *, resend: bool | None = None, lag: bool = False) -> GraphResponse:
        """Send exactly this request; GraphError on a 4xx/5xx after the policy's resends (`GraphError.sends`
        says how many times it went out). `resend`: whether sending it again is harmless (default: reads and
        idempotent writes); `lag`: resend a write answered "does not exist" while what it names replicates."""
        response, count = await self._raw(
            request.method, request.path, request.body, dict(request.headers), resend=resend, lag=lag
        )
        return _result(response, sends=count)

    async def _get_json(self, path: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        result = _result((await self._raw("GET", path, None, headers))[0])
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

    async def directory_roles_of(self, principal_id: str | None) -> list[dict[str, Any]]:
        """The directory roles a principal holds now, directly or through groups (PIM-activated ones while
        active): the signed-in user's (`None`: /me) or a service principal's (transitiveMemberOf)."""
        if principal_id is not None and not _GUID.match(principal_id):
            raise ValueError(f"{principal_id!r} is not an object id (GUID)")
        owner = "/me" if principal_id is None else f"/servicePrincipals/{principal_id}"
        return await self._collect(
            owner + "/transitiveMemberOf/graph.directoryRole" + _query(select=["roleTemplateId", "displayName"])
        )

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
            sent = dict.fromkeys(pending, 0)  # each item's sends, across resent batches and resent items
            try:
                async for attempt in sends(self.backoff, self.stop, max_sends=self.max_sends):
                    with attempt:
                        budget = self.max_sends - max(sent[i] for i in pending)
                        wait, count = await self._batch_once(requests, pending, results, budget)
                        for i in pending:
                            sent[i] += count
                        pending = [
                            i
                            for i in pending
                            if (r := results[i]) is not None
                            and (r.status == 429 or (r.status in _RETRYABLE and requests[i].method.upper() == "GET"))
                            and sent[i] < self.max_sends
                        ]
                        if pending:
                            raise Again("items throttled", delay=wait)
            except Again:
                pass  # the bound: those items keep their last answers
        return [r if r is not None else GraphResponse(0, None) for r in results]

    async def _batch_once(
        self, requests: list[GraphRequest], indexes: list[int], results: list[GraphResponse | None], budget: int
    ) -> tuple[float | None, int]:
        """One batch of `indexes` (resent as a whole at most `budget` times); (the longest Retry-After among its
        items, how many times it was sent)."""
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
        answer, count = await self._raw("POST", "/$batch", {"requests": items}, resend=safe, budget=budget)
        reply = _result(answer, sends=count)
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
            delay = retry_after(headers.get("retry-after"))
            if delay is not None:
                wait = max(wait or 0.0, delay)
        return wait, count

    async def aclose(self) -> None:
        await self._http.aclose()


def _result(response: httpx.Response, *, sends: int = 1) -> GraphResponse:
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
        raise GraphError(response.status_code, code, message, inner.get("request-id") or rid, sends=sends)
    return GraphResponse(response.status_code, body if isinstance(body, dict) else None, rid)


@dataclass
class _Sending:
    """One request on its way: how it may be resent, and how often it went out."""

    method: str
    safe: bool  # sending it again is harmless
    lag: bool  # resend a write answered "does not exist" while what it names replicates
    sends: int = 0
    renewed: bool = False  # a new token was asked for after a refusal
    claims: str = ""  # the claims request for the next send (a token issued now)
    lag_pauses: int = 0


def _replication_lag(method: str, response: httpx.Response) -> bool:
    """The answer a write gets while an object it names has not replicated: 404 Request_ResourceNotFound
    ("Resource '...' does not exist or one of its queried reference-property objects are not present"),
    or 400 "Not a valid reference update" (microsoftgraph/msgraph-sdk-dotnet#2508)."""
    if method not in ("POST", "PATCH") or response.status_code not in (400, 404):
        return False
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        return False
    code, message = str(error.get("code") or ""), str(error.get("message") or "")
    if response.status_code == 404:
        return code == "Request_ResourceNotFound"
    return "Not a valid reference update" in message


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


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
