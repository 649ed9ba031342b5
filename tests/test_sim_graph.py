"""The simulated Graph, driven by msgraph-sdk (fluent GraphServiceClient) and our GraphGateway over real sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.models.assigned_license import AssignedLicense
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.password_profile import PasswordProfile
from msgraph.generated.models.service_principal import ServicePrincipal as SdkServicePrincipal
from msgraph.generated.models.unified_role_assignment import UnifiedRoleAssignment
from msgraph.generated.models.user import User as SdkUser
from msgraph.generated.role_management.directory.role_definitions.role_definitions_request_builder import (
    RoleDefinitionsRequestBuilder,
)
from msgraph.generated.users.item.assign_license.assign_license_post_request_body import (
    AssignLicensePostRequestBody,
)
from msgraph.generated.users.users_request_builder import UsersRequestBuilder

from m365archive.sim.scenario import load_scenario
from m365archive.sim.server import SimulatedTenant, simulated_tenant
from m365archive.sim.state import (
    CONNECTOR_APP_ID,
    EXCHANGE_ADMIN_ROLE_TEMPLATE,
    Group,
)
from m365archive.tenant.graph import GraphGateway
from m365archive.tenant.graph_types import GraphError, GraphRequest
from m365archive.tenant.simcredential import AsyncSimulatorCredential, SimulatorCredential, token_url

T = TypeVar("T")
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
DOMAIN = "contoso.onmicrosoft.com"
E3_PLAN2 = "19ec0d23-8335-4cbd-94ac-6050e30712fa"  # EXCHANGEENTERPRISE


def run(sim: SimulatedTenant, body: Callable[[GraphGateway], Awaitable[T]], **options: Any) -> T:
    """Run `body` with a gateway to `sim` inside one event loop (httpx clients belong to a loop)."""

    async def main() -> T:
        options.setdefault("scopes", [GRAPH_SCOPE])
        options.setdefault("retry_delay", 0.0)
        gateway = GraphGateway(
            sim.url + "/v1.0", AsyncSimulatorCredential(token_url(sim.url, sim.state.tenant_id)), **options
        )
        try:
            return await body(gateway)
        finally:
            await gateway.aclose()

    return asyncio.run(main())


def new_user(upn: str, password: str = "Str0ng!Passw0rd") -> SdkUser:
    return SdkUser(
        account_enabled=True,
        display_name=upn.split("@")[0],
        mail_nickname=upn.split("@")[0],
        user_principal_name=upn,
        password_profile=PasswordProfile(password=password, force_change_password_next_sign_in=False),
    )


def odata(exc: ODataError) -> tuple[int, str, str]:
    assert exc.error is not None
    return exc.response_status_code or 0, exc.error.code or "", exc.error.message or ""


# -- users: reads ------------------------------------------------------------------------------------


def test_users_paging_select_and_count(sim: SimulatedTenant) -> None:
    async def body(gw: GraphGateway) -> tuple[list[list[dict[str, Any]]], dict[str, Any]]:
        pages = [page async for page in gw.iter_users(select=["id", "userPrincipalName"], page_size=3)]
        counted = await gw.send(
            GraphRequest("GET", "/users?$top=2&$count=true&$select=id", headers={"ConsistencyLevel": "eventual"})
        )
        assert counted.body is not None
        return pages, counted.body

    pages, counted = run(sim, body)
    total = len(sim.state.users)
    assert [len(p) for p in pages] == [3] * (total // 3) + ([total % 3] if total % 3 else [])
    users = [u for p in pages for u in p]
    assert {u["userPrincipalName"] for u in users} == {u.user_principal_name for u in sim.state.users.values()}
    assert all(set(u) == {"id", "userPrincipalName"} for u in users)
    assert counted["@odata.count"] == total
    assert "$skiptoken=" in counted["@odata.nextLink"] and "$select=id" in counted["@odata.nextLink"]
    assert counted["@odata.context"].endswith("/$metadata#users(id)")
    paged_requests = [r for r in sim.requests if r["path"] == "/v1.0/users"]
    assert any("skiptoken" in r["query"] for r in paged_requests)


def test_advanced_queries_need_consistency_level_and_count(sim: SimulatedTenant) -> None:
    flt = "assignedLicenses/$count ne 0"

    async def body(gw: GraphGateway) -> tuple[list[GraphError], list[dict[str, Any]]]:
        errors = []
        for headers, count in (({}, True), ({"ConsistencyLevel": "eventual"}, False), ({}, False)):
            query = f"/users?$filter={flt}" + ("&$count=true" if count else "")
            with pytest.raises(GraphError) as info:
                await gw.send(GraphRequest("GET", query, headers=headers))
            errors.append(info.value)
        with pytest.raises(GraphError) as plain_count:
            await gw.send(GraphRequest("GET", "/users?$count=true"))
        errors.insert(0, plain_count.value)
        licensed = [u async for page in gw.iter_users(select=["id"], filter=flt, eventual=True) for u in page]
        return errors, licensed

    errors, licensed = run(sim, body)
    assert errors[0].status == 400 and errors[0].message == "$count is not currently supported."
    for err in errors[1:]:
        assert (err.status, err.code) == (400, "Request_UnsupportedQuery")
        assert "'assignedLicenses'" in err.message
    assert len(licensed) == sum(1 for u in sim.state.users.values() if u.assigned_licenses)


def test_user_filters(sim: SimulatedTenant) -> None:
    sim.state.user_by_upn(f"lee.gu@{DOMAIN}").on_premises_sync_enabled = True  # type: ignore[union-attr]

    async def body(gw: GraphGateway) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for flt, eventual in (
            ("startswith(userPrincipalName,'ADELE')", False),
            (f"userPrincipalName eq 'diego.siciliani@{DOMAIN}'", False),
            (f"mail eq 'adele.vance@{DOMAIN}' or mail eq 'lee.gu@{DOMAIN}'", False),
            ("onPremisesSyncEnabled eq true", False),
            ("onPremisesSyncEnabled eq false", False),
            (f"assignedLicenses/any(x:x/skuId eq {E3_PLAN2})", False),
            ("onPremisesSyncEnabled ne true", True),
        ):
            users = [
                u async for p in gw.iter_users(select=["userPrincipalName"], filter=flt, eventual=eventual) for u in p
            ]
            out[flt] = sorted(u["userPrincipalName"].split("@")[0] for u in users)
        return out

    found = run(sim, body)
    assert found["startswith(userPrincipalName,'ADELE')"] == ["adele.vance"]
    assert found[f"userPrincipalName eq 'diego.siciliani@{DOMAIN}'"] == ["diego.siciliani"]
    assert found[f"mail eq 'adele.vance@{DOMAIN}' or mail eq 'lee.gu@{DOMAIN}'"] == ["adele.vance", "lee.gu"]
    assert found["onPremisesSyncEnabled eq true"] == ["lee.gu"]
    # as in Entra ID: cloud-only users carry null, so `eq false` finds nobody
    assert found["onPremisesSyncEnabled eq false"] == []
    assert "lee.gu" not in found[f"assignedLicenses/any(x:x/skuId eq {E3_PLAN2})"]
    assert "adele.vance" in found[f"assignedLicenses/any(x:x/skuId eq {E3_PLAN2})"]
    assert (
        "lee.gu" not in found["onPremisesSyncEnabled ne true"]
        and "adele.vance" in found["onPremisesSyncEnabled ne true"]
    )


def test_bad_queries_are_refused(sim: SimulatedTenant) -> None:
    async def body(gw: GraphGateway) -> list[GraphError]:
        errors = []
        for path in (
            "/users?$top=1000",
            "/users?$select=noSuchProperty",
            "/users?$filter=favouriteColour eq 'red'",
            "/users?$filter=displayName eq",
            "/noSuchThing",
        ):
            with pytest.raises(GraphError) as info:
                await gw.send(GraphRequest("GET", path))
            errors.append(info.value)
        return errors

    top, select, prop, syntax, segment = run(sim, body)
    assert top.message == "Invalid page size specified: '1000'. Must be between 1 and 999 inclusive."
    assert "Could not find a property named 'noSuchProperty'" in select.message
    assert prop.code == "Request_UnsupportedQuery"
    assert (syntax.status, syntax.message) == (400, "Invalid filter clause")
    assert segment.message == "Resource not found for the segment 'noSuchThing'."


def test_get_user_by_id_or_upn_and_404(sim: SimulatedTenant) -> None:
    adele = sim.state.user_by_upn(f"adele.vance@{DOMAIN}")
    assert adele is not None

    async def body(gw: GraphGateway) -> tuple[Any, ...]:
        by_id = await gw.get_user(adele.id, ["userPrincipalName", "usageLocation", "assignedLicenses"])
        missing = await gw.get_user(f"nobody@{DOMAIN}", ["id"])
        sdk_user = await gw.client.users.by_user_id(f"adele.vance@{DOMAIN}").get()
        with pytest.raises(ODataError) as info:
            await gw.client.users.by_user_id(f"nobody@{DOMAIN}").get()
        return by_id, missing, sdk_user, info.value

    by_id, missing, sdk_user, error = run(sim, body)
    assert by_id["userPrincipalName"] == adele.user_principal_name
    assert by_id["usageLocation"] == "US"
    assert by_id["assignedLicenses"] == [{"disabledPlans": [], "skuId": E3_PLAN2}]
    assert missing is None
    assert sdk_user.id == adele.id and sdk_user.display_name == "Adele Vance"
    status, code, message = odata(error)
    assert (status, code) == (404, "Request_ResourceNotFound")
    assert message == (
        f"Resource 'nobody@{DOMAIN}' does not exist or one of its queried reference-property objects are not present."
    )
    assert error.error is not None and error.error.inner_error is not None


# -- users: writes -----------------------------------------------------------------------------------


def test_create_user_and_its_refusals(sim: SimulatedTenant) -> None:
    async def body(gw: GraphGateway) -> tuple[Any, list[tuple[int, str, str]]]:
        created = await gw.client.users.post(new_user(f"catchall@{DOMAIN}"))
        refusals = []
        for user in (
            new_user(f"catchall@{DOMAIN}"),
            new_user("someone@fabrikam.com"),
            new_user(f"weak@{DOMAIN}", password="pass" + "word"),  # the weakest there is
        ):
            with pytest.raises(ODataError) as info:
                await gw.client.users.post(user)
            refusals.append(odata(info.value))
        return created, refusals

    created, (duplicate, domain, weak) = run(sim, body)
    assert created.user_principal_name == f"catchall@{DOMAIN}" and created.id
    state_user = sim.state.users[created.id]
    assert state_user.password == "Str0ng!Passw0rd"
    assert created.password_profile is None  # never returned
    assert duplicate == (
        400,
        "Request_BadRequest",
        "Another object with the same value for property userPrincipalName already exists.",
    )
    assert domain[0] == 400 and "verified domain names" in domain[2]
    assert weak == (
        400,
        "Request_BadRequest",
        "The specified password does not comply with password complexity requirements. "
        "Please provide a different password.",
    )
    assert sim.state.user_by_upn(f"weak@{DOMAIN}") is None


def test_assign_license_needs_usage_location_then_mailbox_appears() -> None:
    # provisioning takes 1,000 real seconds unless the test moves the simulated clock: no race with a slow machine
    with simulated_tenant(
        "fresh", time_scale=0.001, user_replication_delay=0.0, mailbox_provisioning_delay=1_000_000.0
    ) as sim:
        _assign_license_needs_usage_location_then_mailbox_appears(sim)


def _assign_license_needs_usage_location_then_mailbox_appears(sim: SimulatedTenant) -> None:
    async def body(gw: GraphGateway) -> tuple[Any, ...]:
        user = await gw.client.users.post(new_user(f"catchall@{DOMAIN}"))
        assert user is not None and user.id
        item = gw.client.users.by_user_id(user.id)
        license_body = AssignLicensePostRequestBody(
            add_licenses=[AssignedLicense(sku_id=E3_PLAN2, disabled_plans=[])], remove_licenses=[]
        )
        with pytest.raises(ODataError) as info:
            await item.assign_license.post(license_body)
        await item.patch(SdkUser(usage_location="US"))
        assigned = await item.assign_license.post(license_body)
        mailbox_right_away = sim.state.mailbox_for(f"catchall@{DOMAIN}")
        sim.state.clock.advance(sim.state.knobs.mailbox_provisioning_delay + 1)
        mailbox_later = sim.state.mailbox_for(f"catchall@{DOMAIN}")
        again = await gw.get_user(user.id, ["assignedLicenses", "usageLocation", "mail"])
        return info.value, assigned, mailbox_right_away, mailbox_later, again

    refusal, assigned, before, after, again = run(sim, body)
    assert odata(refusal) == (
        400,
        "Request_BadRequest",
        "License assignment cannot be done for user with invalid usage location.",
    )
    assert assigned.user_principal_name == f"catchall@{DOMAIN}"
    assert before is None and after is not None
    assert again["assignedLicenses"] == [{"disabledPlans": [], "skuId": E3_PLAN2}]
    assert again["usageLocation"] == "US" and again["mail"] == f"catchall@{DOMAIN}"


def test_assign_license_refusals(sim: SimulatedTenant) -> None:
    sku = sim.state.skus[E3_PLAN2]
    sku.enabled = sim.state.consumed_units(E3_PLAN2)  # every seat taken
    lee = sim.state.user_by_upn(f"lee.gu@{DOMAIN}")
    assert lee is not None

    async def body(gw: GraphGateway) -> list[GraphError]:
        errors = []
        for payload in (
            {"addLicenses": [{"skuId": E3_PLAN2, "disabledPlans": []}], "removeLicenses": []},
            {"addLicenses": [{"skuId": "00000000-0000-0000-0000-000000000001"}], "removeLicenses": []},
            {"addLicenses": [{"skuId": E3_PLAN2}]},
        ):
            with pytest.raises(GraphError) as info:
                await gw.send(GraphRequest("POST", f"/users/{lee.id}/assignLicense", payload))
            errors.append(info.value)
        return errors

    no_seats, unknown, no_remove = run(sim, body)
    assert no_seats.message == "License assignment failed because there are no available licenses."
    assert unknown.status == 400 and "00000000-0000-0000-0000-000000000001" in unknown.message
    assert no_remove.status == 400 and "removeLicenses" in no_remove.message
    assert E3_PLAN2 not in lee.assigned_licenses


def test_patch_user_and_synced_user_refusal(sim: SimulatedTenant) -> None:
    lee = sim.state.user_by_upn(f"lee.gu@{DOMAIN}")
    adele = sim.state.user_by_upn(f"adele.vance@{DOMAIN}")
    assert lee is not None and adele is not None
    lee.on_premises_sync_enabled = True

    async def body(gw: GraphGateway) -> tuple[Any, ...]:
        patched = await gw.send(
            GraphRequest(
                "PATCH",
                f"/users/{adele.id}",
                {"accountEnabled": False, "passwordProfile": {"password": "N3w!Password"}, "usageLocation": "gb"},
            )
        )
        with pytest.raises(GraphError) as synced:
            await gw.send(GraphRequest("PATCH", f"/users/{lee.id}", {"displayName": "Lee"}))
        usage = await gw.send(GraphRequest("PATCH", f"/users/{lee.id}", {"usageLocation": "DE"}))
        with pytest.raises(GraphError) as weak:
            await gw.send(GraphRequest("PATCH", f"/users/{adele.id}", {"passwordProfile": {"password": "abc"}}))
        return patched, synced.value, usage, weak.value

    patched, synced, usage, weak = run(sim, body)
    assert patched.status == 204 and patched.body is None
    assert (adele.account_enabled, adele.password, adele.usage_location) == (False, "N3w!Password", "GB")
    assert synced.status == 400 and "on-premises mastered" in synced.message
    assert usage.status == 204 and lee.usage_location == "DE"
    assert weak.status == 400 and "password complexity" in weak.message


# -- tokens ------------------------------------------------------------------------------------------


def test_missing_or_wrong_token_is_401(sim: SimulatedTenant) -> None:
    bare = httpx.get(f"{sim.url}/v1.0/users")
    assert bare.status_code == 401
    assert bare.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert bare.json()["error"]["message"] == "Access token is empty."
    exchange_token = SimulatorCredential(token_url(sim.url, sim.state.tenant_id)).get_token(
        "https://outlook.office365.com/.default"
    )
    wrong = httpx.get(f"{sim.url}/v1.0/users", headers={"Authorization": f"Bearer {exchange_token.token}"})
    assert wrong.status_code == 401 and "Invalid audience" in wrong.json()["error"]["message"]
    assert wrong.json()["error"]["innerError"]["request-id"] == wrong.headers["request-id"]

    async def body(gw: GraphGateway) -> GraphError:
        with pytest.raises(GraphError) as info:
            await gw.subscribed_skus()
        return info.value

    error = run(sim, body, scopes=["https://outlook.office365.com/.default"])
    assert error.status == 401 and error.code == "InvalidAuthenticationToken" and error.request_id


def test_gateway_refuses_plain_http_outside_localhost() -> None:
    with pytest.raises(ValueError, match="https"):
        GraphGateway("http://graph.microsoft.com/v1.0", AsyncSimulatorCredential(token_url("http://127.0.0.1:9", "t")))


# -- licensing, roles, groups ---------------------------------------------------------------------------


def test_subscribed_skus(sim: SimulatedTenant) -> None:
    async def body(gw: GraphGateway) -> tuple[list[dict[str, Any]], Any]:
        return await gw.subscribed_skus(), await gw.client.subscribed_skus.get()

    skus, sdk = run(sim, body)
    e3 = next(s for s in skus if s["skuId"] == E3_PLAN2)
    assert e3["skuPartNumber"] == "EXCHANGEENTERPRISE"
    assert e3["consumedUnits"] == sim.state.consumed_units(E3_PLAN2)
    assert e3["prepaidUnits"] == {"enabled": 25, "suspended": 0, "warning": 0, "lockedOut": 0}
    assert {p["servicePlanName"] for p in e3["servicePlans"]} == {"EXCHANGE_S_ENTERPRISE"}
    assert e3["capabilityStatus"] == "Enabled" and e3["appliesTo"] == "User"
    sdk_e3 = next(s for s in sdk.value if str(s.sku_id) == E3_PLAN2)
    assert sdk_e3.prepaid_units.enabled == 25 and sdk_e3.consumed_units == e3["consumedUnits"]


def test_roles_assign_list_activate_and_remove(sim: SimulatedTenant) -> None:
    adele = sim.state.user_by_upn(f"adele.vance@{DOMAIN}")
    assert adele is not None

    async def body(gw: GraphGateway) -> dict[str, Any]:
        out: dict[str, Any] = {}
        query = RoleDefinitionsRequestBuilder.RoleDefinitionsRequestBuilderGetQueryParameters(
            filter=f"templateId eq '{EXCHANGE_ADMIN_ROLE_TEMPLATE}'"
        )
        defs = await gw.client.role_management.directory.role_definitions.get(
            RequestConfiguration(query_parameters=query)
        )
        out["defs"] = [d.display_name for d in defs.value]
        with pytest.raises(ODataError) as inactive:
            await gw.client.directory_roles_with_role_template_id(EXCHANGE_ADMIN_ROLE_TEMPLATE).get()
        out["inactive"] = odata(inactive.value)
        assignment = UnifiedRoleAssignment(
            principal_id=adele.id, role_definition_id=EXCHANGE_ADMIN_ROLE_TEMPLATE, directory_scope_id="/"
        )
        out["created"] = await gw.client.role_management.directory.role_assignments.post(assignment)
        with pytest.raises(ODataError) as duplicate:
            await gw.client.role_management.directory.role_assignments.post(assignment)
        out["duplicate"] = odata(duplicate.value)
        out["listed"] = await gw.role_assignments(
            principal_id=adele.id, role_definition_id=EXCHANGE_ADMIN_ROLE_TEMPLATE
        )
        role = await gw.client.directory_roles_with_role_template_id(EXCHANGE_ADMIN_ROLE_TEMPLATE).get()
        out["role"] = role
        refs = await gw.send(GraphRequest("GET", f"/directoryRoles/{role.id}/members/$ref"))
        out["refs"] = refs.body
        await gw.client.directory_roles.by_directory_role_id(role.id).members.ref.delete(
            RequestConfiguration(
                query_parameters=gw.client.directory_roles.by_directory_role_id(
                    role.id
                ).members.ref.RefRequestBuilderDeleteQueryParameters(id=f"{gw.base_url}/directoryObjects/{adele.id}")
            )
        )
        out["after"] = await gw.role_assignments(principal_id=adele.id)
        return out

    out = run(sim, body)
    assert out["defs"] == ["Exchange Administrator"]
    assert out["inactive"][0] == 404
    assert out["created"].principal_id == adele.id and out["created"].id
    assert out["duplicate"] == (
        400,
        "Request_BadRequest",
        "A conflicting object with one or more of the specified property values is present in the directory.",
    )
    assert [a["id"] for a in out["listed"]] == [out["created"].id]
    assert out["role"].role_template_id == EXCHANGE_ADMIN_ROLE_TEMPLATE
    assert out["refs"]["value"] == [{"@odata.id": f"{sim.url}/v1.0/directoryObjects/{adele.id}"}]
    assert out["after"] == []


def test_group_transitive_members_resolve_nested_groups(sim: SimulatedTenant) -> None:
    traders = next(g for g in sim.state.groups.values() if g.display_name == "Traders")
    lee = sim.state.user_by_upn(f"lee.gu@{DOMAIN}")
    assert lee is not None
    outer = Group(id="5a1b2c3d-0000-4000-8000-000000000001", display_name="Desk", members=[traders.id, lee.id])
    sim.state.groups[outer.id] = outer

    async def body(gw: GraphGateway) -> tuple[Any, ...]:
        pages = [p async for p in gw.transitive_member_users(outer.id, ["id", "userPrincipalName"])]
        direct = await gw.send(GraphRequest("GET", f"/groups/{outer.id}/members"))
        small = await gw.send(GraphRequest("GET", f"/groups/{outer.id}/transitiveMembers/graph.user?$top=1"))
        sdk = await gw.client.groups.by_group_id(outer.id).transitive_members.graph_user.get()
        with pytest.raises(GraphError) as missing:
            await gw.send(GraphRequest("GET", "/groups/00000000-0000-0000-0000-000000000000/members"))
        return pages, direct.body, small.body, sdk, missing.value

    pages, direct, small, sdk, missing = run(sim, body)
    users = {u["userPrincipalName"] for p in pages for u in p}
    assert users == {f"adele.vance@{DOMAIN}", f"diego.siciliani@{DOMAIN}", f"lee.gu@{DOMAIN}"}
    assert {m["@odata.type"] for m in direct["value"]} == {"#microsoft.graph.group", "#microsoft.graph.user"}
    assert len(small["value"]) == 1 and "@odata.nextLink" in small
    assert len(sdk.value) == 3
    assert missing.status == 404


# -- service principals -------------------------------------------------------------------------------


def test_service_principal_replication_conflict_and_delete() -> None:
    # replication takes 1,000 real seconds unless the test moves the simulated clock: no race with a slow machine
    with simulated_tenant("fresh", time_scale=0.001, sp_replication_delay=1_000_000.0) as sim:
        app_id = "11111111-2222-4333-8444-555555555555"

        async def body(gw: GraphGateway) -> dict[str, Any]:
            out: dict[str, Any] = {}
            created = await gw.client.service_principals.post(SdkServicePrincipal(app_id=app_id))
            out["created"] = created
            out["right_away"] = await gw.service_principal_by_app_id(app_id)
            with pytest.raises(ODataError) as again:
                await gw.client.service_principals.post(SdkServicePrincipal(app_id=app_id))
            out["again"] = odata(again.value)
            sim.state.clock.advance(1_000_001.0)
            out["later"] = await gw.service_principal_by_app_id(app_id)
            assert created is not None and created.id
            exchange = await gw.send(
                GraphRequest("GET", "/servicePrincipals?$filter=appId eq '00000002-0000-0ff1-ce00-000000000000'")
            )
            exchange_sps = (exchange.body or {}).get("value", [])
            if not exchange_sps:  # the resource service principal exists once something was granted on it
                from m365archive.sim.scenario import ensure_resource_sp

                with sim.state.lock:
                    ensure_resource_sp(sim.state, "exchange")
                exchange = await gw.send(
                    GraphRequest("GET", "/servicePrincipals?$filter=appId eq '00000002-0000-0ff1-ce00-000000000000'")
                )
                exchange_sps = (exchange.body or {}).get("value", [])
            resource_id = exchange_sps[0]["id"]
            await gw.send(
                GraphRequest(
                    "POST",
                    "/oauth2PermissionGrants",
                    {
                        "clientId": created.id,
                        "consentType": "AllPrincipals",
                        "resourceId": resource_id,
                        "scope": "EWS.AccessAsUser.All",
                    },
                )
            )
            await gw.send(
                GraphRequest(
                    "POST",
                    f"/servicePrincipals/{created.id}/appRoleAssignments",
                    {
                        "principalId": created.id,
                        "resourceId": resource_id,
                        "appRoleId": "dc890d15-9560-4a4c-9b7f-a736ec74ec40",
                    },
                )
            )
            out["grants"] = await gw.oauth2_permission_grants(created.id)
            out["roles"] = await gw.app_role_assignments(created.id)
            deleted = await gw.send(GraphRequest("DELETE", f"/servicePrincipals(appId='{app_id}')"))
            out["deleted"] = deleted.status
            out["gone"] = await gw.service_principal_by_app_id(app_id)
            return out

        out = run(sim, body)
        assert out["created"].app_id == app_id
        assert out["right_away"] is None  # not replicated yet
        assert out["again"][:2] == (409, "Request_MultipleObjectsWithSameKeyValue")
        assert out["later"]["appId"] == app_id
        assert [g["scope"] for g in out["grants"]] == ["EWS.AccessAsUser.All"]
        assert len(out["roles"]) == 1 and out["roles"][0]["principalType"] == "ServicePrincipal"
        assert out["deleted"] == 204 and out["gone"] is None
        sp_id = out["created"].id
        assert not [g for g in sim.state.oauth2_grants.values() if g.client_id == sp_id]
        assert not [a for a in sim.state.app_role_assignments.values() if a.principal_id == sp_id]


# -- $batch ----------------------------------------------------------------------------------------------


def test_batch_depends_on_and_failed_dependency(sim: SimulatedTenant) -> None:
    sim.state.knobs.user_replication_delay = 0.0  # batch semantics here; replication lag: test_fidelity_part2
    existing = {
        "accountEnabled": True,
        "displayName": "Adele",
        "mailNickname": "adele",
        "userPrincipalName": f"adele.vance@{DOMAIN}",
        "passwordProfile": {"password": "Str0ng!Passw0rd"},
    }
    fresh = dict(existing, userPrincipalName=f"new.user@{DOMAIN}", mailNickname="new.user")
    json_header = {"Content-Type": "application/json"}
    payload = {
        "requests": [
            {"id": "1", "method": "POST", "url": "/users", "body": existing, "headers": json_header},
            {
                "id": "2",
                "method": "PATCH",
                "url": f"/users/adele.vance@{DOMAIN}",
                "dependsOn": ["1"],
                "body": {"usageLocation": "FR"},
                "headers": json_header,
            },
            {"id": "3", "method": "POST", "url": "/users", "body": fresh, "headers": json_header},
            {
                "id": "4",
                "method": "PATCH",
                "url": f"/users/new.user@{DOMAIN}",
                "dependsOn": ["3"],
                "body": {"usageLocation": "FR"},
                "headers": json_header,
            },
            {"id": "5", "method": "GET", "url": f"/users/new.user@{DOMAIN}?$select=usageLocation", "dependsOn": ["4"]},
            {"id": "6", "method": "POST", "url": "/users", "body": fresh},
        ]
    }

    async def body(gw: GraphGateway) -> dict[str, dict[str, Any]]:
        reply = await gw.send(GraphRequest("POST", "/$batch", payload))
        assert reply.body is not None
        return {r["id"]: r for r in reply.body["responses"]}

    results = run(sim, body)
    assert results["1"]["status"] == 400 and "already exists" in results["1"]["body"]["error"]["message"]
    assert results["2"]["status"] == 424
    assert results["3"]["status"] == 201 and results["4"]["status"] == 204
    assert results["5"]["status"] == 200 and results["5"]["body"]["usageLocation"] == "FR"
    assert results["6"]["status"] == 400 and "Content-Type" in results["6"]["body"]["error"]["message"]
    assert sim.state.user_by_upn(f"adele.vance@{DOMAIN}").usage_location == "US"  # type: ignore[union-attr]


def test_batch_limits_and_gateway_chunking(sim: SimulatedTenant) -> None:
    upns = [u.user_principal_name for u in sim.state.users.values()]
    requests = [GraphRequest("GET", f"/users/{upns[i % len(upns)]}?$select=userPrincipalName") for i in range(45)]
    requests[7] = GraphRequest("GET", f"/users/nobody@{DOMAIN}")

    async def body(gw: GraphGateway) -> tuple[GraphError, list[Any]]:
        too_many = {"requests": [{"id": str(i), "method": "GET", "url": "/subscribedSkus"} for i in range(21)]}
        with pytest.raises(GraphError) as info:
            await gw.send(GraphRequest("POST", "/$batch", too_many))
        return info.value, await gw.batch(requests)

    error, responses = run(sim, body)
    assert error.status == 400
    assert len(responses) == 45
    assert responses[7].status == 404
    for i, response in enumerate(responses):
        if i != 7:
            assert response.status == 200 and response.body is not None
            assert response.body["userPrincipalName"] == upns[i % len(upns)]
    assert sum(1 for r in sim.requests if r["path"] == "/v1.0/$batch") == 4  # 1 refused + 3 chunks


# -- faults and throttling --------------------------------------------------------------------------------


def test_503_after_commit_the_sdk_does_not_resend_on_its_own() -> None:
    """The trap: the create took effect, then the gateway said 503. The SDK's RetryHandler used to resend the POST
    on top of the floor's own resends; it is switched off, so the fluent client sends once and reports the 503
    (the floor's policy, tenant/retry.py, decides every resend)."""
    with simulated_tenant(
        "fresh", time_scale=0.001, fault_rate=1.0, fault_kinds=("503",), fault_methods=("POST /v1.0/users",)
    ) as sim:

        async def body(gw: GraphGateway) -> ODataError:
            with pytest.raises(ODataError) as info:
                await gw.client.users.post(new_user(f"catchall@{DOMAIN}"))
            return info.value

        error = run(sim, body)
        assert odata(error)[0] == 503
        posts = [r for r in sim.requests if r["method"] == "POST" and r["path"] == "/v1.0/users"]
        assert [(p["status"], p.get("fault")) for p in posts] == [(503, "503")]
        assert sum(1 for u in sim.state.users.values() if u.user_principal_name == f"catchall@{DOMAIN}") == 1


def test_throttled_requests_are_retried_after_retry_after() -> None:
    # 2 requests a second: even a slow machine sends eight calls faster than that
    with simulated_tenant("fresh", time_scale=0.001, graph_rate=2.0, graph_burst=2) as sim:

        async def body(gw: GraphGateway) -> list[Any]:
            # At once, so that the burst of 2 is exceeded however slow the machine is; each waits its turn.
            return list(await asyncio.gather(*(gw.subscribed_skus() for _ in range(8))))

        results = run(sim, body)
        assert all(len(r) == 2 for r in results)
        statuses = [r["status"] for r in sim.requests if r["path"] == "/v1.0/subscribedSkus"]
        assert 429 in statuses and statuses.count(200) == 8


# -- admin consent page ------------------------------------------------------------------------------------


def _consent_query(**overrides: str) -> dict[str, str]:
    query = {
        "client_id": CONNECTOR_APP_ID,
        "response_type": "code",
        "redirect_uri": "https://portal.azure.com/",
        "prompt": "admin_consent",
        "state": "xyz",
    }
    query.update(overrides)
    return query


def test_consent_page_accept_creates_service_principal_after_replication() -> None:
    # replication takes 1,000 real seconds unless the test moves the simulated clock: no race with a slow machine
    with simulated_tenant("fresh", time_scale=0.001, sp_replication_delay=1_000_000.0) as sim:
        _accept_and_wait(sim)


def _accept_and_wait(sim: SimulatedTenant) -> None:
    url = f"{sim.url}/common/oauth2/authorize"
    page = httpx.get(url, params=_consent_query())
    assert page.status_code == 200
    assert "Third-party data connector" in page.text and "EWS.AccessAsUser.All" in page.text
    assert 'method="post"' in page.text and 'value="accept"' in page.text
    form = {**_consent_query(), "action": "accept"}
    accepted = httpx.post(url, data=form, follow_redirects=False)
    assert accepted.status_code == 302
    location = urlsplit(accepted.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == "https://portal.azure.com/"
    params = parse_qs(location.query)
    assert params["admin_consent"] == ["True"] and params["tenant"] == [sim.state.tenant_id]
    assert params["state"] == ["xyz"]

    async def body(gw: GraphGateway) -> tuple[Any, ...]:
        right_away = await gw.service_principal_by_app_id(CONNECTOR_APP_ID)
        sim.state.clock.advance(sim.state.knobs.sp_replication_delay + 1)
        sp = await gw.service_principal_by_app_id(CONNECTOR_APP_ID)
        assert sp is not None
        return right_away, sp, await gw.oauth2_permission_grants(sp["id"]), await gw.app_role_assignments(sp["id"])

    right_away, sp, grants, roles = run(sim, body)
    assert right_away is None
    assert sp["displayName"] == "Third-party data connector"
    assert [(g["consentType"], g["scope"]) for g in grants] == [("AllPrincipals", "EWS.AccessAsUser.All")]
    assert roles and roles[0]["resourceDisplayName"] == "Office 365 Exchange Online"
    # consenting again changes nothing
    assert httpx.post(url, data=form, follow_redirects=False).status_code == 302
    assert len([s for s in sim.state.service_principals.values() if s.app_id == CONNECTOR_APP_ID]) == 1
    assert len(sim.state.oauth2_grants) == 1


def test_consent_page_cancel_v2_and_errors(sim: SimulatedTenant) -> None:
    url = f"{sim.url}/common/oauth2/authorize"
    cancelled = httpx.post(url, data={**_consent_query(), "action": "cancel"}, follow_redirects=False)
    assert cancelled.status_code == 302
    assert parse_qs(urlsplit(cancelled.headers["location"]).query)["error"] == ["access_denied"]
    assert not sim.state.service_principals or all(
        sp.app_id != CONNECTOR_APP_ID for sp in sim.state.service_principals.values()
    )

    no_prompt = {k: v for k, v in _consent_query().items() if k != "prompt"}
    for query in (
        no_prompt,
        _consent_query(client_id="not-a-guid"),
        _consent_query(client_id="0" * 8 + "-0000-0000-0000-" + "0" * 12),
    ):
        refused = httpx.get(url, params=query)
        assert refused.status_code == 400 and "AADSTS" in refused.text

    v2 = f"{sim.url}/{sim.state.tenant_id}/v2.0/adminconsent"
    v2_query = {
        "client_id": CONNECTOR_APP_ID,
        "redirect_uri": "https://portal.azure.com/",
        "scope": "https://outlook.office365.com/.default",
    }
    assert httpx.get(v2, params=v2_query).status_code == 200
    accepted = httpx.post(v2, data={**v2_query, "action": "accept"}, follow_redirects=False)
    assert accepted.status_code == 302 and "admin_consent=True" in accepted.headers["location"]
    assert sim.state.sp_by_app_id(CONNECTOR_APP_ID, include_unreplicated=True) is not None
    assert httpx.get(f"{sim.url}/fabrikam.example/oauth2/authorize", params=_consent_query()).status_code == 400


def test_consent_needs_an_admin() -> None:
    state = load_scenario("fresh")
    state.role_assignments.clear()  # the operator holds no admin role
    with simulated_tenant(state, time_scale=0.001) as sim:
        refused = httpx.post(
            f"{sim.url}/common/oauth2/authorize", data={**_consent_query(), "action": "accept"}, follow_redirects=False
        )
        assert refused.status_code == 403 and "AADSTS90094" in refused.text
        assert sim.state.sp_by_app_id(CONNECTOR_APP_ID, include_unreplicated=True) is None


def test_fluent_list_users_with_sdk_query_parameters(sim: SimulatedTenant) -> None:
    async def body(gw: GraphGateway) -> Any:
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            select=["id", "userPrincipalName", "assignedLicenses"],
            top=2,
            count=True,
            filter="assignedLicenses/$count ne 0",
        )
        config = RequestConfiguration(query_parameters=query)
        config.headers.add("ConsistencyLevel", "eventual")
        return await gw.client.users.get(config)

    result = run(sim, body)
    assert len(result.value) == 2 and result.odata_next_link
    assert result.odata_count == sum(1 for u in sim.state.users.values() if u.assigned_licenses)
    assert all(u.assigned_licenses for u in result.value)
