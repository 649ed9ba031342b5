"""Issue 12, "nothing is ok unless the service confirmed it": each behaviour the review found, against the
strict simulator (the product converges), the naive request (it gets the real service's answer) and, with the
behaviour's knob off, the lenient simulator (so each test can fail). Sources: docs/fidelity.md."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from m365archive.sim.hosts import admin_suffix, front_door, host_map, regional_host
from m365archive.sim.server import SimulatedTenant, simulated_tenant
from m365archive.steps.connector_readiness import group_id, role_name
from m365archive.tenant.exchange import Cmdlet, TransportError
from m365archive.tenant.exchange_rest import (
    APP_ANCHOR,
    COMPLIANCE_SCOPE,
    RestExchangeRunner,
    anchor_for,
    regional_base,
)
from m365archive.tenant.hostmap import SyncHostMapTransport, mapped_origin
from m365archive.tenant.simcredential import AsyncSimulatorCredential, SimulatorCredential

TENANT = "0b5c1d2e-0000-4000-8000-00000000c0de"
FRONT = "https://ps.compliance.protection.outlook.com"


@pytest.mark.parametrize(
    ("front", "location", "expected"),
    [
        # CIPP-API New-ExoRequest.ps1: the Location host's first label + the compliance suffix.
        (FRONT, f"https://nam12b.admin.protection.outlook.com/adminapi/beta/{TENANT}/EXOBanner", "nam12b"),
        # Monkey365 Get-MonkeySecCompBackendUri: `admin` -> `ps.compliance` in the Location host: the same host.
        (FRONT, "https://eur02b.admin.protection.outlook.com/AdminApi/v1.0/x/EXOModuleFile", "eur02b"),
        # A Location already on a regional compliance host.
        (FRONT, "https://gcc02b.ps.compliance.protection.outlook.com/adminapi/beta/x/InvokeCommand", "gcc02b"),
        # Labels are case-insensitive host names.
        (FRONT, "https://NAM13B.Admin.Protection.Outlook.com/", "nam13b"),
    ],
)
def test_the_regional_host_is_the_location_label_plus_the_front_door_host(
    front: str, location: str, expected: str
) -> None:
    assert regional_base(front, location) == f"https://{expected}.ps.compliance.protection.outlook.com"


def test_government_and_china_regional_hosts_follow_the_same_rule_unverified() -> None:
    # Unverified: no public source shows these clouds' redirects; the rule is ScubaGear's (label + front door host).
    gcch = "https://ps.compliance.protection.office365.us"
    assert regional_base(gcch, "https://gcch01.admin.protection.office365.us/x") == (
        "https://gcch01.ps.compliance.protection.office365.us"
    )
    china = "https://ps.compliance.protection.partner.outlook.cn"
    assert regional_base(china, "https://chn01.admin.protection.partner.outlook.cn/x").startswith("https://chn01.")


def test_a_location_on_the_front_door_itself_names_no_region() -> None:
    assert regional_base(FRONT, "/adminapi/beta/x/InvokeCommand") == FRONT
    assert regional_base(FRONT, f"{FRONT}/adminapi/beta/x") == FRONT


def test_host_map_matches_the_host_and_hosts_under_it_only() -> None:
    host_map = {"ps.compliance.protection.outlook.com": "http://127.0.0.1:1", "outlook.com": "http://127.0.0.1:2"}
    assert mapped_origin("nam12b.ps.compliance.protection.outlook.com", host_map) == "http://127.0.0.1:1"
    assert mapped_origin("ps.compliance.protection.outlook.com", host_map) == "http://127.0.0.1:1"
    assert mapped_origin("admin.protection.outlook.com", host_map) == "http://127.0.0.1:2"
    assert mapped_origin("xps.compliance.protection.outlook.org", host_map) is None


def test_app_only_tokens_anchor_on_the_system_mailbox_never_on_a_display_name() -> None:
    app = {"tid": TENANT, "app_displayname": "m365archive-automation", "appid": "1", "idtyp": "app"}
    assert anchor_for(app, TENANT) == f"{APP_ANCHOR}{TENANT}"
    assert APP_ANCHOR == "APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@"
    user = {"tid": TENANT, "upn": "admin@contoso.onmicrosoft.com"}
    assert anchor_for(user, TENANT) == "UPN:admin@contoso.onmicrosoft.com"
    assert anchor_for({"tid": TENANT, "unique_name": "m365archive-automation"}, TENANT).startswith("APP:")


def test_roles_match_on_the_last_segment_of_their_identity() -> None:
    qualified = f"FFO.extest.microsoft.com/Microsoft Exchange Hosted Organizations/{TENANT}/Data Connector Admin"
    assert role_name(qualified) == "Data Connector Admin"
    assert role_name("Data Connector Admin") == "Data Connector Admin"
    guid = "5f1c0b6e-0000-4000-8000-000000000001"
    assert group_id({"Name": "OrganizationManagement", "ExchangeObjectId": guid, "Guid": "other"}) == guid
    assert group_id({"Name": "OrganizationManagement", "Guid": guid}) == guid


# -- 1. Security & Compliance regional host ------------------------------------------------------------------


def _compliance_runner(sim: SimulatedTenant, **kwargs: Any) -> RestExchangeRunner:
    state = sim.state
    return RestExchangeRunner(
        f"https://{front_door(state)}",
        state.tenant_id,
        AsyncSimulatorCredential(state.tenant_id, upn=state.signed_in_user),
        scope=COMPLIANCE_SCOPE,
        side="compliance",
        host_map=host_map(state, sim.url),
        backoff_base=0.001,
        backoff_max=0.01,
        **kwargs,
    )


def _policy_body(name: str) -> dict[str, Any]:
    return {
        "CmdletInput": {
            "CmdletName": "New-RetentionCompliancePolicy",
            "Parameters": {"Name": name, "ExchangeLocation": "All"},
        }
    }


def _wire_headers(
    sim: SimulatedTenant, resource: str = "https://ps.compliance.protection.outlook.com"
) -> dict[str, str]:
    token = SimulatorCredential(sim.state.tenant_id).get_token(f"{resource}/.default").token
    return {"Authorization": f"Bearer {token}", "X-AnchorMailbox": f"UPN:{sim.state.signed_in_user}"}


def test_compliance_calls_reach_the_regional_host_found_once(sim: SimulatedTenant) -> None:
    state = sim.state

    async def run() -> None:
        first, second = _compliance_runner(sim, discover_region=True), _compliance_runner(sim, discover_region=True)
        try:
            groups = await first.invoke(Cmdlet("Get-RoleGroup"))
            assert groups.ok and groups.objects, groups.error
            made = await second.invoke_many(
                [Cmdlet("New-RetentionCompliancePolicy", {"Name": "Regional", "ExchangeLocation": "All"})]
            )
            assert made[0].ok, made[0].error
        finally:
            await first.aclose()
            await second.aclose()

    asyncio.run(run())
    assert "Regional" in state.retention_policies
    discovery = [e for e in sim.requests if "EXOBanner" in e["path"]]
    assert len(discovery) == 1 and discovery[0]["status"] == 302  # once per tenant, cached
    assert discovery[0]["host"] == front_door(state)
    served = [e for e in sim.requests if e["service"] == "compliance" and "EXOBanner" not in e["path"]]
    assert served and {e["host"] for e in served} == {regional_host(state)}


def test_a_redirected_compliance_call_is_never_ok_and_nothing_is_created(sim: SimulatedTenant) -> None:
    async def run() -> None:
        runner = _compliance_runner(sim)  # no discovery: straight at the front door
        try:
            with pytest.raises(TransportError, match=r"302.*not followed"):
                await runner.invoke(Cmdlet("Get-RoleGroup"))
            with pytest.raises(TransportError, match="not followed"):
                await runner.invoke_many(
                    [Cmdlet("New-RetentionCompliancePolicy", {"Name": "Lost", "ExchangeLocation": "All"})]
                )
        finally:
            await runner.aclose()

    asyncio.run(run())
    assert "Lost" not in sim.state.retention_policies


def test_the_naive_redirect_gets_the_real_services_answer(sim: SimulatedTenant) -> None:
    state = sim.state
    url = f"https://{front_door(state)}/adminapi/beta/{state.tenant_id}/InvokeCommand"
    transport = SyncHostMapTransport(host_map(state, sim.url))
    with httpx.Client(transport=transport, timeout=30) as client:
        moved = client.post(url, json=_policy_body("Naive"), headers=_wire_headers(sim))
        assert moved.status_code == 302
        location = moved.headers["location"]
        assert httpx.URL(location).host == f"{state.compliance_region}.{admin_suffix(state)}"  # not the S&C host
        with httpx.Client(transport=transport, timeout=30, follow_redirects=True) as follower:
            followed = follower.post(url, json=_policy_body("Naive"), headers=_wire_headers(sim))
        assert followed.request.method == "GET" and followed.status_code == 404  # the POST became a GET, elsewhere
    assert "Naive" not in state.retention_policies


def test_without_the_redirect_knob_the_front_door_serves() -> None:
    with simulated_tenant("fresh", time_scale=0.001, scc_regional_redirect=False) as sim:
        state = sim.state
        url = f"https://{front_door(state)}/adminapi/beta/{state.tenant_id}/InvokeCommand"
        with httpx.Client(transport=SyncHostMapTransport(host_map(state, sim.url)), timeout=30) as client:
            assert client.post(url, json=_policy_body("Lenient"), headers=_wire_headers(sim)).status_code == 200
        assert "Lenient" in state.retention_policies
