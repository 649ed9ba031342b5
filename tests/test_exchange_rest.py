"""The product's REST Exchange runner against the simulated tenant (real sockets, no mocks)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from m365archive.sim.exchange import service_for
from m365archive.sim.hosts import front_door, host_map
from m365archive.sim.scenario import build_state
from m365archive.sim.server import SimulatedTenant, simulated_tenant
from m365archive.sim.state import TenantState
from m365archive.tenant.exchange import Cmdlet, TransportError
from m365archive.tenant.exchange_rest import COMPLIANCE_SCOPE, EXCHANGE_SCOPE, RestExchangeRunner, parse_error
from m365archive.tenant.simcredential import AsyncSimulatorCredential, token_url

ADELE = "adele.vance@contoso.onmicrosoft.com"
DIEGO = "diego.siciliani@contoso.onmicrosoft.com"
OFFICER = "compliance.officer@contoso.onmicrosoft.com"


def runner_for(sim: SimulatedTenant, *, compliance: bool = False, **kwargs: Any) -> RestExchangeRunner:
    state = sim.state
    kwargs.setdefault("backoff_base", 0.001)
    kwargs.setdefault("backoff_max", 0.01)
    if compliance:
        # The front door's real name, sent to the simulator through its host map; the runner finds the region.
        kwargs.setdefault("discover_region", True)
        kwargs.setdefault("host_map", host_map(state, sim.url))
    return RestExchangeRunner(
        f"https://{front_door(state)}" if compliance else sim.url,
        state.tenant_id,
        AsyncSimulatorCredential(token_url(sim.url, state.tenant_id)),
        scope=kwargs.pop("scope", COMPLIANCE_SCOPE if compliance else EXCHANGE_SCOPE),
        side="compliance" if compliance else "exchange-online",
        **kwargs,
    )


def logged(sim: SimulatedTenant, count: int) -> list[dict[str, Any]]:
    """The Exchange requests in the log once it holds `count` of them (each is written just after its response is
    sent); token requests are left out."""
    deadline = time.monotonic() + 5

    def calls() -> list[dict[str, Any]]:
        return [e for e in sim.requests if e.get("service") in ("exchange", "compliance")]

    while len(calls()) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return calls()


def generated(users: int) -> TenantState:
    return build_state(
        {
            "tenant": {"id": "0b5c1d2e-0000-4000-8000-00000000c0de", "domain": "fabrikam.onmicrosoft.com"},
            "generate": {"users": users, "seed": 7},
        }
    )


@pytest.fixture(scope="module")
def big() -> Iterator[SimulatedTenant]:
    with simulated_tenant(generated(5000), time_scale=0.001) as sim:
        yield sim


@pytest.mark.naive_requests  # refusals of invalid cmdlets, on purpose
def test_invoke_returns_objects_and_not_found_as_outcome(sim: SimulatedTenant) -> None:
    async def run() -> None:
        runner = runner_for(sim)
        try:
            got = await runner.invoke(Cmdlet("Get-Mailbox", {"Identity": ADELE}))
            assert got.ok, got.error
            [mbx] = got.objects
            assert mbx["ExternalDirectoryObjectId"] == sim.state.user_by_upn(ADELE).id  # type: ignore[union-attr]
            assert mbx["ArchiveStatus"] == "None"
            missing = await runner.invoke(Cmdlet("Get-Mailbox", {"Identity": "nobody@contoso.onmicrosoft.com"}))
            assert missing.error is not None and missing.error.not_found
            assert missing.error.category == "ManagementObjectNotFoundException"
            assert missing.error.status == 404 and missing.request_id
            bad = await runner.invoke(Cmdlet("Set-Mailbox", {"Identity": ADELE, "DomainController": "dc1"}))
            assert bad.error is not None and bad.error.category == "ParameterBindingException"
            assert "DomainController" in bad.error.message
        finally:
            await runner.aclose()

    asyncio.run(run())
    entry = logged(sim, 3)[2]
    assert entry["cmdlet"] == "Set-Mailbox" and entry["parameters"]["DomainController"] == "dc1"


def test_headers_sent_like_the_exo_module(sim: SimulatedTenant) -> None:
    seen: dict[str, str] = {}

    async def run() -> None:
        runner = runner_for(sim)
        try:
            await runner.invoke(Cmdlet("Get-OrganizationConfig"))
        finally:
            await runner.aclose()

    import httpx

    class Spy(httpx.AsyncHTTPTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            seen.update({k.lower(): v for k, v in request.headers.items()})
            return await super().handle_async_request(request)

    async def run_spied() -> None:
        runner = runner_for(sim, transport=Spy())
        try:
            out = await runner.invoke(Cmdlet("Get-OrganizationConfig"))
            assert out.ok and out.objects[0]["AuditDisabled"] is False
        finally:
            await runner.aclose()

    asyncio.run(run_spied())
    assert seen["x-anchormailbox"] == f"UPN:{sim.state.signed_in_user}"
    assert seen["x-cmdletname"] == "Get-OrganizationConfig"
    assert seen["prefer"] == "odata.maxpagesize=1000"
    assert seen["x-responseformat"] == "json" and seen["client-request-id"]
    assert seen["authorization"].startswith("Bearer ")


def test_pages_over_a_generated_tenant(big: SimulatedTenant) -> None:
    async def run() -> list[int]:
        runner = runner_for(big)
        sizes: list[int] = []
        guids: set[str] = set()
        try:
            async for page in runner.pages(Cmdlet("Get-Mailbox", {"ResultSize": "Unlimited"}), page_size=1000):
                sizes.append(len(page))
                guids.update(m["Guid"] for m in page)
        finally:
            await runner.aclose()
        assert len(guids) == 5000
        return sizes

    assert asyncio.run(run()) == [1000] * 5


def test_invoke_collects_every_page_and_filters(big: SimulatedTenant) -> None:
    async def run() -> None:
        runner = runner_for(big)
        try:
            shared = await runner.invoke(
                Cmdlet("Get-Mailbox", {"Filter": "RecipientTypeDetails -eq 'SharedMailbox'", "ResultSize": "Unlimited"})
            )
            assert shared.ok
            expected = sum(1 for m in big.state.mailboxes.values() if m.recipient_type_details == "SharedMailbox")
            assert len(shared.objects) == expected > 0
            default = await runner.invoke(Cmdlet("Get-Mailbox"))
            assert len(default.objects) == 1000 and "ResultSize" in default.warnings[0]
        finally:
            await runner.aclose()

    asyncio.run(run())


def test_invoke_many_batches_of_ten_in_order(sim: SimulatedTenant) -> None:
    upns = [u.user_principal_name for u in sim.state.users.values() if u.id in sim.state.mailboxes]
    cmdlets = [Cmdlet("Set-Mailbox", {"Identity": upn, "HiddenFromAddressListsEnabled": True}) for upn in upns * 4]
    cmdlets.append(Cmdlet("Get-Mailbox", {"Identity": "ghost@contoso.onmicrosoft.com"}))

    async def run() -> RestExchangeRunner:
        runner = runner_for(sim)
        try:
            outcomes = await runner.invoke_many(cmdlets)
        finally:
            await runner.aclose()
        assert [o.cmdlet for o in outcomes] == cmdlets
        assert all(o.ok for o in outcomes[:-1])
        assert outcomes[-1].error is not None and outcomes[-1].error.not_found
        return runner

    runner = asyncio.run(run())
    assert runner.stats.batches == 3 and runner.stats.requests == 3
    batches = [e for e in logged(sim, 3) if e["path"].endswith("$batch")]
    # the three batches run concurrently, so the log has them in the order they finished
    assert sorted(len(e["cmdlets"]) for e in batches) == [5, 10, 10]
    assert all(m.hidden_from_address_lists for m in sim.state.mailboxes.values())


def test_retries_under_faults_converge_with_each_write_in_effect_once() -> None:
    with simulated_tenant("fresh", time_scale=0.001, fault_rate=0.2, seed=3) as sim:
        state = sim.state
        upns = [u.user_principal_name for u in state.users.values() if u.id in state.mailboxes]
        plan2 = [u for u in upns if not u.startswith("lee.gu")]
        cmdlets = [Cmdlet("Enable-Mailbox", {"Identity": upn, "Archive": True}) for upn in upns]
        cmdlets += [Cmdlet("Set-Mailbox", {"Identity": upn, "LitigationHoldEnabled": True}) for upn in plan2]
        cmdlets += [
            Cmdlet("Add-MailboxPermission", {"Identity": ADELE, "User": OFFICER, "AccessRights": ["FullAccess"]})
        ] * 3

        async def run() -> RestExchangeRunner:
            runner = runner_for(sim)
            try:
                for cmdlet in cmdlets:  # one by one: every InvokeCommand may meet a fault
                    outcome = await runner.invoke(cmdlet)
                    assert outcome.ok, (cmdlet, outcome.error)
                again = await runner.invoke_many(
                    [Cmdlet("Set-Mailbox", {"Identity": u, "AuditEnabled": True}) for u in upns] * 3
                )
                assert all(o.ok for o in again), [o.error for o in again if o.error]
                listing = await runner.invoke(Cmdlet("Get-Mailbox", {"ResultSize": "Unlimited"}))
                assert listing.ok and len(listing.objects) == len(upns)
            finally:
                await runner.aclose()
            return runner

        runner = asyncio.run(run())
        assert sim.load.faults.injected > 0 and runner.stats.retries > 0
        archives = [m for m in state.mailboxes.values() if m.archive_status == "Active"]
        assert len(archives) == len(upns) and len({m.archive_guid for m in archives}) == len(upns)
        assert all(m.litigation_hold_enabled for m in state.mailboxes.values() if m.primary_smtp in plan2)
        adele = state.mailbox_for(ADELE)
        assert adele is not None
        grants = [p for p in state.permissions if p.mailbox_guid == adele.guid and p.user == OFFICER]
        assert len(grants) == 1 and grants[0].access_rights == ["FullAccess"]


def test_throttling_is_absorbed_with_retry_after() -> None:
    with simulated_tenant("fresh", time_scale=0.001, exchange_rate=200.0, exchange_burst=4) as sim:
        upns = [u.user_principal_name for u in sim.state.users.values() if u.id in sim.state.mailboxes]
        waits: list[float] = []

        async def run() -> RestExchangeRunner:
            runner = runner_for(sim, on_throttle=waits.append)
            try:
                outcomes = await runner.invoke_many(
                    [Cmdlet("Set-Mailbox", {"Identity": u, "AuditEnabled": True}) for u in upns * 6]
                )
                assert all(o.ok for o in outcomes), [o.error for o in outcomes if o.error]
                singles = await asyncio.gather(
                    *(runner.invoke(Cmdlet("Get-Mailbox", {"Identity": u})) for u in upns * 3)
                )
                assert all(o.ok for o in singles)
            finally:
                await runner.aclose()
            return runner

        runner = asyncio.run(run())
        assert runner.stats.throttled > 0 and waits and all(0 < w < 1 for w in waits)
        svc = service_for(sim.state)
        assert svc is not None and svc.stats["throttled"] == runner.stats.throttled


def test_wrong_audience_is_an_auth_transport_error(sim: SimulatedTenant) -> None:
    async def run() -> None:
        runner = runner_for(sim, scope="https://graph.microsoft.com/.default")
        try:
            with pytest.raises(TransportError) as info:
                await runner.invoke(Cmdlet("Get-Mailbox", {"Identity": ADELE}))
            assert info.value.auth and info.value.status == 401
        finally:
            await runner.aclose()

    asyncio.run(run())


def test_exhausted_retries_raise_transport_error() -> None:
    with simulated_tenant("fresh", time_scale=0.001, fault_rate=1.0, fault_kinds=("503",)) as sim:

        async def run() -> None:
            runner = runner_for(sim, max_sends=3)
            try:
                with pytest.raises(TransportError) as info:
                    await runner.invoke(Cmdlet("Get-Mailbox", {"Identity": ADELE}))
                assert info.value.status == 503 and not info.value.auth
            finally:
                await runner.aclose()
            assert runner.stats.requests == 3

        asyncio.run(run())


@pytest.mark.naive_requests  # refusals of invalid cmdlets, on purpose
def test_compliance_side_retention_policy(sim: SimulatedTenant) -> None:
    async def run() -> None:
        runner = runner_for(sim, compliance=True)
        try:
            created = await runner.invoke(
                Cmdlet("New-RetentionCompliancePolicy", {"Name": "Third-party data", "ExchangeLocation": [ADELE]})
            )
            assert created.ok, created.error
            rule = await runner.invoke(
                Cmdlet(
                    "New-RetentionComplianceRule",
                    {"Name": "Keep", "Policy": "Third-party data", "RetentionDuration": "Unlimited"},
                )
            )
            assert rule.ok, rule.error
            [policy] = (
                await runner.invoke(Cmdlet("Get-RetentionCompliancePolicy", {"Identity": "Third-party data"}))
            ).objects
            assert [loc["Name"] for loc in policy["ExchangeLocation"]] == [ADELE]  # location objects (.Name)
            wrong_side = await runner.invoke(Cmdlet("Get-Mailbox", {"Identity": ADELE}))
            assert wrong_side.error is not None and wrong_side.error.category == "CommandNotFoundException"
        finally:
            await runner.aclose()

    asyncio.run(run())


def test_parse_error_reads_the_exchange_details() -> None:
    body = {
        "error": {
            "code": "NotFound",
            "message": "Error executing cmdlet",
            "details": [
                {
                    "code": "Context",
                    "target": "",
                    "message": "Ex6F9304|Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException|"
                    "The operation couldn't be performed because object 'x' couldn't be found on 'A.PROD.OUTLOOK.COM'.",
                }
            ],
        }
    }
    code, category, message = parse_error(body)
    assert (code, category) == ("NotFound", "ManagementObjectNotFoundException")
    assert message.startswith("The operation couldn't be performed because object 'x'")
