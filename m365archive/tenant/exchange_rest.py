"""Exchange Online and Security & Compliance through the admin API the EXO v3 module uses.

    POST {base}/adminapi/beta/{tenant}/InvokeCommand   {"CmdletInput": {"CmdletName", "Parameters"}}
    POST {base}/adminapi/beta/{tenant}/$batch          {"requests": [... at most 10 ...]}

`base` is https://outlook.office365.com for Exchange Online (token scope
https://outlook.office365.com/.default) or, for Security & Compliance (scope
https://ps.compliance.protection.outlook.com/.default), the tenant's regional host. The S&C front
door redirects each tenant to a regional host, so the runner discovers it first, once per tenant,
as the public clients of this endpoint do: a GET of `EXOBanner('AutogenSession')` with redirects
off; the regional host is the `Location` host's first label + the front door's host
(`nam12b.admin.protection.outlook.com` -> `nam12b.ps.compliance.protection.outlook.com`; CIPP-API
New-ExoRequest.ps1, Monkey365 Get-MonkeySecCompBackendUri, ScubaGear EXORestHelper.psm1). The
government and China forms follow the same rule and are unverified. Exchange Online redirects some
tenants too (ScubaGear EXORestHelper.psm1 Get-ExchangeOnlineApiEndpoint): its runner discovers the
same way, once per tenant, as ScubaGear does: a GET of `AdminApi/v1.0/{tenant}/EXOModuleFile` with
redirects off; a 3xx's `Location` host's first label + the front door's host serves the tenant
(`https://<label>.outlook.office365.com`), any other answer below 500 means the front door serves it.

Nothing is "ok" unless the service confirmed it: a 3xx is never success and is never followed (a
POST must not turn into a GET); `@adminapi.errors` in a 200 is an error (the module writes each as
an error record); a `$batch` is sent with `Prefer: odata.continue-on-error` and every item carries
the full header set (Authorization, X-AnchorMailbox, `Prefer: odata.maxpagesize=N;
odata.continue-on-error`), as the module and CIPP-API New-ExoBulkRequest.ps1 do; an item the
answer leaves out is "not confirmed", never ok, and is not re-sent blindly (the next plan reads what
happened). App-only tokens anchor on the module's system mailbox (`APP:SystemMailbox{...}@<tenant
id>`), delegated ones on `UPN:<the signed-in user>`.

Resends follow the floor's one policy (tenant/retry.py): 429 (Retry-After honoured, decimal
seconds accepted), 503, 504 and dropped connections, with jittered exponential backoff; a cmdlet
is sent at most `retry.MAX_SENDS` times in all, counting a `$batch` item's sends across resent
batches and resent items. Writes are resent too: every cmdlet the product sends is idempotent, or
answers "already ..." when its effect is already there; a resent write that gets such an answer is
reported as done. A `$batch` item refused for its token (401, `error="invalid_token"`: a token
replaced while the batch waited its turn) is resent alone, once, with a new token. Concurrency
adapts (tenant/pacing.py): AIMD on requests in flight, and a pace for cmdlets.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from m365archive.tenant.exchange import Cmdlet, CmdletOutcome, ExchangeError, ThrottleListener, TransportError
from m365archive.tenant.hostmap import HostMapTransport, mapped_origin
from m365archive.tenant.pacing import AimdLimiter, RatePacer
from m365archive.tenant.retry import MAX_SENDS, Again, Backoff, StopSignal, retry_after, sends
from m365archive.tenant.tokens import TokenUnavailable, exchange_token_refused, fresh_token_claims, token_claims
from m365archive.wellknown import EXCHANGE_APP_SYSTEM_MAILBOX

EXCHANGE_SCOPE = "https://outlook.office365.com/.default"
COMPLIANCE_SCOPE = "https://ps.compliance.protection.outlook.com/.default"
# The anchor the ExchangeOnlineManagement module uses for app-only connections.
APP_ANCHOR = f"APP:SystemMailbox{{{EXCHANGE_APP_SYSTEM_MAILBOX}}}@"
BATCH_LIMIT = 10
RETRYABLE_STATUS = (429, 503, 504)
CONTINUE_ON_ERROR = "odata.continue-on-error"
# The module version the discovery GET names (CIPP-API sends its own ModuleVersion the same way).
MODULE_VERSION = "3.7.1"
# What a runner GETs (redirects off) to find the host that serves the tenant, by the source it follows:
BANNER_DISCOVERY = "adminapi/beta/{tenant}/EXOBanner('AutogenSession')?Version=" + MODULE_VERSION  # CIPP-API (S&C)
MODULE_FILE_DISCOVERY = "AdminApi/v1.0/{tenant}/EXOModuleFile"  # ScubaGear (Exchange Online)
# Regional hosts found so far: (front door, tenant, mapped origin) -> base URL. One discovery per tenant.
_REGIONAL: dict[tuple[str, str, str], str] = {}


def regional_base(front_door: str, location: str) -> str:
    """The regional base URL a front door's redirect points at: the Location host's first label + the front
    door's host (CIPP-API takes the first label, Monkey365 rewrites `admin` to `ps.compliance`: the same host for
    `<label>.admin.protection.outlook.com`). A Location on the front door's own host (or relative) names no
    region: the front door itself."""
    front = httpx.URL(front_door)
    target = front.join(location)
    if not target.host or target.host.lower() == front.host.lower():
        return front_door.rstrip("/")
    label = target.host.split(".")[0].lower()
    port = f":{front.port}" if front.port else ""
    return f"{front.scheme}://{label}.{front.host}{port}"


class _AccessToken(Protocol):
    token: str
    expires_on: int


class AsyncTokenCredential(Protocol):
    async def get_token(self, *scopes: str, **kwargs: Any) -> Any: ...


@dataclass
class RunnerStats:
    """What the runner sent, for benchmarks and progress."""

    requests: int = 0  # HTTP requests, including resends
    batches: int = 0  # $batch requests among them
    cmdlets: int = 0  # cmdlets sent, counting each attempt
    retries: int = 0
    throttled: int = 0  # 429 answers (whole requests or batch items)
    transient: int = 0  # 503/504/connection failures
    token_resends: int = 0  # requests resent once after the service refused a token before its expiry
    peak_concurrency: int = 0


@dataclass
class _Sending:
    """One POST on its way: its body (rebuilt with new item tokens), how often it went out."""

    content: bytes
    sends: int = 0
    renewed: bool = False  # a new token was asked for after a refusal


@dataclass
class _BatchState:
    """One $batch chunk across its rounds: each item's outcome and sends."""

    chunk: list[Cmdlet]
    outcomes: list[CmdletOutcome] = field(init=False)
    pending: list[int] = field(init=False)
    sent: list[int] = field(init=False)  # each item's sends, across resent batches and resent items
    renewed: set[int] = field(default_factory=set)  # items resent once with a new token
    follow: list[tuple[int, str]] = field(default_factory=list)  # items whose output has more pages

    def __post_init__(self) -> None:
        self.outcomes = [CmdletOutcome(cmdlet=c) for c in self.chunk]
        self.pending = list(range(len(self.chunk)))
        self.sent = [0] * len(self.chunk)


