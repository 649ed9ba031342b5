"""GraphGateway against the simulated tenant: exact requests, errors, paging, $batch, retries, transport faults."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from m365archive.sim.server import SimulatedTenant, simulated_tenant
from m365archive.sim.state import User
from m365archive.tenant.graph import GraphGateway, _encode_path
from m365archive.tenant.graph_types import GraphError, GraphRequest
from m365archive.tenant.simcredential import AsyncSimulatorCredential, token_url

T = TypeVar("T")
DOMAIN = "contoso.onmicrosoft.com"


def run(sim: SimulatedTenant, body: Callable[[GraphGateway], Awaitable[T]], **options: Any) -> T:
    async def main() -> T:
        options.setdefault("retry_delay", 0.0)
        gateway = GraphGateway(
            sim.url + "/v1.0",
            AsyncSimulatorCredential(token_url(sim.url, sim.state.tenant_id)),
            scopes=["https://graph.microsoft.com/.default"],
            **options,
        )
        try:
            return await body(gateway)
        finally:
            await gateway.aclose()

    return asyncio.run(main())


def one_shot_faults(sim: SimulatedTenant) -> None:
    """Let the configured fault happen once, then turn the knob off."""
    faults = sim.load.faults
    pick = faults.pick

    def once(method: str, path: str) -> str | None:
        fault = pick(method, path)
        if fault:
            faults.rate = 0.0
        return fault

    faults.pick = once  # type: ignore[method-assign]


def test_send_is_exact_and_errors_carry_graph_fields(sim: SimulatedTenant) -> None:
    adele = sim.state.user_by_upn(f"adele.vance@{DOMAIN}")
    assert adele is not None
    patch = {"usageLocation": "NO", "accountEnabled": True}

    async def body(gw: GraphGateway) -> tuple[Any, GraphError]:
        ok = await gw.send(GraphRequest("PATCH", f"/users/{adele.id}", patch, headers={"client-request-id": "abc"}))
        with pytest.raises(GraphError) as info:
            await gw.send(GraphRequest("GET", f"/users/nobody@{DOMAIN}"))
        return ok, info.value

    ok, error = run(sim, body)
    assert (ok.status, ok.body) == (204, None) and ok.request_id
    entry = next(r for r in sim.requests if r["method"] == "PATCH")
    assert entry["path"] == f"/v1.0/users/{adele.id}" and entry["body"] == patch
    assert adele.usage_location == "NO"
    assert (error.status, error.code, error.not_found) == (404, "Request_ResourceNotFound", True)
    assert error.request_id and "does not exist" in error.message


def test_guest_upn_is_encoded_on_the_wire(sim: SimulatedTenant) -> None:
    guest = User(
        id="0b0c0d0e-0000-4000-8000-00000000000a",
        user_principal_name=f"ana_fabrikam.com#EXT#@{DOMAIN}",
        display_name="Ana (guest)",
        user_type="Guest",
    )
    sim.state.add_user(guest)
    assert _encode_path("/users/a b#c") == "/users/a%20b%23c"

    async def body(gw: GraphGateway) -> dict[str, Any] | None:
        return await gw.get_user(guest.user_principal_name, ["id", "userType"])

    found = run(sim, body)
    assert found is not None and found["id"] == guest.id and found["userType"] == "Guest"


def test_iter_users_follows_next_links(sim: SimulatedTenant) -> None:
    async def body(gw: GraphGateway) -> list[list[dict[str, Any]]]:
        return [page async for page in gw.iter_users(select=["id", "mail"], filter="startswith(mail,'a')", page_size=1)]

    pages = run(sim, body)
    expected = [u for u in sim.state.users.values() if (u.mail or "").startswith("a")]
    assert len(pages) == len(expected) >= 2
    assert [p[0]["id"] for p in pages] == [u.id for u in expected]


def test_reads_return_graph_camel_case(sim: SimulatedTenant) -> None:
    async def body(gw: GraphGateway) -> tuple[Any, ...]:
        skus = await gw.subscribed_skus()
        admin = await gw.get_user(f"admin@{DOMAIN}", ["id"])
        assert admin is not None
        roles = await gw.role_assignments(principal_id=admin["id"])
        missing_sp = await gw.service_principal_by_app_id("8dfbc50b-2111-4d03-9b4d-dd0d00aae7a2")
        return skus, roles, missing_sp

    skus, roles, missing_sp = run(sim, body)
    assert {"skuId", "skuPartNumber", "consumedUnits", "prepaidUnits", "servicePlans"} <= set(skus[0])
    assert roles[0]["roleDefinitionId"] == "62e90394-69f5-4237-9190-012177145e10"
    assert missing_sp is None


def test_batch_keeps_input_order_and_retries_throttled_items() -> None:
    with simulated_tenant("fresh", time_scale=0.001, graph_rate=1000.0, graph_burst=10) as sim:
        upns = [u.user_principal_name for u in sim.state.users.values()]
        requests = [GraphRequest("GET", f"/users/{upns[i % len(upns)]}?$select=userPrincipalName") for i in range(30)]

        async def body(gw: GraphGateway) -> list[Any]:
            return await gw.batch(requests)

        responses = run(sim, body)
        assert [r.status for r in responses] == [200] * 30
        assert [r.body["userPrincipalName"] for r in responses if r.body] == [upns[i % len(upns)] for i in range(30)]
        assert sum(1 for r in sim.requests if r["path"] == "/v1.0/$batch") > 2  # throttled items went again


def test_batch_writes_carry_content_type(sim: SimulatedTenant) -> None:
    adele = sim.state.user_by_upn(f"adele.vance@{DOMAIN}")
    assert adele is not None

    async def body(gw: GraphGateway) -> list[Any]:
        return await gw.batch(
            [
                GraphRequest("PATCH", f"/users/{adele.id}", {"usageLocation": "IE"}),
                GraphRequest("POST", f"/users/{adele.id}/assignLicense", {"addLicenses": [], "removeLicenses": []}),
            ]
        )

    patched, assigned = run(sim, body)
    assert patched.status == 204 and assigned.status == 200
    assert adele.usage_location == "IE"


def test_dropped_connection_on_a_read_is_retried() -> None:
    with simulated_tenant(
        "fresh", time_scale=0.001, fault_rate=1.0, fault_kinds=("reset",), fault_methods=("GET /v1.0/subscribedSkus",)
    ) as sim:
        one_shot_faults(sim)

        async def body(gw: GraphGateway) -> list[dict[str, Any]]:
            return await gw.subscribed_skus()

        assert len(run(sim, body)) == 2
        assert [r.get("fault") for r in sim.requests if r["path"] == "/v1.0/subscribedSkus"] == ["reset", None]


def test_dropped_connection_on_a_write_is_reported_not_repeated() -> None:
    with simulated_tenant(
        "fresh", time_scale=0.001, fault_rate=1.0, fault_kinds=("reset",), fault_methods=("POST /v1.0/users",)
    ) as sim:
        one_shot_faults(sim)
        new_user = {
            "accountEnabled": True,
            "displayName": "Catch-all",
            "mailNickname": "catchall",
            "userPrincipalName": f"catchall@{DOMAIN}",
            "passwordProfile": {"password": "Str0ng!Passw0rd"},
        }

        async def body(gw: GraphGateway) -> GraphError:
            with pytest.raises(GraphError) as info:
                await gw.send(GraphRequest("POST", "/users", new_user))
            return info.value

        error = run(sim, body)
        assert (error.status, error.code) == (0, "ConnectionError")
        assert len([r for r in sim.requests if r["method"] == "POST" and r["service"] == "graph"]) == 1
        assert sim.state.user_by_upn(f"catchall@{DOMAIN}") is not None  # it happened, the client can't know


def test_503_on_a_post_safe_to_resend_is_resent_and_meets_the_duplicate() -> None:
    # The SDK's RetryHandler is off: the gateway resends a 503'd POST only when told it is safe (the steps mark a
    # create whose "already exists" they recognise).
    with simulated_tenant(
        "fresh", time_scale=0.001, fault_rate=1.0, fault_kinds=("503",), fault_methods=("POST /v1.0/users",)
    ) as sim:
        one_shot_faults(sim)
        new_user = {
            "accountEnabled": True,
            "displayName": "Catch-all",
            "mailNickname": "catchall",
            "userPrincipalName": f"catchall@{DOMAIN}",
            "passwordProfile": {"password": "Str0ng!Passw0rd"},
        }

        async def body(gw: GraphGateway) -> GraphError:
            with pytest.raises(GraphError) as info:
                await gw.send(GraphRequest("POST", "/users", new_user), resend=True)
            return info.value

        error = run(sim, body)
        assert error.duplicate and error.status == 400 and error.sends == 2
        posts = sorted(
            (r for r in sim.requests if r["method"] == "POST" and r["service"] == "graph"), key=lambda r: r["time"]
        )  # by start
        assert [r["status"] for r in posts] == [503, 400]


def test_https_required_except_on_this_machine() -> None:
    credential = AsyncSimulatorCredential(token_url("http://127.0.0.1:9", "t"))
    with pytest.raises(ValueError):
        GraphGateway("http://graph.microsoft.com/v1.0", credential)
    with pytest.raises(ValueError):
        GraphGateway("ftp://127.0.0.1/v1.0", credential)

    async def build() -> None:
        for url in ("http://localhost:1/v1.0", "http://[::1]:1/v1.0", "https://graph.microsoft.us/v1.0"):
            gw = GraphGateway(url, credential)
            await gw.aclose()

    asyncio.run(build())


def test_503_on_a_post_not_safe_to_resend_is_sent_once_and_reported() -> None:
    with simulated_tenant(
        "fresh", time_scale=0.001, fault_rate=1.0, fault_kinds=("503",), fault_methods=("POST /v1.0/users",)
    ) as sim:
        one_shot_faults(sim)
        new_user = {
            "accountEnabled": True,
            "displayName": "Catch-all",
            "mailNickname": "catchall",
            "userPrincipalName": f"catchall@{DOMAIN}",
            "passwordProfile": {"password": "Str0ng!Passw0rd"},
        }

        async def body(gw: GraphGateway) -> GraphError:
            with pytest.raises(GraphError) as info:
                await gw.send(GraphRequest("POST", "/users", new_user))
            return info.value

        error = run(sim, body)
        assert error.status == 503 and error.sends == 1
        assert [r["status"] for r in sim.requests if r["method"] == "POST" and r["service"] == "graph"] == [503]
