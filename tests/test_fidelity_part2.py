"""Fidelity part 2 (issue 13), items 3-6, 9-12: eventual consistency and the shapes the real
services answer in. Each behaviour: the product converges against the strict simulator; the naive
request gets the real answer; with the knob off the simulator is lenient."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from m365archive.result import ExitCode
from m365archive.sim.server import SimulatedTenant, simulated_tenant
from m365archive.sim.state import CONNECTOR_APP_ID
from m365archive.steps.connector_consent import consent_url, consent_url_caveat
from m365archive.steps.retention import location_names
from m365archive.tenant.exchange import has_archive
from m365archive.tenant.session import discover_simulator, endpoints_for_cloud
from tests.clihelp import EXAMPLE, Run, m365

ZERO = "00000000-0000-0000-0000-000000000000"
GUID = "0f8c3f51-6d2b-4c8e-9a41-1c7b2d9e4a10"


def test_an_archive_is_read_from_its_guid_not_from_archive_status() -> None:
    assert has_archive({"ArchiveStatus": "None", "ArchiveGuid": GUID})  # re-licensed: status reads None
    assert has_archive({"ArchiveStatus": "None", "ArchiveGuid": GUID, "ArchiveDatabase": "NAMPR01DG123-db045"})
    assert not has_archive({"ArchiveStatus": "Active", "ArchiveGuid": ZERO})
    assert not has_archive({"ArchiveStatus": "Active"})
    assert not has_archive({"ArchiveGuid": GUID, "ArchiveDatabase": None})  # a guid without a database
    assert has_archive({"ArchiveGuid": "{" + GUID.upper() + "}"})


def test_retention_locations_are_read_as_objects_and_as_strings() -> None:
    objects = {"ExchangeLocation": [{"Name": "Adele@Contoso.com", "DisplayName": "Adele"}, {"DisplayName": "All"}]}
    assert location_names(objects) == {"adele@contoso.com", "all"}
    assert location_names({"ExchangeLocation": ["Lee@contoso.com"]}) == {"lee@contoso.com"}
    assert location_names(None) == set() and location_names({"ExchangeLocation": None}) == set()


def test_consent_url_names_the_tenant_and_only_the_documented_redirect_uri(sim: SimulatedTenant) -> None:
    endpoints = discover_simulator(sim.url)
    url = consent_url(endpoints)
    assert f"/{sim.state.tenant_id}/oauth2/authorize?" in url and "/common/" not in url
    assert consent_url_caveat(endpoints) is None  # the commercial cloud: the reference page's own URL
    gov = endpoints_for_cloud("gcc-high", "contoso.onmicrosoft.us", None)
    assert parse_qs(urlsplit(consent_url(gov)).query)["redirect_uri"] == ["https://portal.azure.com/"]
    caveat = consent_url_caveat(gov)
    assert caveat is not None and caveat.startswith("unverified")
    page = httpx.get(url)
    assert page.status_code == 200, page.text


def test_an_unregistered_redirect_uri_is_refused_unless_the_knob_is_off(sim: SimulatedTenant) -> None:
    query = {
        "client_id": CONNECTOR_APP_ID,
        "response_type": "code",
        "redirect_uri": "https://portal.azure.us/",  # the naive national-cloud guess
        "prompt": "admin_consent",
    }
    refused = httpx.get(f"{sim.url}/common/oauth2/authorize", params=query)
    assert refused.status_code == 400 and "AADSTS50011" in refused.text
    sim.state.knobs.redirect_uri_check = False
    assert httpx.get(f"{sim.url}/common/oauth2/authorize", params=query).status_code == 200


def test_a_default_vdir_refuses_ntlm_and_the_knob_lets_the_hybrid_scenario_accept_it() -> None:
    import asyncio

    import pytest

    from m365archive.config import OnPremConfig
    from m365archive.tenant.exchange import Cmdlet, TransportError
    from m365archive.tenant.onprem import OnPremExchangeRunner

    assert OnPremConfig.model_fields["auth"].default == "kerberos"  # the product asks for Kerberos by default
    admin = "CONTOSO\\exadmin"
    with simulated_tenant("hybrid", time_scale=0.001, onprem_auth=("kerberos",)) as strict:
        host, port = strict.url.split("//", 1)[1].rsplit(":", 1)
        runner = OnPremExchangeRunner(
            host, port=int(port), auth="ntlm", username=admin, password=strict.state.onprem_users[admin]
        )
        with pytest.raises(TransportError) as caught:  # the naive NTLM sign-in, with the right password
            asyncio.run(runner.invoke(Cmdlet("Get-RemoteMailbox")))
        assert caught.value.auth is True
        deadline = time.monotonic() + 5  # the log line is written just after the answer leaves
        while not any("not accepted" in str(e.get("auth_error", "")) for e in strict.requests):
            assert time.monotonic() < deadline, strict.requests[-3:]
            time.sleep(0.01)
    with simulated_tenant("hybrid", time_scale=0.001) as lenient:  # the scenario allows NTLM (no KDC here)
        assert "ntlm" in lenient.state.knobs.onprem_auth
        host, port = lenient.url.split("//", 1)[1].rsplit(":", 1)
        runner = OnPremExchangeRunner(
            host, port=int(port), auth="ntlm", username=admin, password=lenient.state.onprem_users[admin]
        )
        outcome = asyncio.run(runner.invoke(Cmdlet("Get-RemoteMailbox")))
        assert outcome.ok


# --- shared helpers for the simulator-backed tests below -------------------------------------------------------

CATCHALL = "thirdpartydata@contoso.onmicrosoft.com"
ADELE = "adele.vance@contoso.onmicrosoft.com"
LEE = "lee.gu@contoso.onmicrosoft.com"


def _exchange(sim: SimulatedTenant, name: str, params: dict[str, object], *, scc: bool = False) -> httpx.Response:
    """One cmdlet; Security & Compliance at the tenant's regional host (Wire does the same)."""
    from tests.test_sim_exchange import Wire

    return Wire(sim, "compliance" if scc else "exchange").invoke(name, dict(params))