@dataclass
class _Answer:
    status: int
    body: Any
    headers: httpx.Headers
    request_id: str


class RestExchangeRunner:
    """Runs cmdlets through InvokeCommand / $batch. Implements tenant.exchange.ExchangeRunner."""

    def __init__(
        self,
        base_url: str,
        tenant_id: str,
        credential: AsyncTokenCredential,
        *,
        scope: str,
        side: str = "exchange-online",
        anchor_mailbox: str | None = None,
        max_concurrency: int = 8,
        max_sends: int = MAX_SENDS,
        on_throttle: ThrottleListener | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        timeout: float = 120.0,
        discover_region: bool = False,
        discovery_path: str = BANNER_DISCOVERY,
        host_map: Mapping[str, str] | None = None,
        stop: StopSignal | None = None,
    ) -> None:
        self.side = side
        self.base_url = base_url.rstrip("/")
        self.tenant_id = tenant_id
        self.scope = scope
        self.discover_region = discover_region
        self.discovery_path = discovery_path
        self._resolved: str | None = None if discover_region else self.base_url
        self._resolve_lock = asyncio.Lock()
        self._origin_key = mapped_origin(httpx.URL(self.base_url).host, host_map or {}) or ""
        self.max_sends = min(max_sends, MAX_SENDS)
        self.on_throttle = on_throttle
        self.backoff = Backoff(backoff_base, backoff_max)
        self.stop = stop or StopSignal()
        self.stats = RunnerStats()
        self._credential = credential
        self._anchor = anchor_mailbox
        self._token: tuple[str, float] | None = None
        self._token_lock = asyncio.Lock()
        self._limiter = AimdLimiter(max_concurrency)
        self._pacer = RatePacer(sleep=self.stop.pause)  # its pauses end on Ctrl-C too
        self._connection_id = str(uuid.uuid4())
        limits = httpx.Limits(max_connections=max(2, max_concurrency * 2), max_keepalive_connections=max_concurrency)
        if host_map:
            transport = HostMapTransport(host_map, transport or httpx.AsyncHTTPTransport(limits=limits))
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=15.0),
            limits=limits,
            follow_redirects=False,  # a 3xx is never followed: a POST must not be re-sent as a GET
        )

    @property
    def endpoint(self) -> str:
        return f"{self._resolved or self.base_url}/adminapi/beta/{self.tenant_id}/InvokeCommand"

    @property
    def batch_endpoint(self) -> str:
        return f"{self._resolved or self.base_url}/adminapi/beta/{self.tenant_id}/$batch"

    # -- the host that serves the tenant ------------------------------------------------------------------
    async def _resolve(self) -> None:
        """Find the host that serves the tenant (once per tenant and process) before the first request."""
        if self._resolved is not None:
            return
        async with self._resolve_lock:
            if self._resolved is not None:
                return
            key = (self.base_url.lower(), self.tenant_id.lower(), self._origin_key)
            if key not in _REGIONAL:
                _REGIONAL[key] = await self._discover()
            self._resolved = _REGIONAL[key]

    async def _discover(self) -> str:
        url = f"{self.base_url}/{self.discovery_path.format(tenant=self.tenant_id)}"
        try:
            async for attempt in sends(self.backoff, self.stop, max_sends=self.max_sends):
                with attempt:
                    return await self._discover_once(url)
        except Again as last:
            raise TransportError(f"{self.side}: discovering the tenant's host kept failing ({last.reason})") from None
        raise AssertionError("unreachable")

    async def _discover_once(self, url: str) -> str:
        token = await self._access_token()
        headers = {
            "Authorization": f"Bearer {token}",
            "X-AnchorMailbox": self._anchor_mailbox(token),
            "client-request-id": str(uuid.uuid4()),
            "Accept": "application/json",
        }
        self.stats.requests += 1
        try:
            response = await self._client.get(url, headers=headers)
        except httpx.TransportError as exc:
            raise Again(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from exc
        status = response.status_code
        location = response.headers.get("location")
        if 300 <= status < 400 and location:
            return regional_base(self.base_url, location)
        if status in (401, 403):
            raise TransportError(
                f"{self.side}: HTTP {status} discovering the tenant's host: "
                f"{_error_text(_json(response.content)) or 'not authorized'}",
                status=status,
                auth=True,
            )
        if status < 500 and status != 429:
            return self.base_url  # the front door serves this tenant itself (ScubaGear does the same)
        raise Again(f"HTTP {status}", delay=retry_after(response.headers.get("retry-after")))

    def _forget_region(self) -> None:
        _REGIONAL.pop((self.base_url.lower(), self.tenant_id.lower(), self._origin_key), None)

    # -- protocol ----------------------------------------------------------------------------------
    async def invoke(self, cmdlet: Cmdlet) -> CmdletOutcome:
        outcome = CmdletOutcome(cmdlet=cmdlet)
        try:
            async for page in self._pages(cmdlet, 1000, outcome):
                outcome.objects.extend(page)
        except ExchangeError as err:
            outcome.error = err
        return outcome

    async def pages(self, cmdlet: Cmdlet, page_size: int = 1000) -> AsyncIterator[list[dict[str, Any]]]:
        outcome = CmdletOutcome(cmdlet=cmdlet)
        async for page in self._pages(cmdlet, page_size, outcome):
            yield page

    async def invoke_many(self, cmdlets: list[Cmdlet]) -> list[CmdletOutcome]:
        chunks = [cmdlets[i : i + BATCH_LIMIT] for i in range(0, len(cmdlets), BATCH_LIMIT)]
        results = await asyncio.gather(*(self._batch(chunk) for chunk in chunks))
        return [outcome for chunk in results for outcome in chunk]

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> RestExchangeRunner:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- single cmdlets, paged -----------------------------------------------------------------------
    async def _pages(
        self, cmdlet: Cmdlet, page_size: int, outcome: CmdletOutcome
    ) -> AsyncIterator[list[dict[str, Any]]]:
        body = _body(cmdlet)
        await self._resolve()
        url: str | None = self.endpoint
        while url:
            answer, count = await self._send(url, body, cmdlet.name, page_size, cmdlets=1)
            retried = count > 1
            outcome.request_id = answer.request_id
            outcome.answered_at = answer.headers.get("date")
            payload = answer.body if isinstance(answer.body, dict) else {}
            if answer.status >= 400:
                error = _exchange_error(answer.status, payload, cmdlet.name, answer.request_id)
                if retried and _already(error):
                    outcome.warnings.append(f"Retried after a lost answer; the first attempt took effect: {error}")
                    return
                raise error
            outcome.warnings.extend(str(w) for w in payload.get("@adminapi.warnings") or [])
            admin_error = _admin_errors(payload, cmdlet.name, answer.request_id)
            if admin_error is not None:
                raise admin_error
            yield [o for o in payload.get("value") or [] if isinstance(o, dict)]
            next_link = payload.get("@odata.nextLink")
            url = str(next_link) if next_link else None

    # -- $batch ------------------------------------------------------------------------------------
    async def _batch(self, chunk: list[Cmdlet]) -> list[CmdletOutcome]:
        state = _BatchState(chunk)
        await self._resolve()
        try:
            async for attempt in sends(self.backoff, self.stop, max_sends=self.max_sends):
                with attempt:
                    again, wait = await self._batch_round(state)
                    if again:
                        state.pending = again
                        raise Again("items to resend", delay=wait)
        except Again:
            pass  # the bound: those items keep their retryable errors
        for i, link in state.follow:
            await self._follow(state.outcomes[i], link)
        return state.outcomes

    async def _batch_round(self, state: _BatchState) -> tuple[list[int], float]:
        """Send the pending items as one $batch; (the items to send again, the pause before that)."""
        chunk, outcomes, pending = state.chunk, state.outcomes, state.pending
        item_headers = {i: await self._headers(chunk[i].name, 1000, item=True) for i in pending}
        requests = [
            {"id": str(i), "method": "POST", "url": self.endpoint, "headers": item_headers[i], "body": _body(chunk[i])}
            for i in pending
        ]
        await self._pacer.acquire(len(pending))

        async def rebuild() -> dict[str, Any]:
            for i in pending:  # every item carries the new token too
                item_headers[i] = await self._headers(chunk[i].name, 1000, item=True)
            return {"requests": [{**item, "headers": item_headers[int(str(item["id"]))]} for item in requests]}

        budget = self.max_sends - max(state.sent[i] for i in pending)
        answer, count = await self._send(
            self.batch_endpoint,
            {"requests": requests},
            "$batch",
            1000,
            cmdlets=len(pending),
            rebuild=rebuild,
            budget=budget,
        )
        for i in pending:
            state.sent[i] += count
        if answer.status >= 400:
            payload = answer.body if isinstance(answer.body, dict) else {}
            error = _exchange_error(answer.status, payload, "$batch", answer.request_id)
            for i in pending:
                outcomes[i].error = error
                outcomes[i].request_id = answer.request_id
            return [], 0.0
        responses = answer.body.get("responses", []) if isinstance(answer.body, dict) else []
        by_id = {str(r.get("id")): r for r in responses if isinstance(r, dict)}
        again: list[int] = []
        wait = 0.0
        throttled = False
        pause = False  # a throttled or failed item waits; an item refused for its token is resent at once
        for i in pending:
            item = by_id.get(str(i))
            outcome = outcomes[i]
            outcome.request_id = answer.request_id
            outcome.answered_at = answer.headers.get("date")
            if item is None:
                # Sent, but the answer says nothing about it: it may or may not have run. Never ok, and
                # not re-sent blindly: the next plan reads the tenant first.
                outcome.error = ExchangeError(
                    f"{chunk[i].name}: the $batch answer has no response for this item, so it is not confirmed "
                    "(it may or may not have run; a new plan reads what happened)",
                    cmdlet=chunk[i].name,
                    category="NotConfirmed",
                    request_id=answer.request_id,
                )
                continue
            status = int(item.get("status", 500))
            raw_body = item.get("body")
            body: dict[str, Any] = raw_body if isinstance(raw_body, dict) else {}
            headers = httpx.Headers({str(k): str(v) for k, v in (item.get("headers") or {}).items()})
            if i not in state.renewed and exchange_token_refused(status, headers):
                # The item's own token was refused (replaced while the batch waited): it did not run, so it is
                # resent alone, once, with a new token; refused again, that answer stands.
                state.renewed.add(i)
                self.stats.token_resends += 1
                await self._access_token(refused=item_headers[i]["Authorization"].removeprefix("Bearer "))
                outcome.error = _exchange_error(status, body, chunk[i].name, answer.request_id, retryable=True)
                again.append(i)
                continue
            if status in RETRYABLE_STATUS:
                delay = retry_after(headers.get("retry-after"))
                if status == 429:
                    throttled = True
                    self.stats.throttled += 1
                    if self.on_throttle:
                        self.on_throttle(delay if delay is not None else 0.0)
                else:
                    self.stats.transient += 1
                pause = True
                wait = max(wait, delay if delay is not None else self.backoff.delay(state.sent[i]))
                outcome.error = _exchange_error(status, body, chunk[i].name, answer.request_id, retryable=True)
                again.append(i)
                continue
            if status >= 400:
                error = _exchange_error(status, body, chunk[i].name, answer.request_id)
                if state.sent[i] > 1 and _already(error):
                    outcome.error = None
                    outcome.warnings.append(f"Resent after a lost answer; the first send took effect: {error}")
                else:
                    outcome.error = error
                continue
            outcome.error = _admin_errors(body, chunk[i].name, answer.request_id)
            outcome.objects.extend(o for o in body.get("value") or [] if isinstance(o, dict))
            outcome.warnings.extend(str(w) for w in body.get("@adminapi.warnings") or [])
            if body.get("@odata.nextLink"):
                state.follow.append((i, str(body["@odata.nextLink"])))
        self._pacer.accepted(len(pending) - len(again))
        again = [i for i in again if state.sent[i] < self.max_sends]  # the bound: the rest keep their errors
        self.stats.retries += len(again)
        if throttled:
            self._pacer.throttled(wait)
        # Jitter on top of Retry-After, so that concurrent batches don't come back in step.
        return again, (wait + self.backoff.delay(max(state.sent[i] for i in again)) * 0.5) if again and pause else 0.0

    async def _follow(self, outcome: CmdletOutcome, url: str) -> None:
        body = _body(outcome.cmdlet)
        link: str | None = url
        while link:
            answer, _ = await self._send(link, body, outcome.cmdlet.name, 1000, cmdlets=1)
            payload = answer.body if isinstance(answer.body, dict) else {}
            if answer.status >= 400:
                outcome.error = _exchange_error(answer.status, payload, outcome.cmdlet.name, answer.request_id)
                return
            outcome.error = outcome.error or _admin_errors(payload, outcome.cmdlet.name, answer.request_id)
            outcome.objects.extend(o for o in payload.get("value") or [] if isinstance(o, dict))
            next_link = payload.get("@odata.nextLink")
            link = str(next_link) if next_link else None

    # -- HTTP ----------------------------------------------------------------------------------------
    async def _send(
        self,
        url: str,
        body: Any,
        cmdlet_name: str,
        page_size: int,
        *,
        cmdlets: int,
        rebuild: Callable[[], Awaitable[Any]] | None = None,
        budget: int | None = None,
    ) -> tuple[_Answer, int]:
        """POST, resent under the floor's policy (at most `budget` sends, never more than MAX_SENDS). Returns the
        final answer (any status but 401/403) and how many times it was sent.

        A token the service no longer honours (401, error="invalid_token") is replaced and the request resent
        once (every cmdlet the product sends is safe to repeat; a $batch body is rebuilt with `rebuild`, its items
        carry their own Authorization); a new token refused again is an authentication failure (TransportError)."""
        sending = _Sending(json.dumps(body, default=str).encode())
        try:
            async for attempt in sends(self.backoff, self.stop, max_sends=budget or self.max_sends):
                with attempt:
                    answer = await self._send_once(url, sending, cmdlet_name, page_size, cmdlets, rebuild)
                    return answer, sending.sends
        except Again as last:
            status = last.answer.status if isinstance(last.answer, _Answer) else None
            raise TransportError(
                f"{self.side}: {cmdlet_name} still failing after {sending.sends} attempts ({last.reason})",
                status=status,
            ) from None
        raise AssertionError("unreachable")

    async def _send_once(
        self,
        url: str,
        sending: _Sending,
        cmdlet_name: str,
        page_size: int,
        cmdlets: int,
        rebuild: Callable[[], Awaitable[Any]] | None,
    ) -> _Answer:
        """One POST: its answer, or Again (send it again), or TransportError."""
        batch = url.endswith("$batch")
        sending.sends += 1
        if sending.sends > 1:
            self.stats.retries += 1
        headers = await self._headers(cmdlet_name, page_size)
        if batch:
            headers["Prefer"] = CONTINUE_ON_ERROR
        await self._limiter.acquire()
        self.stats.peak_concurrency = max(self.stats.peak_concurrency, self._limiter.in_flight)
        self.stats.requests += 1
        self.stats.cmdlets += cmdlets
        if batch:
            self.stats.batches += 1
        throttled = False
        answer: _Answer | None = None
        delay: float | None = None
        try:
            response = await self._client.post(url, content=sending.content, headers=headers)
            raw = response.content
        except httpx.TransportError as exc:
            self.stats.transient += 1
            raise Again(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from exc
        else:
            rid = response.headers.get("request-id") or headers["client-request-id"]
            try:
                parsed: Any = json.loads(raw) if raw else {}
            except ValueError:
                parsed = {"error": {"code": str(response.status_code), "message": raw[:500].decode("utf-8", "replace")}}
            answer = _Answer(response.status_code, parsed, response.headers, rid)
            if response.status_code == 429:
                throttled = True
                self.stats.throttled += 1
                delay = retry_after(response.headers.get("retry-after"))
                if self.on_throttle:
                    self.on_throttle(delay if delay is not None else 0.0)
            elif response.status_code in (503, 504):
                self.stats.transient += 1
                delay = retry_after(response.headers.get("retry-after"))
        finally:
            ok = answer is not None and answer.status < 400
            await self._limiter.release(throttled=throttled, ok=ok)
        failure = f"HTTP {answer.status}"
        if 300 <= answer.status < 400:
            self._forget_region()
            location = answer.headers.get("location") or "no Location"
            raise TransportError(
                f"{self.side}: HTTP {answer.status} for {cmdlet_name}, redirected to {location}: not followed, "
                "so nothing is confirmed (a redirected POST must not be re-sent blindly)",
                status=answer.status,
            )
        if not sending.renewed and exchange_token_refused(answer.status, answer.headers):
            sending.renewed = True
            self.stats.token_resends += 1
            await self._access_token(refused=headers["Authorization"][7:])
            if rebuild is not None:
                sending.content = json.dumps(await rebuild(), default=str).encode()
            raise Again("token refused", delay=0.0, answer=answer)
        if answer.status in (401, 403):
            message = _error_text(answer.body) or failure
            raise TransportError(
                f"{self.side}: {failure} for {cmdlet_name}: {message}", status=answer.status, auth=True
            )
        if answer.status not in RETRYABLE_STATUS:
            return answer
        raise Again(failure, delay=delay, answer=answer)

    async def _headers(self, cmdlet_name: str, page_size: int, *, item: bool = False) -> dict[str, str]:
        """The header set of a request; a $batch item carries the same set, with continue-on-error added."""
        token = await self._access_token()
        prefer = f"odata.maxpagesize={max(1, min(page_size, 1000))}"
        return {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json; charset=utf-8",
            "Accept": "application/json",
            "X-ResponseFormat": "json",
            "X-AnchorMailbox": self._anchor_mailbox(token),
            "X-CmdletName": cmdlet_name,
            "X-ClientApplication": "m365archive",
            "Prefer": f"{prefer};{CONTINUE_ON_ERROR}" if item else prefer,
            "connection-id": self._connection_id,
            "client-request-id": str(uuid.uuid4()),
        }

    async def _access_token(self, *, refused: str | None = None) -> str:
        """The cached token, refreshed 300 s before its expiry; after the service refused `refused`, a new one
        (a claims request for a token issued now, so the credential skips its cache), once for all requests
        that saw the same refusal."""
        async with self._token_lock:
            if refused is not None and self._token is not None and self._token[0] != refused:
                return self._token[0]  # another request has replaced it already
            if refused is not None or self._token is None or self._token[1] - 300 < time.time():
                options = {"claims": fresh_token_claims()} if refused is not None else {}
                try:
                    access = await self._credential.get_token(self.scope, **options)
                except Exception as exc:  # azure-identity's ClientAuthenticationError and its kin
                    raise TokenUnavailable(f"{self.side}: could not get a token for {self.scope}: {exc}") from exc
                self._token = (str(access.token), float(access.expires_on))
            return self._token[0]

    def _anchor_mailbox(self, token: str) -> str:
        if self._anchor is None:
            self._anchor = anchor_for(token_claims(token), self.tenant_id)
        return self._anchor


# -- helpers -------------------------------------------------------------------------------------------


def _body(cmdlet: Cmdlet) -> dict[str, Any]:
    return {"CmdletInput": {"CmdletName": cmdlet.name, "Parameters": dict(cmdlet.parameters)}}


def anchor_for(claims: Mapping[str, Any], tenant_id: str) -> str:
    """X-AnchorMailbox for a token: the signed-in user's UPN, or for an app-only token the module's system
    mailbox in the tenant (an app has no mailbox; its display name is not a user)."""
    upn = claims.get("upn") or claims.get("unique_name")
    if upn and "@" in str(upn) and claims.get("idtyp") != "app":
        return f"UPN:{upn}"
    return f"{APP_ANCHOR}{claims.get('tid') or tenant_id}"


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        return {}


def _admin_errors(payload: Any, cmdlet: str, request_id: str | None) -> ExchangeError | None:
    """`@adminapi.errors` in a 200: non-terminating errors the module writes as error records. Each entry is a
    string (`ExNNNN|Exception|text` like error details) or an object with a message."""
    errors = payload.get("@adminapi.errors") if isinstance(payload, dict) else None
    if not errors:
        return None
    texts = [str(e.get("message") or e.get("Message") or e) if isinstance(e, dict) else str(e) for e in errors]
    category = ""
    messages = []
    for text in texts:
        parts = text.split("|", 2)
        if len(parts) == 3 and "." in parts[1]:
            category = category or parts[1].rsplit(".", 1)[-1]
            messages.append(parts[2])
        else:
            messages.append(text)
    return ExchangeError(
        "; ".join(messages), cmdlet=cmdlet, category=category or "AdminApiError", status=200, request_id=request_id
    )


def parse_error(payload: Any) -> tuple[str, str, str]:
    """(code, category, message) from an admin API error body.

    Exchange puts "Ex6F9304|Microsoft.Exchange...ManagementObjectNotFoundException|<text>" in
    error.details[].message (and "|<exception>|<text>" in error.message); the category is the
    exception's short name.
    """
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        return "", "", str(payload)[:500] if payload else ""
    code = str(error.get("code") or "")
    candidates: list[str] = []
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and detail.get("message"):
            candidates.append(str(detail["message"]))
    if error.get("message"):
        candidates.append(str(error["message"]))
    for text in candidates:
        parts = text.split("|", 2)
        if len(parts) == 3 and "." in parts[1]:
            return code, parts[1].rsplit(".", 1)[-1], parts[2]
    return code, code, candidates[0] if candidates else code


def _error_text(payload: Any) -> str:
    return parse_error(payload)[2]


def _exchange_error(
    status: int, payload: Any, cmdlet: str, request_id: str | None, *, retryable: bool = False
) -> ExchangeError:
    _code, category, message = parse_error(payload)
    return ExchangeError(
        message or f"HTTP {status}",
        cmdlet=cmdlet,
        category=category,
        status=status,
        request_id=request_id,
        retryable=retryable or status in RETRYABLE_STATUS,
    )


def _already(error: ExchangeError) -> bool:
    text = error.message.lower()
    return "already" in text
