"""The simulated tenant as one ASGI application (Starlette), served by uvicorn.

Layout of one simulator URL (clients configure themselves from `GET /`):

Security & Compliance is reached by its real host names (hosts.py): the discovery document's `hostMap`
sends them to this origin with the name in the Host header; the front door redirects to the tenant's
regional host, whose requests are served by the /scc mount below.

    /                                   discovery document
    /v1.0/...                           Microsoft Graph v1.0 subset       (graph/)
    /adminapi/beta/{tenant}/...         Exchange Online admin API         (exchange/)
    /scc/adminapi/beta/{tenant}/...     Security & Compliance admin API   (exchange/)
    /common/oauth2/authorize            admin consent page                (consent.py)
    /{tenant}/oauth2/v2.0/token         token endpoint                    (tokens.py)
    /PowerShell                         on-premises Exchange (WSMan/PSRP) (onprem.py)
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import IO, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from m365archive.sim import hosts
from m365archive.sim.load import FaultModel, Latency
from m365archive.sim.state import TenantState

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def service_of(path: str) -> str | None:
    if path.startswith("/v1.0"):
        return "graph"
    if path.startswith("/scc/adminapi"):
        return "compliance"
    if path.startswith("/adminapi"):
        return "exchange"
    if path.lower().startswith("/powershell"):
        return "onprem"
    return None


class RequestLog:
    """Every request, in memory (for tests) and optionally as JSON lines in a file."""

    def __init__(self, path: str | None = None) -> None:
        self.entries: list[dict[str, Any]] = []
        self._file: IO[str] | None = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115
        self._lock = threading.Lock()

    def add(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.entries.append(entry)
            if self._file:
                self._file.write(json.dumps(entry, default=str) + "\n")
                self._file.flush()

    def clear(self) -> None:
        with self._lock:
            self.entries.clear()

    def close(self) -> None:
        if self._file:
            self._file.close()
            self._file = None


class LoadMiddleware:
    """Latency, concurrency cap, faults and the request log, around every request."""

    def __init__(self, app: ASGIApp, state: TenantState, log: RequestLog) -> None:
        self.app = app
        self.state = state
        self.log = log
        k = state.knobs
        self.faults = FaultModel(k.fault_rate, k.fault_kinds, k.fault_methods, k.seed, k.fault_limit)
        self.latency = Latency(*k.latency_ms, seed=k.seed)
        ex = k.exchange_latency_ms or k.latency_ms
        self.exchange_latency = Latency(*ex, seed=k.seed + 7)
        self.in_flight: dict[str, int] = {}
        self.peak_in_flight: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        host = (_header(scope, b"host") or "").split(":")[0].lower()
        decision = hosts.route(self.state, host, scope["path"], scope.get("query_string", b"").decode("latin-1"))
        if decision.action == "serve":
            scope["path"] = decision.path
            scope["raw_path"] = decision.path.encode()
            scope["scheme"] = "https"  # the real host's scheme, for the URLs the simulator writes back
            if decision.prefix:
                scope.setdefault("state", {})["public_prefix"] = decision.prefix
        path: str = scope["path"]
        service = decision.service if decision.action in ("redirect", "refuse") else service_of(path)
        started = time.time()
        body_chunks: list[bytes] = []

        async def receive_logged() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                body_chunks.append(message.get("body", b""))
            return message

        status_holder: dict[str, int] = {}
        fault = self.faults.pick(method, path) if service in ("graph", "exchange", "compliance") else None
        k = self.state.knobs

        rid = _header(scope, b"client-request-id") or str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = rid

        logged = False

        def finish() -> None:
            """Log the request (once) before its last byte leaves: a client that has its answer finds it
            in the request log."""
            nonlocal logged
            if logged:
                return
            logged = True
            if service:
                self.in_flight[service] -= 1
            self._log(scope, method, path, service, started, body_chunks, status_holder, fault)

        async def send_logged(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"request-id" for name, _ in headers):
                    headers.append((b"request-id", rid.encode()))
                # Every answer is dated by the tenant's clock (the server's own Date header is off): clients that
                # reckon "days since" from the service's time see the simulated date, as against Microsoft.
                if not any(name.lower() == b"date" for name, _ in headers):
                    headers.append((b"date", email.utils.format_datetime(self.state.clock.now(), usegmt=True).encode()))
                message["headers"] = headers
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                finish()
            await send(message)

        delay = (self.exchange_latency if service in ("exchange", "compliance") else self.latency).draw()
        if delay:
            await asyncio.sleep(delay)
        if service:
            self.in_flight[service] = self.in_flight.get(service, 0) + 1
            self.peak_in_flight[service] = max(self.peak_in_flight.get(service, 0), self.in_flight[service])
        scope.setdefault("state", {})["in_flight"] = self.in_flight
        try:
            if decision.action in ("redirect", "refuse"):
                await _send_decision(decision, send_logged)
            elif fault and not (k.fault_after_commit and method in ("POST", "PATCH", "DELETE")):
                await self._send_fault(fault, send_logged, status_holder, finish)
            elif fault:
                # The write takes effect, then the gateway fails: the client can't tell.
                await self.app(scope, receive_logged, _discard_send)
                await self._send_fault(fault, send_logged, status_holder, finish)
            else:
                await self.app(scope, receive_logged, send_logged)
        finally:
            finish()

    async def _send_fault(
        self, fault: str, send: Send, status_holder: dict[str, int], finish: Callable[[], None]
    ) -> None:
        if fault == "reset":
            # Headers promise a body that never comes: the client sees the connection drop.
            status_holder["status"] = 0
            finish()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", b"1024"), (b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": b"{", "more_body": True})
            raise ConnectionResetError("simulated connection reset")
        if fault == "slow":
            await asyncio.sleep(self.state.clock.real_seconds(30.0))
            fault = "504"
        status = int(fault)
        text = "Service Unavailable" if status == 503 else "Gateway Timeout"
        body = json.dumps(
            {"error": {"code": "serviceNotAvailable" if status == 503 else "gatewayTimeout", "message": text}}
        ).encode()
        status_holder["status"] = status
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _log(
        self,
        scope: Scope,
        method: str,
        path: str,
        service: str | None,
        started: float,
        body_chunks: list[bytes],
        status_holder: dict[str, int],
        fault: str | None,
    ) -> None:
        raw = b"".join(body_chunks)
        body: Any = None
        if raw and service != "onprem":
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")[:2000]
        entry: dict[str, Any] = {
            "time": started,
            "method": method,
            "host": (_header(scope, b"host") or "").split(":")[0].lower(),
            "path": path,
            "query": scope.get("query_string", b"").decode("latin-1"),
            "service": service,
            "status": status_holder.get("status", 500),
        }
        # What the request-log check reads: who sent it, and the headers the real services route and batch by.
        for field, name in (
            ("client", b"x-clientapplication"),
            ("anchor", b"x-anchormailbox"),
            ("prefer", b"prefer"),
            ("userAgent", b"user-agent"),
        ):
            value = _header(scope, name)
            if value is not None:
                entry[field] = value
        if body is not None:
            entry["body"] = redact(body)
        if fault:
            entry["fault"] = fault
        notes = scope.get("state", {}).get("log_notes")
        if notes:
            entry.update(notes)
        self.log.add(entry)


async def _send_decision(decision: hosts.Decision, send: Send) -> None:
    """The front door's redirect, or a host that does not serve the admin API."""
    headers = [(b"content-type", b"application/json")]
    if decision.action == "redirect":
        body = b""
        headers.append((b"location", decision.location.encode()))
    else:
        error = {"error": {"code": "NotFound", "message": decision.message}}
        body = json.dumps(error).encode()
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": decision.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


