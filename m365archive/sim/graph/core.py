"""Graph plumbing: the request context, replies, errors, rendering, `$select`/`$filter`, paging, dispatch."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from m365archive.sim.graph.permissions import denied
from m365archive.sim.graph_query import Cursors, Filter, FilterError, Getter, parse_filter
from m365archive.sim.http import check_bearer, graph_error, request_id
from m365archive.sim.load import TokenBucket, retry_after_header
from m365archive.sim.state import (
    TenantState,
)

PREFIX = "/v1.0"
_ROLE_NS = uuid.UUID("0d5c1b3e-7f0a-4b51-9a55-5e2d1c7e0a11")


class GraphFail(Exception):
    """An error reply: rendered in Graph's error shape."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def not_found(key: str) -> GraphFail:
    return GraphFail(
        404,
        "Request_ResourceNotFound",
        f"Resource '{key}' does not exist or one of its queried reference-property objects are not present.",
    )


def bad_request(message: str, code: str = "Request_BadRequest") -> GraphFail:
    return GraphFail(400, code, message)


def invalid_value(prop: str, resource: str) -> GraphFail:
    return bad_request(f"Invalid value specified for property '{prop}' of resource '{resource}'.")


@dataclass
class Ctx:
    """One request (direct or a `$batch` item) as the handlers see it."""

    request: Request
    method: str
    path: str  # relative to /v1.0, decoded, e.g. "/users/adele@contoso.com"
    params: dict[str, str]
    query: dict[str, str]  # OData option names lower-cased ("$select")
    headers: dict[str, str]  # lower-case names
    body: Any
    base: str  # "http://127.0.0.1:PORT/v1.0"

    @property
    def eventual(self) -> bool:
        return self.headers.get("consistencylevel", "").lower() == "eventual"

    @property
    def count(self) -> bool:
        return self.query.get("$count", "").lower() == "true"


@dataclass
class Reply:
    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Ctx], Reply]


