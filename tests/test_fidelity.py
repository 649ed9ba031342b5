"""Issue 12, "nothing is ok unless the service confirmed it": each behaviour the review found, against the
strict simulator (the product converges), the naive request (it gets the real service's answer) and, with the
behaviour's knob off, the lenient simulator (so each test can fail). Sources: docs/fidelity.md."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from m365archive.result import ExitCode
from m365archive.sim.hosts import admin_suffix, exchange_front_door, front_door, host_map, regional_host
from m365archive.sim.server import SimulatedTenant, simulated_tenant
from m365archive.steps.connector_readiness import group_id, role_name
from m365archive.tenant import exchange_rest
from m365archive.tenant.exchange import Cmdlet, TransportError
from m365archive.tenant.exchange_rest import (
    APP_ANCHOR,
    COMPLIANCE_SCOPE,
    EXCHANGE_SCOPE,
    RestExchangeRunner,
    anchor_for,
    regional_base,
)
from m365archive.tenant.hostmap import SyncHostMapTransport, mapped_origin
from m365archive.tenant.simcredential import AsyncSimulatorCredential, SimulatorCredential, token_url
from tests.clihelp import m365

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


def _front_door_runner(sim: SimulatedTenant, front: str, scope: str, side: str, **kwargs: Any) -> RestExchangeRunner:
    """The product's runner at a front door's real host name, sent to the simulator through its host map."""
    state = sim.state
    return RestExchangeRunner(
        f"https://{front}",
        state.tenant_id,
        AsyncSimulatorCredential(token_url(sim.url, state.tenant_id)),
        scope=scope,
        side=side,
        host_map=host_map(state, sim.url),
        backoff_base=0.001,
        backoff_max=0.01,
        **kwargs,
    )


def _compliance_runner(sim: SimulatedTenant, **kwargs: Any) -> RestExchangeRunner:
    return _front_door_runner(sim, front_door(sim.state), COMPLIANCE_SCOPE, "compliance", **kwargs)


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
    token = SimulatorCredential(token_url(sim.url, sim.state.tenant_id)).get_token(f"{resource}/.default").token
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


@pytest.mark.naive_requests
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


# -- 1b. Exchange Online: some tenants are redirected too (ScubaGear EXORestHelper.psm1) --------------------

EXO_LABEL = "contoso01"


@pytest.mark.parametrize(
    ("front", "location", "expected"),
    [
        # ScubaGear Get-ExchangeOnlineApiEndpoint: https://$Prefix$BackendSuffix, the prefix being the first label
        # of the Location host and the suffix the front door's host, per cloud.
        ("https://outlook.office365.com", "https://contoso01.outlook.office365.com/AdminApi/v1.0/x/EXOModuleFile",
         "https://contoso01.outlook.office365.com"),
        ("https://outlook.office365.us", "https://abc.outlook.office365.us/x", "https://abc.outlook.office365.us"),
        ("https://outlook-dod.office365.us", "https://Dod7.outlook-dod.office365.us/x",
         "https://dod7.outlook-dod.office365.us"),
        ("https://outlook.office365.com", "/AdminApi/v1.0/x/EXOModuleFile", "https://outlook.office365.com"),
    ],
)  # fmt: skip
def test_the_exchange_host_is_the_location_label_plus_the_front_door_host(
    front: str, location: str, expected: str
) -> None:
    assert regional_base(front, location) == expected


def _exchange_runner(sim: SimulatedTenant, **kwargs: Any) -> RestExchangeRunner:
    return _front_door_runner(sim, exchange_front_door(sim.state), EXCHANGE_SCOPE, "exchange-online", **kwargs)


def _enable_archive(upn: str) -> dict[str, Any]:
    return {"CmdletInput": {"CmdletName": "Enable-Mailbox", "Parameters": {"Identity": upn, "Archive": True}}}


def test_a_redirected_tenants_exchange_calls_reach_the_host_found_once(tmp_path: Path) -> None:
    with simulated_tenant("fresh", time_scale=0.001, exchange_redirect=EXO_LABEL) as sim:
        applied = m365(sim.url, "setup", "--yes", "--password-file", str(tmp_path / "pw"))
        assert applied.code == ExitCode.OK, applied.stdout + applied.stderr
        exchange = [e for e in sim.requests if e.get("service") == "exchange" and e.get("client") == "m365archive"]
        discovery = [e for e in sim.requests if "EXOModuleFile" in e["path"]]
        assert len(discovery) == 1 and discovery[0]["status"] == 302  # once per tenant and run
        assert discovery[0]["method"] == "GET" and discovery[0]["host"] == exchange_front_door(sim.state)
        assert exchange and {e["host"] for e in exchange} == {f"{EXO_LABEL}.outlook.office365.com"}
        assert not [e for e in exchange if 300 <= e["status"] < 400]  # nothing was redirected after discovery
        sim.log.clear()
        again = m365(sim.url, "--output", "json", "setup", "--dry-run", "--detailed-exitcode")
        assert again.code == ExitCode.OK, again.stdout + again.stderr
        assert sim.writes() == []


@pytest.mark.naive_requests
def test_a_redirected_exchange_call_is_never_ok_and_nothing_changes() -> None:
    with simulated_tenant("fresh", time_scale=0.001, exchange_redirect=EXO_LABEL) as sim:

        async def run() -> None:
            runner = _exchange_runner(sim)  # no discovery: straight at the front door
            try:
                with pytest.raises(TransportError, match=r"302.*not followed"):
                    await runner.invoke(Cmdlet("Get-Mailbox", {"Identity": ADELE}))
                with pytest.raises(TransportError, match="not followed"):
                    await runner.invoke_many([Cmdlet("Enable-Mailbox", {"Identity": ADELE, "Archive": True})])
            finally:
                await runner.aclose()

        asyncio.run(run())
        assert sim.state.transitions == {}


@pytest.mark.naive_requests
def test_the_naive_exchange_redirect_gets_the_real_services_answer() -> None:
    with simulated_tenant("fresh", time_scale=0.001, exchange_redirect=EXO_LABEL) as sim:
        state = sim.state
        url = f"https://{exchange_front_door(state)}/adminapi/beta/{state.tenant_id}/InvokeCommand"
        headers = _wire_headers(sim, "https://outlook.office365.com")
        transport = SyncHostMapTransport(host_map(state, sim.url))
        with httpx.Client(transport=transport, timeout=30) as client:
            moved = client.post(url, json=_enable_archive(ADELE), headers=headers)
            assert moved.status_code == 302
            assert httpx.URL(moved.headers["location"]).host == f"{EXO_LABEL}.outlook.office365.com"
        with httpx.Client(transport=transport, timeout=30, follow_redirects=True) as follower:
            followed = follower.post(url, json=_enable_archive(ADELE), headers=headers)
        assert followed.request.method == "GET" and followed.status_code == 405  # the POST became a GET
        assert state.transitions == {}


def test_without_the_exchange_redirect_knob_the_front_door_serves() -> None:
    with simulated_tenant("fresh", time_scale=0.001) as sim:  # exchange_redirect "": most tenants
        state = sim.state
        url = f"https://{exchange_front_door(state)}/adminapi/beta/{state.tenant_id}/InvokeCommand"
        headers = _wire_headers(sim, "https://outlook.office365.com")
        with httpx.Client(transport=SyncHostMapTransport(host_map(state, sim.url)), timeout=30) as client:
            answer = client.post(url, json=_enable_archive(ADELE), headers=headers)
        assert answer.status_code == 200, answer.text
        assert sum(state.transitions.values()) == 1


# -- 3. Exchange $batch: continue-on-error, per-item auth, unconfirmed items -----------------------------------

ADELE = "adele.vance@contoso.onmicrosoft.com"


def _batch(sim: SimulatedTenant, items: list[dict[str, Any]], prefer: str | None) -> list[dict[str, Any]]:
    state = sim.state
    base = f"{sim.url}/adminapi/beta/{state.tenant_id}"
    headers = _wire_headers(sim, "https://outlook.office365.com")
    if prefer:
        headers["Prefer"] = prefer
    body = {
        "requests": [
            {"id": str(i), "method": "POST", "url": f"{base}/InvokeCommand", **item} for i, item in enumerate(items)
        ]
    }
    r = httpx.post(f"{base}/$batch", json=body, headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    responses: list[dict[str, Any]] = r.json()["responses"]
    return responses


def _items(sim: SimulatedTenant, *, auth: bool = True) -> list[dict[str, Any]]:
    headers = _wire_headers(sim, "https://outlook.office365.com") if auth else {}
    cmdlets = [
        ("Set-Mailbox", {"Identity": ADELE, "HiddenFromAddressListsEnabled": True}),
        ("Set-Mailbox", {"Identity": "ghost@contoso.onmicrosoft.com", "AuditEnabled": True}),
        ("Set-Mailbox", {"Identity": ADELE, "AuditEnabled": True}),
    ]
    return [{"headers": headers, "body": {"CmdletInput": {"CmdletName": n, "Parameters": p}}} for n, p in cmdlets]


def test_a_batch_without_continue_on_error_stops_at_the_first_failed_item(sim: SimulatedTenant) -> None:
    with sim.state.lock:
        sim.state.mailbox_for(ADELE).audit_enabled = False  # type: ignore[union-attr]
    naive = _batch(sim, _items(sim), prefer="odata.maxpagesize=1000")
    assert [r["status"] for r in naive] == [200, 404]  # nothing after the failure: neither run nor answered
    assert sim.state.mailbox_for(ADELE).audit_enabled is False  # type: ignore[union-attr]
    honest = _batch(sim, _items(sim), prefer="odata.continue-on-error")
    assert [r["status"] for r in honest] == [200, 404, 200]


def test_without_the_stop_on_error_knob_every_item_runs() -> None:
    with simulated_tenant("fresh", time_scale=0.001, batch_stop_on_error=False) as sim:
        assert [r["status"] for r in _batch(sim, _items(sim), prefer=None)] == [200, 404, 200]


def test_a_batch_item_without_authorization_is_refused_unverified(sim: SimulatedTenant) -> None:
    assert {r["status"] for r in _batch(sim, _items(sim, auth=False), prefer="odata.continue-on-error")} == {401}
    with simulated_tenant("fresh", time_scale=0.001, batch_item_auth=False) as lenient:
        statuses = [r["status"] for r in _batch(lenient, _items(lenient, auth=False), "odata.continue-on-error")]
        assert statuses == [200, 404, 200]


def test_the_product_batch_carries_the_preference_and_headers_and_reports_every_item(sim: SimulatedTenant) -> None:
    async def run() -> list[Any]:
        runner = RestExchangeRunner(
            sim.url,
            sim.state.tenant_id,
            AsyncSimulatorCredential(token_url(sim.url, sim.state.tenant_id)),
            scope="https://outlook.office365.com/.default",
            backoff_base=0.001,
            backoff_max=0.01,
        )
        try:
            cmdlets = [
                Cmdlet(i["body"]["CmdletInput"]["CmdletName"], i["body"]["CmdletInput"]["Parameters"])
                for i in _items(sim)
            ]
            return await runner.invoke_many(cmdlets)
        finally:
            await runner.aclose()

    outcomes = asyncio.run(run())
    assert [o.ok for o in outcomes] == [True, False, True]
    [batch] = [e for e in sim.requests if e["path"].endswith("$batch")]
    assert "odata.continue-on-error" in batch["prefer"]
    for item in batch["body"]["requests"]:
        headers = item["headers"]
        assert headers["Authorization"] == "(redacted)" and headers["X-AnchorMailbox"].startswith("UPN:")
        assert headers["Prefer"] == "odata.maxpagesize=1000;odata.continue-on-error"


def _exchange_runner(sim: SimulatedTenant, upn: str | None = None) -> RestExchangeRunner:
    state = sim.state
    if upn is None:
        state.signed_in_user = None  # the scenario's principal is an application: the simulator issues app tokens
    return RestExchangeRunner(
        sim.url,
        state.tenant_id,
        AsyncSimulatorCredential(token_url(sim.url, state.tenant_id)),
        scope="https://outlook.office365.com/.default",
        backoff_base=0.001,
        backoff_max=0.01,
    )


@pytest.mark.naive_requests
def test_an_item_the_answer_leaves_out_is_not_confirmed_never_ok(
    sim: SimulatedTenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The client as it was: no continue-on-error. The simulator stops at the failed item, as OData does.
    monkeypatch.setattr(exchange_rest, "CONTINUE_ON_ERROR", "odata.track-changes")

    async def run() -> list[Any]:
        runner = _exchange_runner(sim, sim.state.signed_in_user)
        try:
            return await runner.invoke_many(_cmdlets(sim))
        finally:
            await runner.aclose()

    first, failed, missing = asyncio.run(run())
    assert first.ok and not failed.ok
    assert missing.error is not None and "not confirmed" in missing.error.message
    assert len([e for e in sim.requests if e["path"].endswith("$batch")]) == 1  # not re-sent blindly


def _cmdlets(sim: SimulatedTenant) -> list[Cmdlet]:
    return [Cmdlet(i["body"]["CmdletInput"]["CmdletName"], i["body"]["CmdletInput"]["Parameters"]) for i in _items(sim)]


# -- 4. App-only routing --------------------------------------------------------------------------------------


def test_an_app_only_runner_anchors_on_the_system_mailbox(sim: SimulatedTenant) -> None:
    async def run() -> bool:
        runner = _exchange_runner(sim, upn=None)  # an app-only token: no upn
        try:
            return (await runner.invoke(Cmdlet("Get-OrganizationConfig"))).ok
        finally:
            await runner.aclose()

    assert asyncio.run(run())
    assert sim.requests[-1]["anchor"] == f"{APP_ANCHOR}{sim.state.tenant_id}"


def _org_config(sim: SimulatedTenant, anchor: str) -> int:
    url = f"{sim.url}/adminapi/beta/{sim.state.tenant_id}/InvokeCommand"
    headers = {**_wire_headers(sim, "https://outlook.office365.com"), "X-AnchorMailbox": anchor}
    body = {"CmdletInput": {"CmdletName": "Get-OrganizationConfig", "Parameters": {}}}
    return httpx.post(url, json=body, headers=headers, timeout=30).status_code


def test_an_anchor_naming_no_mailbox_is_refused_unverified(sim: SimulatedTenant) -> None:
    assert _org_config(sim, "UPN:m365archive-automation") == 400  # an app's display name, as the old client sent
    assert _org_config(sim, f"UPN:{sim.state.signed_in_user}") == 200
    assert _org_config(sim, f"APP:SystemMailbox{{bb558c35-97f1-4cb9-8ff7-d53741dc928c}}@{sim.state.tenant_id}") == 200
    with simulated_tenant("fresh", time_scale=0.001, anchor_check=False) as lenient:
        assert _org_config(lenient, "UPN:m365archive-automation") == 200


# -- 2. Role groups -------------------------------------------------------------------------------------------


def test_roles_are_path_qualified_and_built_in_names_are_ambiguous(sim: SimulatedTenant) -> None:
    async def run() -> tuple[list[dict[str, Any]], Any, Any]:
        runner = _compliance_runner(sim, discover_region=True)
        try:
            groups = await runner.invoke(Cmdlet("Get-RoleGroup"))
            by_name = await runner.invoke(Cmdlet("Get-RoleGroupMember", {"Identity": "OrganizationManagement"}))
            guid = next(g["ExchangeObjectId"] for g in groups.objects if g["Name"] == "OrganizationManagement")
            by_id = await runner.invoke(Cmdlet("Get-RoleGroupMember", {"Identity": guid}))
            return groups.objects, by_name, by_id
        finally:
            await runner.aclose()

    groups, by_name, by_id = asyncio.run(run())
    roles = next(g["Roles"] for g in groups if g["Name"] == "OrganizationManagement")
    assert "Data Connector Admin" not in roles  # a bare-name match finds nothing
    assert any(r.endswith("/Data Connector Admin") and r.startswith("FFO.extest.microsoft.com/") for r in roles)
    assert by_name.error is not None and "matches multiple entries" in by_name.error.message
    assert by_id.ok


def test_without_the_role_knobs_names_are_bare_and_resolve() -> None:
    with simulated_tenant(
        "fresh", time_scale=0.001, role_identities_qualified=False, role_group_name_ambiguous=False
    ) as sim:

        async def run() -> tuple[list[dict[str, Any]], Any]:
            runner = _compliance_runner(sim, discover_region=True)
            try:
                groups = await runner.invoke(Cmdlet("Get-RoleGroup"))
                member = await runner.invoke(Cmdlet("Get-RoleGroupMember", {"Identity": "OrganizationManagement"}))
                return groups.objects, member
            finally:
                await runner.aclose()

        groups, member = asyncio.run(run())
        assert "Data Connector Admin" in next(g["Roles"] for g in groups if g["Name"] == "OrganizationManagement")
        assert member.ok


# -- 5. @adminapi.errors in a 200 -----------------------------------------------------------------------------


def test_adminapi_errors_in_a_200_are_errors_and_warnings_always_come() -> None:
    with simulated_tenant("fresh", time_scale=0.001, adminapi_errors_for=("Set-Mailbox",)) as sim:
        ghost = {"Identity": "ghost@contoso.onmicrosoft.com", "AuditEnabled": True}

        async def run() -> tuple[Any, list[Any]]:
            runner = _exchange_runner(sim, sim.state.signed_in_user)
            try:
                one = await runner.invoke(Cmdlet("Set-Mailbox", ghost))
                many = await runner.invoke_many([Cmdlet("Set-Mailbox", ghost)])
                return one, many
            finally:
                await runner.aclose()

        one, [item] = asyncio.run(run())
        for outcome in (one, item):
            assert outcome.error is not None and "couldn't be found" in outcome.error.message
            assert outcome.error.category == "ManagementObjectNotFoundException"
        raw = httpx.post(
            f"{sim.url}/adminapi/beta/{sim.state.tenant_id}/InvokeCommand",
            json={"CmdletInput": {"CmdletName": "Set-Mailbox", "Parameters": ghost}},
            headers=_wire_headers(sim, "https://outlook.office365.com"),
            timeout=30,
        )
        assert raw.status_code == 200 and raw.json()["@adminapi.errors"]  # what a status-only client calls ok
        org = _org_config_body(sim)
        assert org["@adminapi.warnings"] == []


def _org_config_body(sim: SimulatedTenant) -> dict[str, Any]:
    url = f"{sim.url}/adminapi/beta/{sim.state.tenant_id}/InvokeCommand"
    body = {"CmdletInput": {"CmdletName": "Get-OrganizationConfig", "Parameters": {}}}
    answer: dict[str, Any] = httpx.post(
        url, json=body, headers=_wire_headers(sim, "https://outlook.office365.com"), timeout=30
    ).json()
    return answer


def test_an_app_only_purview_plan_names_the_missing_member_and_never_uses_the_app(tmp_path: Path) -> None:
    from tests.test_purview import write_config

    with simulated_tenant("fresh", time_scale=0.001) as sim:
        sim.state.signed_in_user = None  # an application signed in: no user behind the run
        config = write_config(tmp_path, 'source = "bloomberg-message"\nadd_role_group_member = true', 'scope = "none"')
        run = m365(sim.url, "--output", "json", "setup", "--dry-run", config=config)
        assert run.code == ExitCode.OK, run.stdout + run.stderr
        findings = json.loads(run.stdout)["data"]["findings"]
        assert any("connector.role_group_member" in f["remedy"] for f in findings), findings
        anchors = {e.get("anchor") for e in sim.requests if e["service"] in ("exchange", "compliance")}
        assert anchors == {f"{APP_ANCHOR}{sim.state.tenant_id}"}
        assert not [e for e in sim.requests if e["service"] == "graph" and "/users/" in e["path"]]


# -- 6. The request-log check ---------------------------------------------------------------------------------


def test_the_request_log_check_catches_each_kind_of_violation() -> None:
    from tests.requestlog import check

    app = f"{APP_ANCHOR}{TENANT}"
    item = {"id": "0", "headers": {"X-AnchorMailbox": app}, "body": {"CmdletInput": {"CmdletName": "Get-Mailbox"}}}
    entries: list[dict[str, Any]] = [
        {"service": "graph", "method": "GET", "path": "/v1.0/users/x/mailboxSettings", "userAgent": "kiota"},
        {"service": "graph", "method": "PATCH", "path": "/v1.0/users/x", "body": {"archive": 1}, "userAgent": "k"},
        {
            "service": "exchange",
            "client": "m365archive",
            "method": "POST",
            "path": "/adminapi/beta/t/$batch",
            "anchor": "UPN:m365archive-automation",
            "prefer": "odata.maxpagesize=1000",
            "body": {"requests": [item]},
        },
        {
            "service": "compliance",
            "client": "m365archive",
            "method": "POST",
            "host": "127.0.0.1",
            "anchor": app,
            "path": "/scc/adminapi/beta/t/InvokeCommand",
            "body": {"CmdletInput": {"CmdletName": "Set-Mailbox", "Parameters": {"Identity": "a"}}},
        },
        {"service": "graph", "method": "GET", "path": "/v1.0/users/x/mailboxSettings", "userAgent": "python-httpx/0"},
    ]
    text = "\n".join(check(entries))
    assert "mailboxSettings is not in the project's Graph subset" in text
    assert "'archive' is not a property of microsoft.graph.user" in text
    assert "X-AnchorMailbox 'UPN:m365archive-automation'" in text
    assert "$batch without Prefer: odata.continue-on-error" in text
    assert "item 0 has no Authorization" in text and "item 0 has no continue-on-error" in text
    assert "not its regional host" in text and "Set-Mailbox on compliance" in text
    assert len(check(entries[-1:])) == 0  # a raw client's request is not the product's
