"""The simulated Graph against Microsoft's own descriptions (shared/specs/).

(a) every path and method the simulator serves is in graph-v1.0-subset.openapi.json;
(b) every property name in the JSON it returns exists on that entity type in the v1.0 CSDL
    (graph-v1.0-metadata.xml), following BaseType chains, nested complex types and @odata.type.

Both come from the project's own subset, tests/specs/graph-v1.0-subset.json, generated from the CSDL by
tests/specs/graph_subset.py (tests/test_graph_subset.py checks it is current), so nothing is skipped.
"""

from __future__ import annotations

import asyncio
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from starlette.routing import Route

from m365archive.sim.consent import APPS, grant_consent
from m365archive.sim.graph import USER_FIELDS, GraphService
from m365archive.sim.scenario import load_scenario
from m365archive.sim.server import simulated_tenant
from m365archive.sim.state import CONNECTOR_APP_ID, EXCHANGE_ADMIN_ROLE_TEMPLATE, Group
from m365archive.tenant.graph import GraphGateway
from m365archive.tenant.graph_types import GraphRequest
from m365archive.tenant.simcredential import AsyncSimulatorCredential, token_url

OPENAPI = "graph-v1.0-subset.openapi.json"
# Starlette's path parameter names -> the OpenAPI subset's
PARAM_NAMES = {
    "user_id": "user-id",
    "group_id": "group-id",
    "directory_role_id": "directoryRole-id",
    "service_principal_id": "servicePrincipal-id",
    "app_id": "appId",
    "role_template_id": "roleTemplateId",
    "member_id": "directoryObject-id",
}
COMPLIANCE_ADMIN = "17315797-102d-40b4-93e0-432062caca18"


SUBSET = Path(__file__).resolve().parent / "specs" / "graph-v1.0-subset.json"
OPENAPI = SUBSET.name


@lru_cache(maxsize=1)
def _subset() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SUBSET.read_text(encoding="utf-8"))
    return data


def openapi_paths() -> dict[str, Any]:
    """Path template -> {method: {}} for the paths the project calls."""
    return {path: {m.lower(): {} for m in v["methods"]} for path, v in _subset()["paths"].items()}


@lru_cache(maxsize=1)
def csdl_types() -> dict[str, tuple[str | None, dict[str, str]]]:
    """Qualified type name -> (base type, {property: type}) for entity and complex types."""
    return {name: (t["base"], t["properties"]) for name, t in _subset()["types"].items()}


def properties(type_name: str) -> dict[str, str]:
    types = csdl_types()
    out: dict[str, str] = {}
    current: str | None = type_name
    while current:
        base, props = types[current]
        out.update(props)
        current = base
    return out


def check_object(obj: dict[str, Any], type_name: str, where: str, problems: list[str]) -> None:
    declared = obj.get("@odata.type")
    if isinstance(declared, str):
        type_name = declared.lstrip("#")
    if type_name not in csdl_types():
        problems.append(f"{where}: unknown type {type_name}")
        return
    props = properties(type_name)
    for key, value in obj.items():
        if key.startswith("@"):
            continue  # instance annotations: @odata.context, @odata.type, @odata.id ...
        if key not in props:
            problems.append(f"{where}.{key}: no such property on {type_name}")
            continue
        inner = props[key]
        if inner not in csdl_types():
            continue  # a primitive or enum
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            if isinstance(item, dict):
                check_object(item, inner, f"{where}.{key}[{i}]", problems)


def check_body(body: dict[str, Any], entity: str, where: str, problems: list[str]) -> None:
    if "value" in body and isinstance(body["value"], list):
        for i, item in enumerate(body["value"]):
            check_object(item, entity, f"{where}.value[{i}]", problems)
    else:
        check_object(body, entity, where, problems)


def test_csdl_parses_fast_and_has_inheritance() -> None:
    user = properties("microsoft.graph.user")
    assert {"userPrincipalName", "assignedLicenses", "id", "deletedDateTime"} <= set(user)
    assert user["assignedLicenses"] == "microsoft.graph.assignedLicense"


def test_every_served_path_and_method_is_in_the_openapi_subset() -> None:
    spec = openapi_paths()
    served = GraphService(load_scenario("fresh")).routes()
    checked = 0
    for route in served:
        assert isinstance(route, Route)
        if route.name == "graph:unknown-segment":
            continue  # the catch-all that answers "Resource not found for the segment"
        assert route.path.startswith("/v1.0/")
        path = re.sub(r"\{(\w+)\}", lambda m: "{" + PARAM_NAMES[m.group(1)] + "}", route.path[len("/v1.0") :])
        if path.endswith("/{directoryObject-id}/$ref"):
            # OData addresses one reference of a collection by its key before $ref; the subset generator lists
            # only the collection's $ref (documented: microsoft-graph-docs-contrib directoryrole-delete-member.md).
            path = path.removesuffix("/{directoryObject-id}/$ref") + "/$ref"
        assert path in spec, f"{path} is not in {OPENAPI}"
        for method in sorted((route.methods or set()) - {"HEAD"}):
            assert method.lower() in spec[path], f"{method} {path} is not in {OPENAPI}"
            checked += 1
    assert checked >= 30


