"""Simulated Microsoft Graph v1.0: the subset m365archive calls, answering as Graph does.

Every path served here exists in shared/specs/graph-v1.0-subset.openapi.json and every property
returned exists on its entity type in the v1.0 CSDL (tests/test_sim_graph_spec.py checks both).

Handlers are plain functions `(Ctx) -> Reply` kept in one table; the Starlette routes and the
`$batch` endpoint both dispatch through that table, so a batched request runs exactly the code a
direct one does. Errors are raised as `GraphFail` and rendered with `sim.http.graph_error`.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from m365archive.sim.graph_query import Cursors, Filter, FilterError, Getter, parse_filter
from m365archive.sim.http import check_bearer, graph_error, request_id
from m365archive.sim.load import TokenBucket, retry_after_header
from m365archive.sim.state import (
    CONNECTOR_APP_ID,
    EXCHANGE_APP_ID,
    GRAPH_APP_ID,
    AppRoleAssignment,
    OAuth2PermissionGrant,
    RoleAssignment,
    ServicePrincipal,
    TenantState,
    User,
    new_id,
)

PREFIX = "/v1.0"
MAX_BATCH = 20
MICROSOFT_TENANT = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"  # owner of first-party applications
KNOWN_APPS: dict[str, str] = {
    CONNECTOR_APP_ID: "Third-party data connector",
    GRAPH_APP_ID: "Microsoft Graph",
    EXCHANGE_APP_ID: "Office 365 Exchange Online",
}
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
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


# -- entity renderers ----------------------------------------------------------------------------

USER_FIELDS: dict[str, Getter] = {
    "id": lambda u: u.id,
    "userPrincipalName": lambda u: u.user_principal_name,
    "displayName": lambda u: u.display_name,
    "mail": lambda u: u.mail,
    "mailNickname": lambda u: u.mail_nickname,
    "usageLocation": lambda u: u.usage_location,
    "accountEnabled": lambda u: u.account_enabled,
    "onPremisesSyncEnabled": lambda u: u.on_premises_sync_enabled,
    "assignedLicenses": lambda u: [
        {"disabledPlans": list(u.disabled_plans.get(s, [])), "skuId": s} for s in u.assigned_licenses
    ],
    "createdDateTime": lambda u: _iso(u.created),
    "userType": lambda u: u.user_type,
    "proxyAddresses": lambda u: [f"SMTP:{u.mail}"] if u.mail else [],
    "businessPhones": lambda u: [],
    "otherMails": lambda u: [],
    "givenName": lambda u: None,
    "surname": lambda u: None,
    "jobTitle": lambda u: None,
    "department": lambda u: None,
    "companyName": lambda u: None,
    "employeeId": lambda u: None,
    "mobilePhone": lambda u: None,
    "officeLocation": lambda u: None,
    "preferredLanguage": lambda u: None,
    "onPremisesImmutableId": lambda u: None,
    "passwordPolicies": lambda u: None,
    "passwordProfile": lambda u: None,  # never returned: Graph answers null
    "deletedDateTime": lambda u: None,
}
USER_DEFAULT = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)
USER_FILTERABLE = (
    "id",
    "userPrincipalName",
    "mail",
    "displayName",
    "mailNickname",
    "usageLocation",
    "accountEnabled",
    "onPremisesSyncEnabled",
    "assignedLicenses",
    "userType",
    "proxyAddresses",
    "givenName",
    "surname",
)
USER_FILTER_FIELDS = {name: USER_FIELDS[name] for name in USER_FILTERABLE}
# properties a synced user's source of authority (on-premises AD) owns
SYNCED_ATTRIBUTES = {"displayName", "mailNickname", "userPrincipalName", "mail", "accountEnabled"}
USER_READ_ONLY = {"id", "createdDateTime", "assignedLicenses", "onPremisesSyncEnabled", "deletedDateTime"}


def render(obj: Any, fields: dict[str, Getter], select: Iterable[str]) -> dict[str, Any]:
    return {name: fields[name](obj) for name in select}


def sp_fields(state: TenantState) -> dict[str, Getter]:
    return {
        "id": lambda s: s.id,
        "appId": lambda s: s.app_id,
        "displayName": lambda s: s.display_name,
        "appDisplayName": lambda s: s.display_name,
        "servicePrincipalType": lambda s: s.service_principal_type,
        "accountEnabled": lambda s: s.account_enabled,
        "servicePrincipalNames": lambda s: [s.app_id],
        "appOwnerOrganizationId": lambda s: MICROSOFT_TENANT if s.app_id in KNOWN_APPS else state.tenant_id,
        "signInAudience": lambda s: "AzureADMultipleOrgs",
        "tags": lambda s: [],
        "deletedDateTime": lambda s: None,
    }


GRANT_FIELDS: dict[str, Getter] = {
    "id": lambda g: g.id,
    "clientId": lambda g: g.client_id,
    "consentType": lambda g: g.consent_type,
    "principalId": lambda g: g.principal_id,
    "resourceId": lambda g: g.resource_id,
    "scope": lambda g: g.scope,
}
APP_ROLE_FIELDS: dict[str, Getter] = {
    "id": lambda a: a.id,
    "appRoleId": lambda a: a.app_role_id,
    "createdDateTime": lambda a: _iso(a.created),
    "deletedDateTime": lambda a: None,
    "principalDisplayName": lambda a: a.principal_display_name,
    "principalId": lambda a: a.principal_id,
    "principalType": lambda a: "ServicePrincipal",
    "resourceDisplayName": lambda a: a.resource_display_name,
    "resourceId": lambda a: a.resource_id,
}
ROLE_DEF_FIELDS: dict[str, Getter] = {
    "id": lambda r: r.id,
    "templateId": lambda r: r.id,
    "displayName": lambda r: r.display_name,
    "description": lambda r: r.display_name,
    "isBuiltIn": lambda r: r.is_built_in,
    "isEnabled": lambda r: True,
    "resourceScopes": lambda r: ["/"],
    "rolePermissions": lambda r: [],
    "version": lambda r: "1",
}
ROLE_ASSIGNMENT_FIELDS: dict[str, Getter] = {
    "id": lambda a: a.id,
    "principalId": lambda a: a.principal_id,
    "roleDefinitionId": lambda a: a.role_definition_id,
    "directoryScopeId": lambda a: a.directory_scope_id,
    "appScopeId": lambda a: None,
    "condition": lambda a: None,
}
GROUP_FIELDS: dict[str, Getter] = {
    "id": lambda g: g.id,
    "displayName": lambda g: g.display_name,
    "deletedDateTime": lambda g: None,
}


def password_ok(password: Any) -> bool:
    """Entra ID's rule: 8-256 characters, three of lower, upper, digit, symbol."""
    if not isinstance(password, str) or not 8 <= len(password) <= 256:
        return False
    classes = [
        any(c.islower() for c in password),
        any(c.isupper() for c in password),
        any(c.isdigit() for c in password),
        any(not c.isalnum() for c in password),
    ]
    return sum(classes) >= 3