def _graph(sim: SimulatedTenant, method: str, path: str, body: object = None) -> httpx.Response:
    from m365archive.tenant.simcredential import SimulatorCredential, token_url

    credential = SimulatorCredential(token_url(sim.url, sim.state.tenant_id))
    token = credential.get_token("https://graph.microsoft.com/.default").token
    return httpx.request(
        method, f"{sim.url}/v1.0{path}", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def _setup(sim: SimulatedTenant, tmp_path: Path, config: Path | None = None) -> Run:
    args = ["setup", "--yes", "--password-file", str(tmp_path / "pw")]
    return m365(sim.url, *args, config=config or EXAMPLE)


def _settled(sim: SimulatedTenant, config: Path | None = None) -> None:
    sim.log.clear()
    again = m365(sim.url, "setup", "--dry-run", "--detailed-exitcode", config=config or EXAMPLE)
    assert again.code == ExitCode.OK, again.stdout[-3000:]
    assert "No changes" in again.stdout and sim.writes() == []


# --- item 3: ArchiveStatus can read None for an active archive --------------------------------------------------


def test_archives_whose_status_reads_none_are_not_enabled_again(tmp_path: Path) -> None:
    with simulated_tenant("fresh", time_scale=0.001, archive_status_none_share=1.0) as sim:
        run = _setup(sim, tmp_path)
        assert run.code == ExitCode.OK, run.stdout[-2000:] + run.stderr
        mbx = _exchange(sim, "Get-Mailbox", {"Identity": ADELE}).json()["value"][0]
        # the naive test (ArchiveStatus == "Active") would call this mailbox archive-less
        assert mbx["ArchiveStatus"] == "None" and mbx["ArchiveGuid"] != ZERO and mbx["ArchiveDatabase"]
        _settled(sim)
        adele = sim.state.mailboxes[sim.state.user_by_upn(ADELE).id]  # type: ignore[union-attr]
        assert sim.state.transitions.get(f"Archive:{adele.guid}", 0) <= 1
        sim.state.knobs.archive_status_none_share = 0.0  # lenient: the status is always consistent
        assert _exchange(sim, "Get-Mailbox", {"Identity": ADELE}).json()["value"][0]["ArchiveStatus"] == "Active"


# --- item 4: retention-policy locations are objects ----------------------------------------------------------


def test_retention_locations_are_objects_and_the_policy_step_converges_either_way(tmp_path: Path) -> None:
    from tests.test_retention import policy_config

    with simulated_tenant("fresh", time_scale=0.001) as sim:
        cfg = policy_config(tmp_path)
        run = _setup(sim, tmp_path, cfg)
        assert run.code == ExitCode.OK, run.stdout[-2000:] + run.stderr
        sim.state.clock.advance(sim.state.knobs.retention_distribution_delay)
        [policy] = _exchange(sim, "Get-RetentionCompliancePolicy", {"Identity": "Third-party data"}, scc=True).json()[
            "value"
        ]
        assert all(isinstance(loc, dict) and loc["Name"] for loc in policy["ExchangeLocation"])
        assert ADELE not in policy["ExchangeLocation"]  # a naive string comparison finds nobody
        _settled(sim, cfg)
        sim.state.knobs.retention_location_objects = False  # lenient: plain strings
        [policy] = _exchange(sim, "Get-RetentionCompliancePolicy", {"Identity": "Third-party data"}, scc=True).json()[
            "value"
        ]
        assert ADELE in [str(x).lower() for x in policy["ExchangeLocation"]]
        _settled(sim, cfg)


# --- item 5: a policy whose distribution is pending refuses changes ----------------------------------------------


def test_a_pending_policy_refuses_a_second_change_and_the_product_waits_a_run(tmp_path: Path) -> None:
    from tests.test_retention import policy_config

    with simulated_tenant("fresh", time_scale=0.001, retention_distribution_delay=100_000.0) as sim:
        cfg = policy_config(tmp_path)
        run = _setup(sim, tmp_path, cfg)
        assert run.code == ExitCode.OK, run.stdout[-2000:] + run.stderr
        # the naive second change while the first is distributing: refused, as the service does
        second = _exchange(
            sim, "Set-RetentionCompliancePolicy", {"Identity": "Third-party data", "Comment": "again"}, scc=True
        )
        assert second.status_code == 400 and "Pending" in second.text
        # a mailbox dropped from the policy meanwhile: the product defers re-adding it, no refused Set sent
        with sim.state.lock:
            policy = sim.state.retention_policies["Third-party data"]
            policy.exchange_locations = [x for x in policy.exchange_locations if x.lower() != LEE]
        sim.log.clear()
        deferred = m365(sim.url, "setup", "--yes", "--password-file", str(tmp_path / "pw"), config=cfg)
        assert deferred.code == ExitCode.OK, deferred.stdout[-2000:]
        planned = m365(sim.url, "--output", "json", "setup", "--dry-run", config=cfg)
        assert "policy-distribution-pending" in planned.stdout and "still distributing" in planned.stdout
        assert not any("Set-RetentionCompliancePolicy" in str(e.get("cmdlet")) for e in sim.writes())
        sim.state.clock.advance(100_000.0)  # distribution done
        assert _setup(sim, tmp_path, cfg).code == ExitCode.OK
        names = {x.lower() for x in sim.state.retention_policies["Third-party data"].exchange_locations}
        assert LEE in names
        sim.state.clock.advance(100_000.0)
        sim.state.knobs.retention_distribution_delay = 0.0  # lenient: distribution is instant
        for comment in ("one", "two"):  # two changes in a row are both accepted
            again = _exchange(
                sim, "Set-RetentionCompliancePolicy", {"Identity": "Third-party data", "Comment": comment}, scc=True
            )
            assert again.status_code == 200, again.text


# --- item 6: writes right after a create can answer "does not exist" ---------------------------------------------


def test_replication_lag_converges_with_the_catchall_created_once(tmp_path: Path) -> None:
    # 150 simulated seconds: longer than the client takes to send the licence, shorter than its retry bound
    with simulated_tenant("fresh", time_scale=0.001, user_replication_delay=150.0) as sim:
        run = _setup(sim, tmp_path)
        assert run.code == ExitCode.OK, run.stdout[-2000:] + run.stderr
        creates = [e for e in sim.requests if e["method"] == "POST" and e["path"].endswith("/v1.0/users")]
        assert len(creates) == 1  # created once
        lagged = [
            e
            for e in sim.requests
            if e["status"] == 404 and ("assignLicense" in e["path"] or "roleAssignments" in e["path"])
        ]
        assert lagged, "the simulator should have answered a write right after the create with 404"
        user = sim.state.user_by_upn(CATCHALL)
        assert user is not None and user.assigned_licenses
        _settled(sim)


def test_a_write_to_a_user_not_yet_replicated_answers_404_unless_the_knob_is_off() -> None:
    body = {
        "accountEnabled": True,
        "displayName": "New",
        "mailNickname": "new.user",
        "userPrincipalName": "new.user@contoso.onmicrosoft.com",
        "passwordProfile": {"password": "Str0ng!Passw0rd-x"},
        "usageLocation": "US",
    }
    with simulated_tenant("fresh", time_scale=0.001, user_replication_delay=100_000.0) as sim:
        created = _graph(sim, "POST", "/users", body)
        assert created.status_code == 201
        uid = created.json()["id"]
        r = _graph(sim, "PATCH", f"/users/{uid}", {"displayName": "Renamed"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "Request_ResourceNotFound"
    with simulated_tenant("fresh", time_scale=0.001, user_replication_delay=0.0) as sim:
        uid = _graph(sim, "POST", "/users", body).json()["id"]
        assert _graph(sim, "PATCH", f"/users/{uid}", {"displayName": "Renamed"}).status_code == 204


# --- item 10: role-member removal with the documented form -------------------------------------------------------


def test_role_member_removal_uses_the_documented_form_and_the_undocumented_one_is_refused() -> None:
    with simulated_tenant("legacy-leftovers", time_scale=0.001) as sim:
        role = _graph(sim, "GET", "/directoryRoles(roleTemplateId='29232cdf-9323-42fd-ade2-1d097af3e4de')").json()
        user = sim.state.user_by_upn(CATCHALL)
        assert user is not None
        ref = f"{sim.url}/v1.0/directoryObjects/{user.id}"
        naive = _graph(sim, "DELETE", f"/directoryRoles/{role['id']}/members/$ref?$id={ref}")
        assert naive.status_code == 400
        sim.state.knobs.ref_form_check = False  # lenient: the `$id` spelling is accepted too
        lenient = _graph(sim, "DELETE", f"/directoryRoles/{role['id']}/members/$ref?$id={ref}")
        assert lenient.status_code == 204
        sim.state.knobs.ref_form_check = True
        # put it back and remove it the documented way
        assert _graph(sim, "POST", f"/directoryRoles/{role['id']}/members/$ref", {"@odata.id": ref}).status_code == 204
        assert _graph(sim, "DELETE", f"/directoryRoles/{role['id']}/members/{user.id}/$ref").status_code == 204


# --- item 11: a new mailbox is planned as an identical existing one ------------------------------------------------


def test_a_new_mailbox_reads_audit_enabled_false_and_converges_on_microsofts_default_sets(tmp_path: Path) -> None:
    with simulated_tenant("fresh", time_scale=0.001) as sim:
        run = _setup(sim, tmp_path)
        assert run.code == ExitCode.OK, run.stdout[-2000:] + run.stderr
        mbx = _exchange(sim, "Get-Mailbox", {"Identity": CATCHALL}).json()["value"][0]
        assert mbx["AuditEnabled"] is True  # sent, because a new mailbox reads False
        assert sorted(mbx["DefaultAuditSet"]) == ["Admin", "Delegate", "Owner"]  # never taken off the defaults
        assert not any("AuditOwner" in str(e.get("parameters")) for e in sim.requests)
        _settled(sim)
        # an explicit list takes the type off Microsoft's defaults; the plan puts it back
        assert _exchange(sim, "Set-Mailbox", {"Identity": CATCHALL, "AuditOwner": ["Update"]}).status_code == 200
        assert (
            "Owner" not in _exchange(sim, "Get-Mailbox", {"Identity": CATCHALL}).json()["value"][0]["DefaultAuditSet"]
        )
        fix = m365(sim.url, "setup", "--dry-run", config=EXAMPLE)
        assert "DefaultAuditSet" in fix.stdout
        assert _setup(sim, tmp_path).code == ExitCode.OK
        _settled(sim)
    with simulated_tenant("fresh", time_scale=0.001, new_mailbox_audit_enabled=True) as lenient:
        assert _setup(lenient, tmp_path).code == ExitCode.OK
        assert not any("AuditEnabled" in str(e.get("parameters")) for e in lenient.requests)  # nothing to send