SECRET_KEYS = ("password", "secret", "credential", "authorization")


def redact(value: Any) -> Any:
    """The request log never keeps a secret (a password in a POST /users body, say)."""
    if isinstance(value, dict):
        return {
            k: "(redacted)" if any(s in k.lower() for s in SECRET_KEYS) and isinstance(v, str) else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


async def _discard_send(message: Message) -> None:
    return None


def discovery(state: TenantState, base_url: str) -> dict[str, Any]:
    return {
        # Real host names a client sends here (Host header kept): see hosts.py.
        "hostMap": hosts.host_map(state, base_url),
        "tenantId": state.tenant_id,
        "domain": state.domain,
        "displayName": state.display_name,
        "cloud": state.cloud,
        "services": {
            "graph": f"{base_url}/v1.0",
            # Exchange Online by its real host name (hostMap sends it here): a redirected tenant (knob
            # exchange_redirect) is served on another host the client must discover (hosts.py).
            "exchange": f"https://{hosts.exchange_front_door(state)}",
            "compliance": f"https://{hosts.front_door(state)}",
            "login": base_url,
            # Where the simulator's credential gets tokens (Entra's v2.0 token endpoint shape): sim/tokens.py.
            "token": f"{base_url}/{state.tenant_id}/oauth2/v2.0/token",
            "onprem": f"{base_url}/PowerShell",
        },
        "signedInUser": state.signed_in_user,
        "timeScale": state.clock.time_scale,
    }


def create_app(state: TenantState, log: RequestLog | None = None) -> Starlette:
    from m365archive.sim import consent, exchange, graph, onprem, tokens

    log = log or RequestLog()

    async def root(request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        return JSONResponse(discovery(state, base))

    routes: list[BaseRoute] = [Route("/", root, methods=["GET"])]
    for module in (graph, exchange, consent, onprem, tokens):
        routes.extend(module.routes(state))
    app = Starlette(routes=routes)
    app.state.tenant = state
    app.state.request_log = log

    wrapped = LoadMiddleware(app, state, log)
    app.state.load = wrapped
    return app


def asgi_with_load(app: Starlette) -> LoadMiddleware:
    load: LoadMiddleware = app.state.load
    return load