WEAK_PASSWORD = (
    "The specified password does not comply with password complexity requirements. Please provide a different password."
)


class GraphService:
    """The handlers for one tenant, and the routes that expose them."""

    def __init__(self, state: TenantState) -> None:
        self.state = state
        self.cursors = Cursors()
        self.bucket = TokenBucket(state.knobs.graph_rate, state.knobs.graph_burst)
        self.sp_fields = sp_fields(state)
        self.table: list[tuple[str, dict[str, Handler]]] = [
            ("/$batch", {"POST": self.batch}),
            ("/users", {"GET": self.list_users, "POST": self.create_user}),
            ("/users/{user_id}", {"GET": self.get_user, "PATCH": self.update_user}),
            ("/users/{user_id}/assignLicense", {"POST": self.assign_license}),
            ("/subscribedSkus", {"GET": self.list_skus}),
            ("/roleManagement/directory/roleDefinitions", {"GET": self.list_role_definitions}),
            (
                "/roleManagement/directory/roleAssignments",
                {"GET": self.list_role_assignments, "POST": self.create_role_assignment},
            ),
            ("/directoryRoles", {"GET": self.list_directory_roles, "POST": self.activate_directory_role}),
            ("/directoryRoles(roleTemplateId='{role_template_id}')", {"GET": self.get_directory_role}),
            (
                "/directoryRoles/{directory_role_id}/members/$ref",
                {
                    "GET": self.list_role_member_refs,
                    "POST": self.add_role_member,
                    "DELETE": self.remove_role_member,
                },
            ),
            ("/groups/{group_id}/members", {"GET": self.group_members}),
            ("/groups/{group_id}/members/graph.user", {"GET": self.group_member_users}),
            ("/groups/{group_id}/transitiveMembers", {"GET": self.group_transitive_members}),
            ("/groups/{group_id}/transitiveMembers/graph.user", {"GET": self.group_transitive_users}),
            ("/servicePrincipals", {"GET": self.list_sps, "POST": self.create_sp}),
            (
                "/servicePrincipals(appId='{app_id}')",
                {"GET": self.get_sp, "PATCH": self.update_sp, "DELETE": self.delete_sp},
            ),
            (
                "/servicePrincipals/{service_principal_id}",
                {"GET": self.get_sp, "PATCH": self.update_sp, "DELETE": self.delete_sp},
            ),
            (
                "/servicePrincipals/{service_principal_id}/oauth2PermissionGrants",
                {"GET": self.sp_grants},
            ),
            (
                "/servicePrincipals/{service_principal_id}/appRoleAssignments",
                {"GET": self.sp_app_role_assignments, "POST": self.create_app_role_assignment},
            ),
            ("/oauth2PermissionGrants", {"GET": self.list_grants, "POST": self.create_grant}),
        ]
        self._routes: list[Route] = []

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

    # -- users -----------------------------------------------------------------------------------
    def user(self, key: str) -> User:
        user = self.state.find_user(key)
        if user is None:
            raise not_found(key)
        return user

    def user_json(self, ctx: Ctx, user: User, select: list[str] | None = None) -> dict[str, Any]:
        return render(user, USER_FIELDS, select or USER_DEFAULT)

    def list_users(self, ctx: Ctx) -> Reply:
        select = self.select(ctx, USER_FIELDS, "user", USER_DEFAULT)
        flt = self.filter(ctx, USER_FILTER_FIELDS, "User")
        users = self.state.users

        def compute() -> list[Any]:
            if flt is None:
                return list(users.values())
            upn = flt.equals.get("userPrincipalName")
            candidates: Iterable[User] = users.values()
            if isinstance(upn, str):
                found = self.state.user_by_upn(upn)
                candidates = [found] if found else []
            return [u for u in candidates if flt.predicate(u)]

        return self.page(ctx, "users", compute, lambda u: render(u, USER_FIELDS, select), select=select)

    def get_user(self, ctx: Ctx) -> Reply:
        select = self.select(ctx, USER_FIELDS, "user", USER_DEFAULT)
        user = self.user(ctx.params["user_id"])
        body = {"@odata.context": self.context(ctx, "users", select, entity=True)}
        body.update(render(user, USER_FIELDS, select))
        return Reply(200, body)

    def check_upn_domain(self, upn: str) -> None:
        domain = upn.rsplit("@", 1)[-1].lower() if "@" in upn else ""
        allowed = {self.state.domain.lower(), *(d.lower() for d in self.state.verified_domains)}
        if "@" not in upn or not upn.split("@")[0] or domain not in allowed:
            raise bad_request(
                "The domain portion of the userPrincipalName property is invalid. "
                "You must use one of the verified domain names in your organization."
            )

    def check_unknown_user_props(self, body: dict[str, Any]) -> None:
        for key in body:
            if key.startswith("@"):
                continue
            if key not in USER_FIELDS:
                raise bad_request(
                    f"The property '{key}' does not exist on type 'microsoft.graph.user'. Make sure to only "
                    "use property names that are defined by the type or mark the type as open type.",
                    "BadRequest",
                )

    def create_user(self, ctx: Ctx) -> Reply:
        body = self.body_object(ctx)
        self.check_unknown_user_props(body)
        for prop in ("accountEnabled", "displayName", "mailNickname", "userPrincipalName", "passwordProfile"):
            if body.get(prop) is None or body.get(prop) == "":
                raise invalid_value(prop, "User")
        if not isinstance(body["accountEnabled"], bool):
            raise invalid_value("accountEnabled", "User")
        profile = body["passwordProfile"]
        if not isinstance(profile, dict) or not profile.get("password"):
            raise invalid_value("passwordProfile", "User")
        upn = str(body["userPrincipalName"])
        self.check_upn_domain(upn)
        if not password_ok(profile["password"]):
            raise bad_request(WEAK_PASSWORD)
        usage = body.get("usageLocation")
        if usage is not None and not _usage_location_ok(usage):
            raise invalid_value("usageLocation", "User")
        if self.state.user_by_upn(upn):
            raise bad_request("Another object with the same value for property userPrincipalName already exists.")
        user = self.state.add_user(
            User(
                id=new_id(),
                user_principal_name=upn,
                display_name=str(body["displayName"]),
                mail_nickname=str(body["mailNickname"]),
                usage_location=usage.upper() if isinstance(usage, str) else None,
                account_enabled=body["accountEnabled"],
                password=str(profile["password"]),
                created=self.state.clock.now(),
            )
        )
        reply = {"@odata.context": self.context(ctx, "users", entity=True)}
        reply.update(self.user_json(ctx, user))
        return Reply(201, reply, {"Location": f"{ctx.base}/users/{user.id}"})

    def update_user(self, ctx: Ctx) -> Reply:
        user = self.user(ctx.params["user_id"])
        body = self.body_object(ctx)
        self.check_unknown_user_props(body)
        for key in body:
            if key in USER_READ_ONLY:
                raise bad_request(f"Property '{key}' is read-only and cannot be set.", "BadRequest")
        if user.on_premises_sync_enabled and SYNCED_ATTRIBUTES & set(body):
            raise bad_request(
                "Unable to update the specified properties for on-premises mastered Directory Sync objects "
                "or objects currently undergoing migration."
            )
        # validate everything before changing anything
        if "accountEnabled" in body and not isinstance(body["accountEnabled"], bool):
            raise invalid_value("accountEnabled", "User")
        if "displayName" in body and not (isinstance(body["displayName"], str) and body["displayName"]):
            raise invalid_value("displayName", "User")
        if "usageLocation" in body:
            usage = body["usageLocation"]
            if usage is None and user.assigned_licenses:
                raise invalid_value("usageLocation", "User")
            if usage is not None and not _usage_location_ok(usage):
                raise invalid_value("usageLocation", "User")
        if "passwordProfile" in body:
            profile = body["passwordProfile"]
            if not isinstance(profile, dict):
                raise invalid_value("passwordProfile", "User")
            if "password" in profile and not password_ok(profile["password"]):
                raise bad_request(WEAK_PASSWORD)
        new_upn = body.get("userPrincipalName")
        if new_upn is not None:
            self.check_upn_domain(str(new_upn))
            other = self.state.user_by_upn(str(new_upn))
            if other and other.id != user.id:
                raise bad_request("Another object with the same value for property userPrincipalName already exists.")
        # apply
        if "accountEnabled" in body:
            user.account_enabled = body["accountEnabled"]
        if "displayName" in body:
            user.display_name = body["displayName"]
        if "usageLocation" in body:
            usage = body["usageLocation"]
            user.usage_location = usage.upper() if isinstance(usage, str) else None
        if "passwordProfile" in body and body["passwordProfile"].get("password"):
            user.password = str(body["passwordProfile"]["password"])
        if body.get("mailNickname"):
            user.mail_nickname = str(body["mailNickname"])
        if "mail" in body:
            user.mail = body["mail"] or None
        if new_upn is not None and str(new_upn) != user.user_principal_name:
            self.state.rename_user(user, str(new_upn))
        return Reply(204)

    def assign_license(self, ctx: Ctx) -> Reply:
        user = self.user(ctx.params["user_id"])
        body = self.body_object(ctx)
        add = body.get("addLicenses")
        remove = body.get("removeLicenses")
        if not isinstance(add, list):
            raise invalid_value("addLicenses", "User")
        if not isinstance(remove, list):
            raise invalid_value("removeLicenses", "User")
        adds: list[tuple[str, list[str]]] = []
        for entry in add:
            sku_id = str(entry.get("skuId", "")).lower() if isinstance(entry, dict) else ""
            if sku_id not in self.state.skus:
                raise bad_request(f"License {sku_id} does not correspond to a valid company License.")
            disabled = entry.get("disabledPlans") or []
            if not isinstance(disabled, list):
                raise invalid_value("disabledPlans", "AssignedLicense")
            adds.append((sku_id, [str(p).lower() for p in disabled]))
        removes = [str(r).lower() for r in remove]
        for sku_id in removes:
            if sku_id not in user.assigned_licenses:
                raise bad_request("User does not have a corresponding license.")
        if adds and not user.usage_location:
            raise bad_request("License assignment cannot be done for user with invalid usage location.")
        for sku_id, _ in adds:
            sku = self.state.skus[sku_id]
            if sku_id not in user.assigned_licenses and self.state.consumed_units(sku_id) >= sku.enabled:
                raise bad_request("License assignment failed because there are no available licenses.")
        for sku_id in removes:
            user.assigned_licenses.remove(sku_id)
            user.disabled_plans.pop(sku_id, None)
        for sku_id, disabled in adds:
            if sku_id not in user.assigned_licenses:
                user.assigned_licenses.append(sku_id)
            user.disabled_plans[sku_id] = disabled
        self.state.ensure_mailbox(user)
        reply = {"@odata.context": self.context(ctx, "users", entity=True)}
        reply.update(self.user_json(ctx, user))
        return Reply(200, reply)

    # -- licensing -------------------------------------------------------------------------------
    def list_skus(self, ctx: Ctx) -> Reply:
        state = self.state

        def sku_json(sku: Any) -> dict[str, Any]:
            return {
                "accountId": state.tenant_id,
                "accountName": state.display_name,
                "appliesTo": "User",
                "capabilityStatus": "Enabled",
                "consumedUnits": state.consumed_units(sku.sku_id),
                "id": sku.id or f"{state.tenant_id}_{sku.sku_id}",
                "prepaidUnits": {"enabled": sku.enabled, "suspended": 0, "warning": 0, "lockedOut": 0},
                "servicePlans": [
                    {
                        "servicePlanId": pid,
                        "servicePlanName": name,
                        "provisioningStatus": "Success",
                        "appliesTo": "User",
                    }
                    for pid, name in sku.service_plans
                ],
                "skuId": sku.sku_id,
                "skuPartNumber": sku.sku_part_number,
                "subscriptionIds": [str(uuid.uuid5(_ROLE_NS, sku.sku_id))],
            }

        return self.page(ctx, "subscribedSkus", lambda: list(state.skus.values()), sku_json, directory=False)

    # -- roles -----------------------------------------------------------------------------------
    def list_role_definitions(self, ctx: Ctx) -> Reply:
        flt = self.filter(ctx, ROLE_DEF_FIELDS, "UnifiedRoleDefinition")
        defs = [r for r in self.state.role_definitions.values() if flt is None or flt.predicate(r)]
        return self.page(
            ctx,
            "roleManagement/directory/roleDefinitions",
            lambda: defs,
            lambda r: render(r, ROLE_DEF_FIELDS, ROLE_DEF_FIELDS),
            directory=False,
        )

    def list_role_assignments(self, ctx: Ctx) -> Reply:
        flt = self.filter(ctx, ROLE_ASSIGNMENT_FIELDS, "UnifiedRoleAssignment")
        items = [a for a in self.state.role_assignments.values() if flt is None or flt.predicate(a)]
        return self.page(
            ctx,
            "roleManagement/directory/roleAssignments",
            lambda: items,
            lambda a: render(a, ROLE_ASSIGNMENT_FIELDS, ROLE_ASSIGNMENT_FIELDS),
            directory=False,
        )

    def principal_exists(self, principal_id: str) -> bool:
        if principal_id in self.state.users:
            return True
        sp = self.state.service_principals.get(principal_id)
        return sp is not None and sp.visible_at <= self.state.clock.elapsed()

    def create_role_assignment(self, ctx: Ctx) -> Reply:
        body = self.body_object(ctx)
        principal_id = str(body.get("principalId") or "")
        role_id = str(body.get("roleDefinitionId") or "")
        scope = str(body.get("directoryScopeId") or "")
        if not principal_id:
            raise invalid_value("principalId", "UnifiedRoleAssignment")
        if not role_id:
            raise invalid_value("roleDefinitionId", "UnifiedRoleAssignment")
        if not scope:
            raise invalid_value("directoryScopeId", "UnifiedRoleAssignment")
        if role_id not in self.state.role_definitions:
            raise not_found(role_id)
        if not self.principal_exists(principal_id):
            raise not_found(principal_id)
        assignment = self.add_role_assignment(principal_id, role_id, scope)
        body_out = {"@odata.context": self.context(ctx, "roleManagement/directory/roleAssignments", entity=True)}
        body_out.update(render(assignment, ROLE_ASSIGNMENT_FIELDS, ROLE_ASSIGNMENT_FIELDS))
        return Reply(201, body_out)

    def add_role_assignment(self, principal_id: str, role_id: str, scope: str = "/") -> RoleAssignment:
        for existing in self.state.role_assignments.values():
            if (existing.principal_id, existing.role_definition_id, existing.directory_scope_id) == (
                principal_id,
                role_id,
                scope,
            ):
                raise bad_request(
                    "A conflicting object with one or more of the specified property values is present "
                    "in the directory."
                )
        assignment = RoleAssignment(
            id=new_id(), principal_id=principal_id, role_definition_id=role_id, directory_scope_id=scope
        )
        self.state.role_assignments[assignment.id] = assignment
        return assignment

    def directory_role_id(self, template_id: str) -> str:
        return str(uuid.uuid5(_ROLE_NS, f"{self.state.tenant_id}/{template_id}"))

    def active_role_templates(self) -> list[str]:
        assigned = {a.role_definition_id for a in self.state.role_assignments.values() if a.directory_scope_id == "/"}
        active = assigned | self.state.activated_directory_roles
        return [rid for rid in self.state.role_definitions if rid in active]

    def directory_role_json(self, template_id: str) -> dict[str, Any]:
        role = self.state.role_definitions[template_id]
        return {
            "id": self.directory_role_id(template_id),
            "deletedDateTime": None,
            "description": role.display_name,
            "displayName": role.display_name,
            "roleTemplateId": template_id,
        }

    def template_for_role(self, role_id: str) -> str:
        for template in self.active_role_templates():
            if self.directory_role_id(template) == role_id:
                return template
        raise not_found(role_id)

    def list_directory_roles(self, ctx: Ctx) -> Reply:
        fields: dict[str, Getter] = {
            "id": lambda t: self.directory_role_id(t),
            "roleTemplateId": lambda t: t,
            "displayName": lambda t: self.state.role_definitions[t].display_name,
        }
        flt = self.filter(ctx, fields, "DirectoryRole")
        templates = [t for t in self.active_role_templates() if flt is None or flt.predicate(t)]
        return self.page(ctx, "directoryRoles", lambda: templates, self.directory_role_json, directory=False)

    def activate_directory_role(self, ctx: Ctx) -> Reply:
        body = self.body_object(ctx)
        template = str(body.get("roleTemplateId") or "").lower()
        if template not in self.state.role_definitions:
            raise invalid_value("roleTemplateId", "DirectoryRole")
        if template in self.active_role_templates():
            raise bad_request(
                "A conflicting object with one or more of the specified property values is present in the directory."
            )
        self.state.activated_directory_roles.add(template)
        out = {"@odata.context": self.context(ctx, "directoryRoles", entity=True)}
        out.update(self.directory_role_json(template))
        return Reply(201, out)

    def get_directory_role(self, ctx: Ctx) -> Reply:
        template = ctx.params["role_template_id"].lower()
        if template not in self.active_role_templates():
            raise not_found(template)
        out = {"@odata.context": self.context(ctx, "directoryRoles", entity=True)}
        out.update(self.directory_role_json(template))
        return Reply(200, out)

    def list_role_member_refs(self, ctx: Ctx) -> Reply:
        template = self.template_for_role(ctx.params["directory_role_id"])
        members = [
            a.principal_id
            for a in self.state.role_assignments.values()
            if a.role_definition_id == template and a.directory_scope_id == "/"
        ]
        return self.page(
            ctx,
            "directoryObjects",
            lambda: members,
            lambda pid: {"@odata.id": f"{ctx.base}/directoryObjects/{pid}"},
            directory=True,
        )

    def add_role_member(self, ctx: Ctx) -> Reply:
        template = self.template_for_role(ctx.params["directory_role_id"])
        ref = self.body_object(ctx).get("@odata.id")
        if not isinstance(ref, str) or not ref:
            raise invalid_value("@odata.id", "DirectoryRole")
        principal_id = ref.rstrip("/").rsplit("/", 1)[-1]
        if not self.principal_exists(principal_id):
            raise not_found(principal_id)
        for a in self.state.role_assignments.values():
            if (a.principal_id, a.role_definition_id, a.directory_scope_id) == (principal_id, template, "/"):
                raise bad_request(
                    "One or more added object references already exist for the following modified "
                    "properties: 'members'."
                )
        self.add_role_assignment(principal_id, template)
        return Reply(204)

    def remove_role_member(self, ctx: Ctx) -> Reply:
        template = self.template_for_role(ctx.params["directory_role_id"])
        ref = ctx.query.get("@id") or ctx.query.get("$id")
        if not ref:
            raise bad_request("The '$id' query option is required to delete a reference.", "BadRequest")
        principal_id = ref.rstrip("/").rsplit("/", 1)[-1]
        doomed = [
            a.id
            for a in self.state.role_assignments.values()
            if (a.principal_id, a.role_definition_id, a.directory_scope_id) == (principal_id, template, "/")
        ]
        if not doomed:
            raise not_found(principal_id)
        for aid in doomed:
            del self.state.role_assignments[aid]
        return Reply(204)

    # -- groups ----------------------------------------------------------------------------------
    def group_members_of(self, group_id: str, *, transitive: bool) -> list[Any]:
        group = self.state.groups.get(group_id)
        if group is None:
            raise not_found(group_id)
        out: list[Any] = []
        seen: set[str] = {group.id}
        queue = list(group.members)
        while queue:
            member_id = queue.pop(0)
            if member_id in seen:
                continue
            seen.add(member_id)
            user = self.state.users.get(member_id)
            if user is not None:
                out.append(user)
                continue
            nested = self.state.groups.get(member_id)
            if nested is not None:
                out.append(nested)
                if transitive:
                    queue.extend(nested.members)
        return out

    def _members(self, ctx: Ctx, *, transitive: bool, users_only: bool) -> Reply:
        select = self.select(ctx, USER_FIELDS, "user", USER_DEFAULT) if users_only else None
        flt = self.filter(ctx, USER_FILTER_FIELDS, "User") if users_only else None
        members = self.group_members_of(ctx.params["group_id"], transitive=transitive)

        def compute() -> list[Any]:
            if users_only:
                return [m for m in members if isinstance(m, User) and (flt is None or flt.predicate(m))]
            return members

        def render_member(member: Any) -> dict[str, Any]:
            if isinstance(member, User):
                data = render(member, USER_FIELDS, select or USER_DEFAULT)
                return data if users_only else {"@odata.type": "#microsoft.graph.user", **data}
            return {"@odata.type": "#microsoft.graph.group", **render(member, GROUP_FIELDS, GROUP_FIELDS)}

        return self.page(ctx, "users" if users_only else "directoryObjects", compute, render_member, select=select)

    def group_members(self, ctx: Ctx) -> Reply:
        return self._members(ctx, transitive=False, users_only=False)

    def group_member_users(self, ctx: Ctx) -> Reply:
        return self._members(ctx, transitive=False, users_only=True)

    def group_transitive_members(self, ctx: Ctx) -> Reply:
        return self._members(ctx, transitive=True, users_only=False)

    def group_transitive_users(self, ctx: Ctx) -> Reply:
        return self._members(ctx, transitive=True, users_only=True)

    # -- service principals --------------------------------------------------------------------------
    def sp(self, ctx: Ctx) -> ServicePrincipal:
        if "app_id" in ctx.params:
            key = ctx.params["app_id"]
            sp = self.state.sp_by_app_id(key)
        else:
            key = ctx.params["service_principal_id"]
            found = self.state.service_principals.get(key)
            sp = found if found and found.visible_at <= self.state.clock.elapsed() else None
        if sp is None:
            raise not_found(key)
        return sp

    def sp_json(self, sp: ServicePrincipal, select: list[str] | None = None) -> dict[str, Any]:
        return render(sp, self.sp_fields, select or self.sp_fields)

    def list_sps(self, ctx: Ctx) -> Reply:
        select = self.select(ctx, self.sp_fields, "servicePrincipal", self.sp_fields)
        flt = self.filter(ctx, self.sp_fields, "ServicePrincipal")
        sps = [sp for sp in self.state.visible_service_principals() if flt is None or flt.predicate(sp)]
        return self.page(ctx, "servicePrincipals", lambda: sps, lambda sp: self.sp_json(sp, select), select=select)

    def create_sp(self, ctx: Ctx) -> Reply:
        body = self.body_object(ctx)
        app_id = str(body.get("appId") or "")
        if not _GUID.match(app_id):
            raise invalid_value("appId", "ServicePrincipal")
        sp = self.add_service_principal(app_id)
        out = {"@odata.context": self.context(ctx, "servicePrincipals", entity=True)}
        out.update(self.sp_json(sp))
        return Reply(201, out)

    def add_service_principal(self, app_id: str, display_name: str | None = None) -> ServicePrincipal:
        """A new service principal, visible to reads after `sp_replication_delay`; 409 if one exists."""
        if self.state.sp_by_app_id(app_id, include_unreplicated=True):
            raise GraphFail(
                409,
                "Request_MultipleObjectsWithSameKeyValue",
                "The service principal cannot be created, updated, or restored because the service principal "
                f"name {app_id} is already in use.",
            )
        sp = ServicePrincipal(
            id=new_id(),
            app_id=app_id.lower(),
            display_name=display_name or KNOWN_APPS.get(app_id.lower(), f"App {app_id[:8]}"),
            created=self.state.clock.now(),
            visible_at=self.state.clock.elapsed() + self.state.knobs.sp_replication_delay,
        )
        self.state.service_principals[sp.id] = sp
        return sp

    def get_sp(self, ctx: Ctx) -> Reply:
        select = self.select(ctx, self.sp_fields, "servicePrincipal", self.sp_fields)
        sp = self.sp(ctx)
        out = {"@odata.context": self.context(ctx, "servicePrincipals", select, entity=True)}
        out.update(self.sp_json(sp, select))
        return Reply(200, out)

    def update_sp(self, ctx: Ctx) -> Reply:
        sp = self.sp(ctx)
        body = self.body_object(ctx)
        for key in body:
            if key not in self.sp_fields:
                raise bad_request(
                    f"The property '{key}' does not exist on type 'microsoft.graph.servicePrincipal'. Make sure "
                    "to only use property names that are defined by the type or mark the type as open type.",
                    "BadRequest",
                )
        if "accountEnabled" in body:
            if not isinstance(body["accountEnabled"], bool):
                raise invalid_value("accountEnabled", "ServicePrincipal")
            sp.account_enabled = body["accountEnabled"]
        return Reply(204)

    def delete_sp(self, ctx: Ctx) -> Reply:
        sp = self.sp(ctx)
        remove_service_principal(self.state, sp)
        return Reply(204)

    def sp_grants(self, ctx: Ctx) -> Reply:
        sp = self.sp(ctx)
        grants = [g for g in self.state.oauth2_grants.values() if g.client_id == sp.id]
        return self.page(
            ctx,
            "oauth2PermissionGrants",
            lambda: grants,
            lambda g: render(g, GRANT_FIELDS, GRANT_FIELDS),
            directory=False,
        )

    def sp_app_role_assignments(self, ctx: Ctx) -> Reply:
        sp = self.sp(ctx)
        items = [a for a in self.state.app_role_assignments.values() if a.principal_id == sp.id]
        return self.page(
            ctx,
            f"servicePrincipals('{sp.id}')/appRoleAssignments",
            lambda: items,
            lambda a: render(a, APP_ROLE_FIELDS, APP_ROLE_FIELDS),
            directory=False,
        )

    def create_app_role_assignment(self, ctx: Ctx) -> Reply:
        sp = self.sp(ctx)
        body = self.body_object(ctx)
        if str(body.get("principalId") or "") != sp.id:
            raise invalid_value("principalId", "AppRoleAssignment")
        resource = self.state.service_principals.get(str(body.get("resourceId") or ""))
        if resource is None:
            raise invalid_value("resourceId", "AppRoleAssignment")
        app_role_id = str(body.get("appRoleId") or "")
        if not _GUID.match(app_role_id):
            raise invalid_value("appRoleId", "AppRoleAssignment")
        for existing in self.state.app_role_assignments.values():
            if (existing.principal_id, existing.resource_id, existing.app_role_id) == (
                sp.id,
                resource.id,
                app_role_id,
            ):
                raise bad_request("Permission being assigned already exists on the object")
        assignment = add_app_role_assignment(self.state, sp, resource, app_role_id)
        out = {"@odata.context": self.context(ctx, f"servicePrincipals('{sp.id}')/appRoleAssignments", entity=True)}
        out.update(render(assignment, APP_ROLE_FIELDS, APP_ROLE_FIELDS))
        return Reply(201, out)

    def list_grants(self, ctx: Ctx) -> Reply:
        flt = self.filter(ctx, GRANT_FIELDS, "OAuth2PermissionGrant")
        grants = [g for g in self.state.oauth2_grants.values() if flt is None or flt.predicate(g)]
        return self.page(
            ctx,
            "oauth2PermissionGrants",
            lambda: grants,
            lambda g: render(g, GRANT_FIELDS, GRANT_FIELDS),
            directory=False,
        )

    def create_grant(self, ctx: Ctx) -> Reply:
        body = self.body_object(ctx)
        client = self.state.service_principals.get(str(body.get("clientId") or ""))
        if client is None:
            raise invalid_value("clientId", "OAuth2PermissionGrant")
        resource = self.state.service_principals.get(str(body.get("resourceId") or ""))
        if resource is None:
            raise invalid_value("resourceId", "OAuth2PermissionGrant")
        consent_type = body.get("consentType")
        if consent_type not in ("AllPrincipals", "Principal"):
            raise invalid_value("consentType", "OAuth2PermissionGrant")
        principal_id = body.get("principalId")
        if consent_type == "Principal" and principal_id not in self.state.users:
            raise invalid_value("principalId", "OAuth2PermissionGrant")
        for g in self.state.oauth2_grants.values():
            if (g.client_id, g.resource_id, g.consent_type, g.principal_id) == (
                client.id,
                resource.id,
                consent_type,
                principal_id if consent_type == "Principal" else None,
            ):
                raise GraphFail(409, "Request_MultipleObjectsWithSameKeyValue", "Permission entry already exists.")
        grant = OAuth2PermissionGrant(
            id=new_id(),
            client_id=client.id,
            consent_type=str(consent_type),
            resource_id=resource.id,
            scope=str(body.get("scope") or ""),
            principal_id=str(principal_id) if consent_type == "Principal" else None,
        )
        self.state.oauth2_grants[grant.id] = grant
        out = {"@odata.context": self.context(ctx, "oauth2PermissionGrants", entity=True)}
        out.update(render(grant, GRANT_FIELDS, GRANT_FIELDS))
        return Reply(201, out)

    # -- $batch ----------------------------------------------------------------------------------
    def batch(self, ctx: Ctx) -> Reply:
        body = self.body_object(ctx)
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            raise bad_request("Invalid batch payload format.", "BadRequest")
        if len(requests) > MAX_BATCH:
            raise bad_request(f"The number of requests in a batch exceeds the limit of {MAX_BATCH}.", "BadRequest")
        by_id: dict[str, dict[str, Any]] = {}
        for item in requests:
            if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in ("id", "method", "url")):
                raise bad_request("Invalid batch payload format.", "BadRequest")
            if item["id"] in by_id:
                raise bad_request("Batch request contains duplicate request ids.", "BadRequest")
            by_id[item["id"]] = item
        for item in requests:
            for dep in item.get("dependsOn") or []:
                if dep not in by_id or dep == item["id"]:
                    raise bad_request(
                        f"Request with id '{item['id']}' depends on unknown request '{dep}'.", "BadRequest"
                    )
        results: dict[str, dict[str, Any]] = {}

        def execute(item: dict[str, Any], trail: tuple[str, ...]) -> dict[str, Any]:
            rid = item["id"]
            if rid in results:
                return results[rid]
            if rid in trail:
                raise bad_request("Batch requests contain a circular dependency.", "BadRequest")
            deps = [execute(by_id[d], (*trail, rid)) for d in item.get("dependsOn") or []]
            if any(not 200 <= d["status"] < 300 for d in deps):
                reply = self._fail_reply(
                    ctx,
                    GraphFail(
                        424,
                        "FailedDependency",
                        "The request could not be performed because of a failed dependency.",
                    ),
                )
            else:
                reply = self.sub_request(ctx, item)
            results[rid] = {
                "id": rid,
                "status": reply.status,
                "headers": {"Content-Type": "application/json", **reply.headers} if reply.body else dict(reply.headers),
                "body": reply.body,
            }
            if reply.body is None:
                results[rid].pop("body")
            return results[rid]

        for item in requests:
            execute(item, ())
        return Reply(200, {"responses": [results[item["id"]] for item in requests]})

    def sub_request(self, outer: Ctx, item: dict[str, Any]) -> Reply:
        method = item["method"].upper()
        parts = urlsplit(item["url"])
        path = unquote(parts.path)
        if not path.startswith("/"):
            path = "/" + path
        headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
        ctx = Ctx(
            request=outer.request,
            method=method,
            path=path,
            params={},
            query=_query(parts.query),
            headers={**{"authorization": outer.headers.get("authorization", "")}, **headers},
            body=item.get("body"),
            base=outer.base,
        )
        if ctx.body is not None and "content-type" not in headers:
            return self._fail_reply(
                ctx,
                bad_request(
                    f"Write request id : {item['id']} does not contain Content-Type header or body.", "BadRequest"
                ),
            )
        if path == "/$batch":
            return self._fail_reply(ctx, bad_request("Nested batch requests are not supported.", "BadRequest"))
        found = self.match(method, path)
        if found is None:
            segment = path.strip("/").split("/")[0]
            return self._fail_reply(ctx, bad_request(f"Resource not found for the segment '{segment}'.", "BadRequest"))
        if isinstance(found, str):
            return self._fail_reply(
                ctx,
                GraphFail(405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target."),
            )
        handler, params = found
        ctx.params = params
        return self.run(handler, ctx)


def _usage_location_ok(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 2 and value.isalpha() and value.isascii()


def _query(raw: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        out[key.lower() if key.startswith("$") else key] = value
    return out


def remove_service_principal(state: TenantState, sp: ServicePrincipal) -> None:
    """Delete a service principal with its delegated grants and app role assignments (as Entra does)."""
    state.service_principals.pop(sp.id, None)
    for gid in [g.id for g in state.oauth2_grants.values() if sp.id in (g.client_id, g.resource_id)]:
        del state.oauth2_grants[gid]
    for aid in [a.id for a in state.app_role_assignments.values() if sp.id in (a.principal_id, a.resource_id)]:
        del state.app_role_assignments[aid]
    for rid in [r.id for r in state.role_assignments.values() if r.principal_id == sp.id]:
        del state.role_assignments[rid]


def add_app_role_assignment(
    state: TenantState, sp: ServicePrincipal, resource: ServicePrincipal, app_role_id: str
) -> AppRoleAssignment:
    assignment = AppRoleAssignment(
        id=new_id(),
        principal_id=sp.id,
        principal_display_name=sp.display_name,
        resource_id=resource.id,
        resource_display_name=resource.display_name,
        app_role_id=app_role_id,
        created=state.clock.now(),
    )
    state.app_role_assignments[assignment.id] = assignment
    return assignment


def routes(state: TenantState) -> list[BaseRoute]:
    return GraphService(state).routes()