def test_every_returned_property_exists_in_the_csdl() -> None:
    state = load_scenario("fresh")
    traders = next(g for g in state.groups.values() if g.display_name == "Traders")
    desk = Group(id="5a1b2c3d-0000-4000-8000-000000000002", display_name="Desk", members=[traders.id])
    state.groups[desk.id] = desk
    domain = state.domain
    all_user_props = ",".join(USER_FIELDS)

    with simulated_tenant(state, time_scale=0.001, sp_replication_delay=0.0, user_replication_delay=0.0) as sim:
        with sim.state.lock:
            connector = grant_consent(sim.state, CONNECTOR_APP_ID, APPS[CONNECTOR_APP_ID])
        adele = sim.state.user_by_upn(f"adele.vance@{domain}")
        assert adele is not None
        new_user = {
            "accountEnabled": True,
            "displayName": "Catch-all",
            "mailNickname": "catchall",
            "userPrincipalName": f"catchall@{domain}",
            "usageLocation": "US",
            "passwordProfile": {"password": "Str0ng!Passw0rd"},
        }
        cases: list[tuple[str, str, dict[str, Any] | None, str]] = [
            ("GET", "/users", None, "user"),
            ("GET", f"/users?$select={all_user_props}", None, "user"),
            ("GET", f"/users/adele.vance@{domain}", None, "user"),
            ("GET", f"/users/{adele.id}?$select={all_user_props}", None, "user"),
            ("POST", "/users", new_user, "user"),
            (
                "POST",
                f"/users/catchall@{domain}/assignLicense",
                {"addLicenses": [{"skuId": "19ec0d23-8335-4cbd-94ac-6050e30712fa"}], "removeLicenses": []},
                "user",
            ),
            ("GET", "/subscribedSkus", None, "subscribedSku"),
            ("GET", "/organization", None, "organization"),
            ("GET", "/organization?$select=verifiedDomains", None, "organization"),
            ("GET", "/roleManagement/directory/roleDefinitions", None, "unifiedRoleDefinition"),
            ("GET", "/roleManagement/directory/roleAssignments", None, "unifiedRoleAssignment"),
            (
                "POST",
                "/roleManagement/directory/roleAssignments",
                {"principalId": adele.id, "roleDefinitionId": EXCHANGE_ADMIN_ROLE_TEMPLATE, "directoryScopeId": "/"},
                "unifiedRoleAssignment",
            ),
            ("GET", "/directoryRoles", None, "directoryRole"),
            ("GET", f"/directoryRoles(roleTemplateId='{EXCHANGE_ADMIN_ROLE_TEMPLATE}')", None, "directoryRole"),
            ("POST", "/directoryRoles", {"roleTemplateId": COMPLIANCE_ADMIN}, "directoryRole"),
            ("GET", f"/groups/{desk.id}/members", None, "directoryObject"),
            ("GET", f"/groups/{desk.id}/members/graph.user", None, "user"),
            ("GET", f"/groups/{desk.id}/transitiveMembers", None, "directoryObject"),
            ("GET", f"/groups/{desk.id}/transitiveMembers/graph.user?$select={all_user_props}", None, "user"),
            ("GET", "/servicePrincipals", None, "servicePrincipal"),
            ("GET", f"/servicePrincipals(appId='{CONNECTOR_APP_ID}')", None, "servicePrincipal"),
            ("GET", f"/servicePrincipals/{connector.id}", None, "servicePrincipal"),
            ("POST", "/servicePrincipals", {"appId": "11111111-2222-4333-8444-555555555555"}, "servicePrincipal"),
            ("GET", f"/servicePrincipals/{connector.id}/oauth2PermissionGrants", None, "oAuth2PermissionGrant"),
            ("GET", f"/servicePrincipals/{connector.id}/appRoleAssignments", None, "appRoleAssignment"),
            ("GET", "/oauth2PermissionGrants", None, "oAuth2PermissionGrant"),
        ]

        async def exercise() -> list[tuple[str, dict[str, Any] | None, str]]:
            gw = GraphGateway(
                sim.url + "/v1.0",
                AsyncSimulatorCredential(token_url(sim.url, sim.state.tenant_id)),
                scopes=["https://graph.microsoft.com/.default"],
            )
            try:
                out = []
                for method, path, body, entity in cases:
                    reply = await gw.send(GraphRequest(method, path, body))
                    out.append((f"{method} {path}", reply.body, entity))
                # the same reads through $batch return the same shapes
                batched = await gw.batch([GraphRequest(m, p, b) for m, p, b, _ in cases if m == "GET"][:20])
                gets = [c for c in cases if c[0] == "GET"][:20]
                out += [(f"$batch {c[1]}", r.body, c[3]) for c, r in zip(gets, batched, strict=True)]
                return out
            finally:
                await gw.aclose()

        results = asyncio.run(exercise())

    problems: list[str] = []
    for where, body, entity in results:
        assert body is not None, where
        check_body(body, f"microsoft.graph.{entity}", where, problems)
    assert problems == []
    # the walk really looked at nested complex types
    skus = next(body for where, body, _ in results if where == "GET /subscribedSkus")
    assert skus is not None and skus["value"][0]["prepaidUnits"]["enabled"] > 0


def test_the_walker_catches_an_invented_property() -> None:
    problems: list[str] = []
    check_object(
        {"id": "x", "assignedLicenses": [{"skuId": "s", "seats": 1}], "favouriteColour": "red"},
        "microsoft.graph.user",
        "user",
        problems,
    )
    assert problems == [
        "user.assignedLicenses[0].seats: no such property on microsoft.graph.assignedLicense",
        "user.favouriteColour: no such property on microsoft.graph.user",
    ]
