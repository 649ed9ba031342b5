"""One connection to one tenant: endpoints, gateways, and the engine's Executor.

Endpoints come from the clouds table (real tenants) or from a simulator's discovery document
(`--sim URL`). Nothing here decides what to change; it sends what a plan says.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from m365archive.engine.plan import Operation, Wait
from m365archive.engine.runner import ExecResult
from m365archive.tenant.exchange import Cmdlet, CmdletOutcome, ExchangeRunner, TransportError, has_archive
from m365archive.tenant.graph_types import GraphError, GraphRequest
from m365archive.tenant.retry import Interrupted, StopSignal, poll
from m365archive.tenant.tokens import TokenUnavailable

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

    from m365archive.tenant.graph import GraphGateway


@dataclass(frozen=True)
class Endpoints:
    tenant_id: str
    domain: str
    cloud: str
    graph: str  # version root, e.g. https://graph.microsoft.com/v1.0
    exchange: str
    compliance: str
    login: str
    graph_scope: str
    exchange_scope: str
    compliance_scope: str
    simulator: bool = False
    onprem_url: str | None = None
    time_scale: float = 1.0  # a simulator's clock speed: client back-off delays scale with it
    # A simulator's host map: (host suffix, loopback origin). Requests for those hosts (and hosts under
    # them) go to the simulator with the real name in the Host header, so the client derives real host
    # names (the Security & Compliance regional host) exactly as against Microsoft.
    host_map: tuple[tuple[str, str], ...] = ()
    token_url: str | None = None  # a simulator's token endpoint (it issues the tokens its services accept)


def endpoints_for_cloud(cloud_name: str, tenant: str, domain: str | None) -> Endpoints:
    from m365archive.tenant.clouds import get_cloud

    cloud = get_cloud(cloud_name)
    return Endpoints(
        tenant_id=tenant,
        domain=domain or (tenant if "." in tenant else ""),
        cloud=cloud.name,
        graph=f"{cloud.graph}/v1.0",
        exchange=cloud.exchange,
        compliance=cloud.compliance,
        login=cloud.login_url,
        graph_scope=cloud.graph_scope,
        exchange_scope=cloud.exchange_scope,
        compliance_scope=cloud.compliance_scope,
    )


class SimulatorUnreachable(Exception):
    pass


def discover_simulator(url: str) -> Endpoints:
    """Read a simulated tenant's discovery document (`GET <url>/`).

    Hosts come from the simulator (loopback); token scopes from the clouds table, as for a real tenant,
    so the simulator's own audience table checks ours.
    """
    from m365archive.tenant.clouds import get_cloud

    try:
        doc = httpx.get(url.rstrip("/") + "/", timeout=10).json()
        services = doc["services"]
        cloud = get_cloud(doc.get("cloud", "global"))
        return Endpoints(
            tenant_id=doc["tenantId"],
            domain=doc["domain"],
            cloud=doc.get("cloud", "global"),
            graph=services["graph"],
            exchange=services["exchange"],
            compliance=services["compliance"],
            login=services["login"],
            graph_scope=cloud.graph_scope,
            exchange_scope=cloud.exchange_scope,
            compliance_scope=cloud.compliance_scope,
            simulator=True,
            onprem_url=services.get("onprem"),
            time_scale=float(doc.get("timeScale") or 1.0),
            host_map=tuple((str(k), str(v)) for k, v in (doc.get("hostMap") or {}).items()),
            token_url=services.get("token"),
        )
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        raise SimulatorUnreachable(f"no simulated tenant answers at {url} ({type(exc).__name__})") from None


class TenantSession:
    """Gateways for one tenant, and the Executor the runner sends plans through."""

    def __init__(
        self,
        endpoints: Endpoints,
        credential: AsyncTokenCredential,
        *,
        operator: str | None = None,
        app_only: bool = False,
        max_concurrency: int = 8,
        onprem: ExchangeRunner | None = None,
        onprem_factory: Callable[[], ExchangeRunner] | None = None,
        on_throttle: Callable[[float], None] | None = None,
    ) -> None:
        from m365archive.tenant.exchange_rest import MODULE_FILE_DISCOVERY, RestExchangeRunner
        from m365archive.tenant.graph import GraphGateway

        self.endpoints = endpoints
        self.credential = credential
        self.operator = operator or ""
        # Signed in as an application: the operator names the app, never a user (no mailbox, no role group member).
        self.app_only = app_only
        # Retry back-off is wall-clock (Graph SDK 3 s base, Exchange 0.5 s); a time-scaled simulator scales it too.
        scale = min(1.0, max(endpoints.time_scale, 0.001))
        # Set on Ctrl-C (`stop`): every pause before a resend, and every poll of a wait, ends at once.
        self.stop_signal = StopSignal()
        self.graph: GraphGateway = GraphGateway(
            endpoints.graph,
            credential,
            scopes=[endpoints.graph_scope],
            retry_delay=3.0 * scale,
            time_scale=scale,
            stop=self.stop_signal,
        )
        backoff_base, backoff_max = 0.5 * scale, 30.0 * scale
        host_map = dict(endpoints.host_map)
        # X-AnchorMailbox comes from the token (UPN of the user, or the system mailbox for an app): never from
        # a display name.
        self.exchange: ExchangeRunner = RestExchangeRunner(
            endpoints.exchange,
            endpoints.tenant_id,
            credential,
            scope=endpoints.exchange_scope,
            side="exchange-online",
            max_concurrency=max_concurrency,
            on_throttle=on_throttle,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            discover_region=True,  # some tenants are served by another host (exchange_rest.py)
            discovery_path=MODULE_FILE_DISCOVERY,
            host_map=host_map,
            stop=self.stop_signal,
        )
        self.compliance: ExchangeRunner = RestExchangeRunner(
            endpoints.compliance,
            endpoints.tenant_id,
            credential,
            scope=endpoints.compliance_scope,
            side="compliance",
            max_concurrency=max_concurrency,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            discover_region=True,
            host_map=host_map,
            stop=self.stop_signal,
        )
        self._onprem = onprem
        self._onprem_factory = onprem_factory

    @property
    def has_onprem(self) -> bool:
        """An [onprem] server is configured (nothing is built or signed in to by asking)."""
        return self._onprem is not None or self._onprem_factory is not None

    @property
    def onprem(self) -> ExchangeRunner | None:
        """The on-premises runner, built on first use: only commands that talk to on-premises Exchange
        need its password (from M365ARCHIVE_ONPREM_PASSWORD or the keyring)."""
        if self._onprem is None and self._onprem_factory is not None:
            self._onprem = self._onprem_factory()
        return self._onprem

    async def aclose(self) -> None:
        await self.graph.aclose()
        await self.exchange.aclose()
        await self.compliance.aclose()
        if self._onprem:
            await self._onprem.aclose()
        close = getattr(self.credential, "close", None)
        if close:
            await close()

    def runner_for(self, kind: str) -> ExchangeRunner:
        if kind == "compliance":
            return self.compliance
        if kind == "onprem":
            if self.onprem is None:
                raise RuntimeError("this change runs on on-premises Exchange, and no [onprem] server is configured")
            return self.onprem
        return self.exchange

    # -- Executor ------------------------------------------------------------------
    def stop(self) -> None:
        """The run is stopping (Ctrl-C): no pause ends in a resend, no wait polls again."""
        self.stop_signal.set()

    def batch_key(self, op: Operation) -> str | None:
        return op.kind if op.kind in ("exchange", "compliance", "onprem") else None

    async def execute(self, op: Operation, request: dict[str, Any]) -> ExecResult:
        if op.kind == "graph":
            return await self._graph(op, request)
        try:
            outcome = await self.runner_for(op.kind).invoke(_cmdlet(request))
        except TokenUnavailable:
            raise  # no token: nothing more can be sent (exit 5), not one failed change
        except Interrupted:
            return _interrupted()
        except TransportError as exc:
            return ExecResult(ok=False, error=f"not confirmed: {exc}")
        return _from_outcome(op, outcome)

    async def execute_many(self, ops: list[tuple[Operation, dict[str, Any]]]) -> list[ExecResult]:
        kind = ops[0][0].kind
        try:
            outcomes = await self.runner_for(kind).invoke_many([_cmdlet(req) for _, req in ops])
        except TokenUnavailable:
            raise
        except Interrupted:
            return [_interrupted() for _ in ops]
        except TransportError as exc:
            # The service kept failing: these changes are not confirmed; the next plan reads what happened.
            return [ExecResult(ok=False, error=f"not confirmed: {exc}") for _ in ops]
        return [_from_outcome(op, out) for (op, _), out in zip(ops, outcomes, strict=True)]

    async def _graph(self, op: Operation, request: dict[str, Any]) -> ExecResult:
        """One Graph change: resent under the floor's policy (tenant/retry.py, at most MAX_SENDS sends), a
        write right after a create also while what it names replicates ("does not exist", within a bound)."""
        req = GraphRequest(method=request["method"], path=request["path"], body=request.get("body"))
        try:
            response = await self.graph.send(req, resend=_safe_to_resend(op, req), lag=True)
        except Interrupted:
            return _interrupted()
        except GraphError as exc:
            transient = exc.status == 0 or exc.status >= 500
            # sent more than once: an earlier send may have created the object
            return await self._graph_failure(op, request, exc, transient, retried=exc.sends > 1)
        return ExecResult(ok=True, body=response.body, request_id=response.request_id)

    async def _graph_failure(
        self, op: Operation, request: dict[str, Any], exc: GraphError, transient: bool, retried: bool = False
    ) -> ExecResult:
        recover = request.get("on_conflict_get")
        if any(text in exc.message for text in op.ok_if_error) or (recover and transient):
            # The create may have taken effect before the error (the SDK retries POST on 503/504):
            # look before failing, so a retried create never leaves two objects or a false failure.
            body = None
            if recover:
                try:
                    body = (await self.graph.send(GraphRequest("GET", recover))).body
                except GraphError:
                    body = None
                if body is None:
                    return ExecResult(
                        ok=False, request_id=exc.request_id, error=f"{exc.status} {exc.code}: {exc.message}"
                    )
            foreign = req_is_create(request) and not (transient or retried)
            return ExecResult(ok=True, body=body, request_id=exc.request_id, already=True, foreign=foreign)
        return ExecResult(ok=False, request_id=exc.request_id, error=f"{exc.status} {exc.code}: {exc.message}")

    async def wait(self, wait: Wait, resolved_target: str, tick: Callable[[str], None]) -> bool:
        """Poll the service until it shows what `wait` waits for (the floor's poll policy); False at the
        timeout, and at once when the run is stopped (the runner tells a stop from a timeout)."""
        try:
            return await poll(
                lambda: self._condition(wait.kind, resolved_target),
                timeout=wait.timeout,
                stop=self.stop_signal,
                tick=lambda elapsed: tick(f"{wait.description} ({elapsed:.0f} s)"),
            )
        except Interrupted:
            return False

    async def _condition(self, kind: str, target: str) -> bool:
        if kind == "exchange-mailbox":
            outcome = await self.exchange.invoke(Cmdlet("Get-Mailbox", {"Identity": target}))
            return outcome.ok and bool(outcome.objects)
        if kind == "service-principal":
            return await self.graph.service_principal_by_app_id(target) is not None
        if kind == "service-principal-gone":
            return await self.graph.service_principal_by_app_id(target) is None
        if kind == "archive-active":
            outcome = await self.exchange.invoke(Cmdlet("Get-Mailbox", {"Identity": target}))
            return outcome.ok and bool(outcome.objects) and has_archive(outcome.objects[0])
        raise ValueError(f"unknown wait kind {kind}")


def req_is_create(request: dict[str, Any]) -> bool:
    """A POST to a collection (a create), not an action such as assignLicense."""
    return request.get("method") == "POST" and bool(request.get("on_conflict_get"))


def _safe_to_resend(op: Operation, req: GraphRequest) -> bool:
    """A write whose repetition is harmless: PATCH and DELETE set a state, assignLicense adds a licence
    the user may already hold, and a create that answers "already exists" is recognised (ok_if_error)."""
    return req.method in ("PATCH", "DELETE", "GET") or req.path.endswith("/assignLicense") or bool(op.ok_if_error)


def _interrupted() -> ExecResult:
    return ExecResult(
        ok=False,
        interrupted=True,
        error="stopped (Ctrl-C) before it was sent again: not confirmed (a new plan reads what happened)",
    )


def _cmdlet(request: dict[str, Any]) -> Cmdlet:
    return Cmdlet(request["cmdlet"], dict(request.get("parameters", {})))


def _from_outcome(op: Operation, outcome: CmdletOutcome) -> ExecResult:
    body = outcome.objects[0] if outcome.objects else None
    if outcome.error is None:
        return ExecResult(ok=True, body=body, request_id=outcome.request_id)
    if any(text in outcome.error.message for text in op.ok_if_error):
        return ExecResult(ok=True, body=body, request_id=outcome.request_id, already=True)
    category = f" ({outcome.error.category})" if outcome.error.category else ""
    return ExecResult(ok=False, request_id=outcome.request_id, error=f"{outcome.error.message}{category}")
