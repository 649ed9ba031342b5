"""On-premises Exchange through pypsrp: the real client over a socket against the simulator.

No mocks: pypsrp's WSMan/RunspacePool (NTLM, WinRM message encryption, PSRP) talks to the
simulated /PowerShell endpoint, and OnPremExchangeRunner is exercised as the product uses it.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from m365archive.sim.server import SimulatedTenant, simulated_tenant
from m365archive.tenant.exchange import Cmdlet, ExchangeError, TransportError
from m365archive.tenant.onprem import OnPremExchangeRunner
from m365archive.tenant.simcredential import SimulatorCredential, token_url

ADMIN = "CONTOSO\\exadmin"
ADELE = "adele.vance@contoso.onmicrosoft.com"
PRADEEP = "pradeep.gupta@contoso.onmicrosoft.com"


@pytest.fixture
def hybrid() -> Iterator[SimulatedTenant]:
    with simulated_tenant("hybrid", time_scale=0.001) as tenant:
        yield tenant


def _host_port(sim: SimulatedTenant) -> tuple[str, int]:
    host, port = sim.url.split("//", 1)[1].rsplit(":", 1)
    return host, int(port)


def _runner(sim: SimulatedTenant, password: str | None = None, **kwargs: Any) -> OnPremExchangeRunner:
    host, port = _host_port(sim)
    return OnPremExchangeRunner(
        host,
        port=port,
        auth="ntlm",
        username=ADMIN,
        password=sim.state.onprem_users[ADMIN] if password is None else password,
        connection_timeout=5,
        **kwargs,
    )


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _invoke(runner: OnPremExchangeRunner, *cmdlets: Cmdlet) -> list[Any]:
    try:
        return await runner.invoke_many(list(cmdlets))
    finally:
        await runner.aclose()


def test_password_is_generated_at_start_never_in_the_scenario(hybrid: SimulatedTenant) -> None:
    from m365archive.sim.scenario import SCENARIO_DIR

    password = hybrid.state.onprem_users[ADMIN]
    assert len(password) >= 16
    assert password not in (SCENARIO_DIR / "hybrid.toml").read_text(encoding="utf-8")


def test_get_remote_mailbox_lists_synced_users_as_plain_dicts(hybrid: SimulatedTenant) -> None:
    (outcome,) = run(_invoke(_runner(hybrid), Cmdlet("Get-RemoteMailbox", {"ResultSize": "Unlimited"})))
    assert outcome.ok, outcome.error
    by_upn = {o["UserPrincipalName"]: o for o in outcome.objects}
    assert set(by_upn) == {
        ADELE,
        "diego.siciliani@contoso.onmicrosoft.com",
        "megan.bowen@contoso.onmicrosoft.com",
        PRADEEP,
    }
    adele = by_upn[ADELE]
    assert adele["RecipientTypeDetails"] == "RemoteUserMailbox"
    assert adele["ArchiveState"] == "None"
    assert adele["Identity"] == "contoso.local/Users/Adele Vance"
    assert adele["RemoteRoutingAddress"] == "SMTP:adele.vance@contoso.mail.onmicrosoft.com"
    # ProxyAddressCollection / MultiValuedProperty arrive as raw objects: parsed into lists.
    assert adele["EmailAddresses"] == [f"SMTP:{ADELE}", "smtp:adele.vance@contoso.mail.onmicrosoft.com"]
    assert adele["ArchiveName"] == []
    assert adele["ExchangeGuid"] == hybrid.state.mailboxes[hybrid.state.user_by_upn(ADELE).id].guid  # type: ignore[union-attr]
    # Exchange value types read as they print; dates arrive as ISO 8601 text.
    assert adele["RecoverableItemsQuota"] == "30 GB (32,212,254,720 bytes)"
    assert adele["WhenChanged"].startswith(str(hybrid.state.clock.now().year))
    assert by_upn[PRADEEP]["ArchiveState"] == "HostedProvisioned"
    assert by_upn[PRADEEP]["ArchiveName"] == ["In-Place Archive - Pradeep Gupta"]


def test_enable_remote_mailbox_archive_reaches_exchange_online_after_dir_sync(hybrid: SimulatedTenant) -> None:
    state = hybrid.state
    user = state.user_by_upn(ADELE)
    assert user is not None
    cloud = state.mailboxes[user.id]
    assert cloud.is_dir_synced and cloud.archive_status == "None"

    enable, get = run(
        _invoke(
            _runner(hybrid),
            Cmdlet("Enable-RemoteMailbox", {"Identity": ADELE, "Archive": True}),
            Cmdlet("Get-RemoteMailbox", {"Identity": ADELE}),
        )
    )
    assert enable.ok, enable.error
    assert enable.objects[0]["ArchiveState"] == "HostedProvisioned"
    assert get.objects[0]["ArchiveName"] == ["In-Place Archive - Adele Vance"]
    remote = state.remote_mailboxes[user.id]
    assert remote.archive_state == "HostedProvisioned"
    assert remote.pending_sync_at is not None

    # Before the 30-minute (simulated) directory sync, Exchange Online hasn't heard of it.
    with state.lock:
        state.run_directory_sync()
    assert cloud.archive_status == "None"

    with state.lock:
        state.clock.advance(state.knobs.dir_sync_delay)
        state.run_directory_sync()
    assert cloud.archive_status == "Active"
    assert cloud.archive_guid == remote.archive_guid
    assert cloud.archive_name == ["In-Place Archive - Adele Vance"]


def test_not_found_is_a_non_terminating_error_with_exchanges_message(hybrid: SimulatedTenant) -> None:
    (outcome,) = run(_invoke(_runner(hybrid), Cmdlet("Get-RemoteMailbox", {"Identity": "nobody@contoso.com"})))
    assert outcome.error is not None
    assert outcome.error.not_found
    assert outcome.error.category == "ManagementObjectNotFoundException"
    assert "couldn't be found on 'DC01.contoso.local'" in outcome.error.message
    assert outcome.objects == []


def test_wrong_password_is_an_authentication_transport_error(hybrid: SimulatedTenant) -> None:
    runner = _runner(hybrid, password=secrets.token_urlsafe(12))  # anything but the real one
    with pytest.raises(TransportError) as caught:
        run(_invoke(runner, Cmdlet("Get-RemoteMailbox")))
    assert caught.value.auth is True
    assert ADMIN in str(caught.value)
    assert runner.endpoint in str(caught.value)
    assert any(e["service"] == "onprem" and e["status"] == 401 for e in hybrid.requests)


def test_unreachable_server_is_a_transport_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    runner = OnPremExchangeRunner(
        "127.0.0.1", port=port, auth="ntlm", username=ADMIN, password="x", connection_timeout=2
    )
    with pytest.raises(TransportError) as caught:
        run(_invoke(runner, Cmdlet("Get-RemoteMailbox")))
    assert caught.value.auth is False
    assert f"127.0.0.1:{port}" in str(caught.value)


def test_basic_auth_is_refused_over_http() -> None:
    with pytest.raises(ValueError, match="HTTPS"):
        OnPremExchangeRunner("exch01.contoso.local", auth="basic", username=ADMIN, password="x")


def test_a_script_is_refused_like_a_no_language_endpoint(hybrid: SimulatedTenant) -> None:
    host, port = _host_port(hybrid)
    wsman = WSMan(
        host,
        port=port,
        ssl=False,
        path="PowerShell",
        auth="ntlm",
        username=ADMIN,
        password=hybrid.state.onprem_users[ADMIN],
    )
    with RunspacePool(wsman, configuration_name="Microsoft.Exchange") as pool:
        ps = PowerShell(pool)
        ps.add_script("Get-RemoteMailbox | Enable-RemoteMailbox -Archive")
        output = ps.invoke()
        assert output == []
        assert ps.had_errors
        assert str(ps.streams.error[-1]) == (
            "The syntax is not supported by this runspace. This can occur if the runspace is in no-language mode."
        )
        assert ps.streams.error[-1].fq_error == "ScriptsNotAllowed"
        # The runspace is still usable for cmdlets afterwards.
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-RemoteMailbox").add_parameter("Identity", ADELE)
        assert len(ps.invoke()) == 1 and not ps.had_errors
    assert all(rm.archive_state == "None" for rm in hybrid.state.remote_mailboxes.values() if "adele" in rm.alias)


@pytest.mark.naive_requests  # refusals of invalid cmdlets, on purpose
def test_unknown_parameter_and_cmdlet_are_refused_by_the_spec_binder(hybrid: SimulatedTenant) -> None:
    unknown_param, online_only, unknown_cmdlet = run(
        _invoke(
            _runner(hybrid),
            Cmdlet("Enable-RemoteMailbox", {"Identity": ADELE, "Archive": True, "Bogus": True}),
            # -AutoExpandingArchive belongs to Exchange Online's Enable-Mailbox, not this cmdlet.
            Cmdlet("Enable-RemoteMailbox", {"Identity": ADELE, "AutoExpandingArchive": True}),
            Cmdlet("Invoke-Expression", {"Command": "whoami"}),
        )
    )
    assert isinstance(unknown_param.error, ExchangeError)
    assert unknown_param.error.category == "ParameterBindingException"
    assert unknown_param.error.message == "A parameter cannot be found that matches parameter name 'Bogus'."
    assert online_only.error is not None and online_only.error.category == "ParameterBindingException"
    assert unknown_cmdlet.error is not None and unknown_cmdlet.error.category == "CommandNotFoundException"
    assert "Invoke-Expression" in unknown_cmdlet.error.message
    assert hybrid.state.remote_mailboxes[hybrid.state.user_by_upn(ADELE).id].archive_state == "None"  # type: ignore[union-attr]


def test_invoke_many_runs_in_order_in_one_runspace(hybrid: SimulatedTenant) -> None:
    outcomes = run(
        _invoke(
            _runner(hybrid),
            Cmdlet("Get-RemoteMailbox", {"Identity": ADELE}),
            Cmdlet("Enable-RemoteMailbox", {"Identity": ADELE, "Archive": True, "ArchiveName": "Adele Archive"}),
            Cmdlet("Enable-RemoteMailbox", {"Identity": "ghost@contoso.com", "Archive": True}),
            Cmdlet("Set-RemoteMailbox", {"Identity": ADELE, "HiddenFromAddressListsEnabled": True}),
            Cmdlet("Get-RemoteMailbox", {"Identity": ADELE}),
        )
    )
    assert [o.ok for o in outcomes] == [True, True, False, True, True]
    assert outcomes[0].objects[0]["ArchiveState"] == "None"
    assert outcomes[2].error is not None and outcomes[2].error.not_found
    assert outcomes[3].objects == []
    last = outcomes[4].objects[0]
    assert last["ArchiveState"] == "HostedProvisioned"
    assert last["ArchiveName"] == ["Adele Archive"]
    assert last["HiddenFromAddressListsEnabled"] is True
    onprem = [e for e in hybrid.requests if e["service"] == "onprem"]
    assert sum(1 for e in onprem if e.get("wsman") == "Create") == 1  # one RunspacePool, reused
    assert sum(1 for e in onprem if e.get("wsman") == "Delete") == 1  # closed by aclose()
    written = [c for e in hybrid.writes() for c in e.get("cmdlets", [])]
    assert written == ["Enable-RemoteMailbox", "Enable-RemoteMailbox", "Set-RemoteMailbox"]


def test_pages_hands_out_the_output_in_slices(hybrid: SimulatedTenant) -> None:
    async def collect() -> list[list[dict[str, Any]]]:
        runner = _runner(hybrid)
        try:
            return [page async for page in runner.pages(Cmdlet("Get-RemoteMailbox"), page_size=3)]
        finally:
            await runner.aclose()

    pages = run(collect())
    assert [len(p) for p in pages] == [3, 1]
    assert all(o["RecipientTypeDetails"] == "RemoteUserMailbox" for p in pages for o in p)


def test_concurrent_invokes_share_the_runspace_safely(hybrid: SimulatedTenant) -> None:
    async def many() -> list[Any]:
        runner = _runner(hybrid)
        try:
            calls = [runner.invoke(Cmdlet("Get-RemoteMailbox", {"Identity": ADELE})) for _ in range(5)]
            return list(await asyncio.gather(*calls))
        finally:
            await runner.aclose()

    outcomes = run(many())
    assert all(o.ok and o.objects[0]["UserPrincipalName"] == ADELE for o in outcomes)


def _exo(sim: SimulatedTenant, cmdlet: str, parameters: dict[str, Any]) -> httpx.Response:
    token = (
        SimulatorCredential(token_url(sim.url, sim.state.tenant_id))
        .get_token("https://outlook.office365.com/.default")
        .token
    )
    return httpx.post(
        f"{sim.url}/adminapi/beta/{sim.state.tenant_id}/InvokeCommand",
        json={"CmdletInput": {"CmdletName": cmdlet, "Parameters": parameters}},
        headers={"Authorization": f"Bearer {token}", "X-AnchorMailbox": f"UPN:{sim.state.signed_in_user}"},
        timeout=10,
    )


def test_hybrid_flow_exchange_online_refuses_on_premises_enables_dir_sync_delivers(
    hybrid: SimulatedTenant,
) -> None:
    hybrid.state.knobs.archive_status_none_share = 0.0  # the status reads true here (unreliable: fidelity_part2)
    refused = _exo(hybrid, "Enable-Mailbox", {"Identity": ADELE, "Archive": True})
    assert refused.status_code == 400
    assert "synchronized with the on-premises directory" in refused.text

    (enable,) = run(_invoke(_runner(hybrid), Cmdlet("Enable-RemoteMailbox", {"Identity": ADELE, "Archive": True})))
    assert enable.ok, enable.error

    before = _exo(hybrid, "Get-Mailbox", {"Identity": ADELE})
    assert before.json()["value"][0]["ArchiveStatus"] == "None"  # sync hasn't run yet (30 simulated minutes)

    hybrid.state.clock.advance(hybrid.state.knobs.dir_sync_delay)
    after = _exo(hybrid, "Get-Mailbox", {"Identity": ADELE})
    mailbox = after.json()["value"][0]
    assert mailbox["ArchiveStatus"] == "Active"
    assert mailbox["ArchiveGuid"] == enable.objects[0]["ArchiveGuid"]


def test_negotiate_auth_works_too(hybrid: SimulatedTenant) -> None:
    runner = _runner(hybrid)
    runner.auth = "negotiate"  # SPNEGO: no Kerberos here, so pyspnego falls back to NTLM inside it
    (outcome,) = run(_invoke(runner, Cmdlet("Get-RemoteMailbox", {"Identity": ADELE})))
    assert outcome.ok, outcome.error


def test_kerberos_without_a_ticket_is_a_clear_authentication_error(hybrid: SimulatedTenant) -> None:
    host, port = _host_port(hybrid)
    runner = OnPremExchangeRunner(host, port=port, connection_timeout=5)  # auth defaults to kerberos
    with pytest.raises(TransportError) as caught:
        run(_invoke(runner, Cmdlet("Get-RemoteMailbox")))
    assert caught.value.auth is True
    assert "Kerberos" in str(caught.value)


def test_wrong_configuration_name_is_a_transport_error(hybrid: SimulatedTenant) -> None:
    runner = _runner(hybrid, configuration_name="Microsoft.PowerShell")
    with pytest.raises(TransportError, match=r"Microsoft\.PowerShell session configuration"):
        run(_invoke(runner, Cmdlet("Get-RemoteMailbox")))


def test_runner_signs_in_again_when_the_connection_was_dropped(hybrid: SimulatedTenant) -> None:
    """A keep-alive timeout or server restart loses the connection's security context: the runner
    notices the refusal of its (not executed) request and opens a new runspace, once."""

    async def scenario() -> tuple[Any, Any]:
        runner = _runner(hybrid)
        try:
            first = await runner.invoke(Cmdlet("Get-RemoteMailbox", {"Identity": ADELE}))
            server = hybrid._server
            assert server is not None
            for conn in list(server.server_state.connections):
                conn.loop.call_soon_threadsafe(conn.transport.close)
            await asyncio.sleep(0.2)
            second = await runner.invoke(Cmdlet("Enable-RemoteMailbox", {"Identity": ADELE, "Archive": True}))
            return first, second
        finally:
            await runner.aclose()

    first, second = run(scenario())
    assert first.ok and second.ok, second.error
    creates = [e for e in hybrid.requests if e["service"] == "onprem" and e.get("wsman") == "Create"]
    assert len(creates) == 2
    enables = [c for e in hybrid.writes() for c in e.get("cmdlets", [])]
    assert enables == ["Enable-RemoteMailbox"]  # ran exactly once


def test_request_log_records_cmdlets_and_parameters_never_passwords(hybrid: SimulatedTenant) -> None:
    run(_invoke(_runner(hybrid), Cmdlet("Set-RemoteMailbox", {"Identity": ADELE, "ArchiveName": "A"})))
    (entry,) = [e for e in hybrid.requests if e.get("cmdlets")]
    assert entry["cmdlets"] == ["Set-RemoteMailbox"]
    assert entry["parameters"] == [{"Identity": ADELE, "ArchiveName": "A"}]
    assert entry["user"] == ADMIN
    password = hybrid.state.onprem_users[ADMIN]
    assert all(password not in repr(e) for e in hybrid.requests)


def test_describe_names_the_endpoint_and_the_generated_password(hybrid: SimulatedTenant) -> None:
    from m365archive.sim.onprem import describe

    lines = describe(hybrid.state, hybrid.url)
    assert lines[0].startswith(f"on-premises Exchange: {hybrid.url}/PowerShell")
    assert hybrid.state.onprem_users[ADMIN] in lines[1]


def test_get_remote_mailbox_result_size_and_archive_filter(hybrid: SimulatedTenant) -> None:
    two, archived = run(
        _invoke(
            _runner(hybrid),
            Cmdlet("Get-RemoteMailbox", {"ResultSize": 2}),
            Cmdlet("Get-RemoteMailbox", {"Archive": True}),
        )
    )
    assert len(two.objects) == 2 and two.warnings == []
    assert [o["UserPrincipalName"] for o in archived.objects] == [PRADEEP]


def test_enable_remote_mailbox_refuses_what_is_already_done(hybrid: SimulatedTenant) -> None:
    runner = _runner(hybrid)
    adele = "adele.vance@contoso.onmicrosoft.com"
    cmdlets = [
        Cmdlet("Enable-RemoteMailbox", {"Identity": adele, "Archive": True}),
        Cmdlet("Enable-RemoteMailbox", {"Identity": adele, "Archive": True}),
        Cmdlet("Enable-RemoteMailbox", {"Identity": adele, "Shared": True}),  # would mail-enable: done long ago
    ]

    async def run() -> list[Any]:
        try:
            return await runner.invoke_many(cmdlets)
        finally:
            await runner.aclose()

    first, again, shared = asyncio.run(run())
    assert first.ok
    for outcome, text in ((again, "already has an archive"), (shared, "is already mail-enabled")):
        assert outcome.error is not None and text in outcome.error.message
        assert outcome.error.category == "RecipientTaskException"