def _iso(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def render(obj: Any, fields: dict[str, Getter], select: Iterable[str]) -> dict[str, Any]:
    return {name: fields[name](obj) for name in select}


def _query(raw: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        out[key.lower() if key.startswith("$") else key] = value
    return out


class GraphCore:
    """Plumbing and query helpers shared by every area's handlers (composed into `GraphService`)."""

    state: TenantState
    cursors: Cursors
    bucket: TokenBucket
    sp_fields: dict[str, Getter]
    table: list[tuple[str, dict[str, Handler]]]
    _routes: list[Route]

    # -- plumbing --------------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        for path, handlers in self.table:
            self._routes.append(
                Route(PREFIX + path, self._endpoint(handlers), methods=list(handlers), name=f"graph:{path}")
            )
        out: list[BaseRoute] = list(self._routes)
        out.append(Route(PREFIX + "/{rest:path}", self._unknown, methods=None, name="graph:unknown-segment"))
        return out

    def _endpoint(self, handlers: dict[str, Handler]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            denied = check_bearer(request, self.state, "graph")
            if denied:
                return graph_error(request, self.state, denied[0], "InvalidAuthenticationToken", denied[1])
            raw = await request.body()
            try:
                body = json.loads(raw) if raw.strip() else None
            except ValueError:
                return graph_error(
                    request,
                    self.state,
                    400,
                    "BadRequest",
                    "Unable to read JSON request payload. Please ensure Content-Type header is set and "
                    "payload is of valid JSON format.",
                )
            ctx = Ctx(
                request=request,
                method=request.method,
                path=request.url.path[len(PREFIX) :],
                params=dict(request.path_params),
                query=_query(request.url.query),
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
                base=str(request.base_url).rstrip("/") + PREFIX,
            )
            reply = self.run(handlers[request.method], ctx, throttle=ctx.path != "/$batch")
            return self._response(request, reply)

        return endpoint

    async def _unknown(self, request: Request) -> Response:
        denied = check_bearer(request, self.state, "graph")
        if denied:
            return graph_error(request, self.state, denied[0], "InvalidAuthenticationToken", denied[1])
        if self.match(request.method, request.url.path[len(PREFIX) :]) == "method":
            return graph_error(
                request,
                self.state,
                405,
                "Request_BadRequest",
                "Specified HTTP method is not allowed for the request target.",
            )
        segment = request.path_params.get("rest", "").split("/")[0]
        return graph_error(request, self.state, 400, "BadRequest", f"Resource not found for the segment '{segment}'.")

    def run(self, handler: Handler, ctx: Ctx, *, throttle: bool = True) -> Reply:
        if throttle:
            wait = self.bucket.take()
            if wait is not None:
                return self._fail_reply(
                    ctx,
                    GraphFail(
                        429,
                        "TooManyRequests",
                        "Too many requests.",
                        {"Retry-After": retry_after_header(wait)},
                    ),
                )
        refusal = denied(self.state, getattr(ctx.request.state, "token_claims", None), ctx.method, ctx.path, ctx.body)
        if refusal is not None:
            return self._fail_reply(ctx, GraphFail(403, "Authorization_RequestDenied", refusal))
        try:
            with self.state.lock:
                return handler(ctx)
        except FilterError as exc:
            return self._fail_reply(ctx, GraphFail(400, exc.code, exc.message))
        except GraphFail as exc:
            return self._fail_reply(ctx, exc)

    def _fail_reply(self, ctx: Ctx, exc: GraphFail) -> Reply:
        response = graph_error(ctx.request, self.state, exc.status, exc.code, exc.message, exc.headers)
        return Reply(exc.status, json.loads(bytes(response.body)), dict(exc.headers))

    def _response(self, request: Request, reply: Reply) -> Response:
        headers = {"request-id": request_id(request), **reply.headers}
        if reply.body is None:
            return Response(status_code=reply.status, headers=headers)
        return JSONResponse(reply.body, status_code=reply.status, headers=headers)

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | str | None:
        """The handler for a path relative to /v1.0; "method" when only the method is wrong."""
        wrong_method = False
        for route in self._routes:
            m = route.path_regex.match(PREFIX + path)
            if not m:
                continue
            handlers = next(h for p, h in self.table if PREFIX + p == route.path)
            if method in handlers:
                return handlers[method], m.groupdict()
            wrong_method = True
        return "method" if wrong_method else None

    # -- query helpers -----------------------------------------------------------------------------
    def select(self, ctx: Ctx, fields: dict[str, Getter], type_name: str, default: Iterable[str]) -> list[str]:
        raw = ctx.query.get("$select")
        if not raw:
            return list(default)
        names = [n.strip() for n in raw.split(",") if n.strip()]
        for name in names:
            if name not in fields:
                raise bad_request(
                    f"Could not find a property named '{name}' on type 'microsoft.graph.{type_name}'.",
                    "BadRequest",
                )
        return names

    def filter(self, ctx: Ctx, fields: dict[str, Getter], type_name: str) -> Filter | None:
        raw = ctx.query.get("$filter")
        if not raw:
            return None
        flt = parse_filter(raw, fields, type_name)
        if flt.advanced and not (ctx.eventual and ctx.count):
            prop = flt.advanced_property or sorted(flt.properties)[0]
            raise bad_request(
                f"Unsupported or invalid query filter clause specified for property '{prop}' "
                f"of resource '{type_name}'.",
                "Request_UnsupportedQuery",
            )
        return flt

    def page(
        self,
        ctx: Ctx,
        context: str,
        compute: Callable[[], list[Any]],
        render_one: Callable[[Any], dict[str, Any]],
        *,
        select: list[str] | None = None,
        directory: bool = True,
    ) -> Reply:
        """A collection reply: `$top` (max 999), `$count`, `@odata.nextLink` with a `$skiptoken`."""
        raw_top = ctx.query.get("$top")
        top = 100
        if raw_top is not None:
            try:
                top = int(raw_top)
            except ValueError:
                raise bad_request(
                    f"Invalid page size specified: '{raw_top}'. Must be between 1 and 999 inclusive."
                ) from None
            if not 1 <= top <= 999:
                raise bad_request(f"Invalid page size specified: '{raw_top}'. Must be between 1 and 999 inclusive.")
        if ctx.count and directory and not ctx.eventual:
            raise bad_request("$count is not currently supported.")
        token = ctx.query.get("$skiptoken")
        items, next_token, total = self.cursors.page(None if token else compute(), token, top)
        body: dict[str, Any] = {"@odata.context": self.context(ctx, context, select)}
        if ctx.count and directory:
            body["@odata.count"] = total
        if next_token:
            pairs = [(k, v) for k, v in ctx.query.items() if k != "$skiptoken"] + [("$skiptoken", next_token)]
            query = urlencode(pairs, quote_via=quote, safe="$,'()")
            body["@odata.nextLink"] = f"{ctx.base}{quote(ctx.path, safe='/$()=,@')}?{query}"
        body["value"] = [render_one(item) for item in items]
        return Reply(200, body)

    def context(self, ctx: Ctx, what: str, select: list[str] | None = None, entity: bool = False) -> str:
        sel = f"({','.join(select)})" if select and ctx.query.get("$select") else ""
        return f"{ctx.base}/$metadata#{what}{sel}{'/$entity' if entity else ''}"

    def body_object(self, ctx: Ctx) -> dict[str, Any]:
        if not isinstance(ctx.body, dict):
            raise bad_request("Empty Payload. JSON content expected.", "BadRequest")
        return ctx.body
