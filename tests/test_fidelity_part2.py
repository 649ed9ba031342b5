"""Fidelity part 2 (issue 13), items 3-6, 9-12: eventual consistency and the shapes the real
services answer in. Each behaviour: the product converges against the strict simulator; the naive
request gets the real answer; with the knob off the simulator is lenient."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx

from m365archive.sim.server import SimulatedTenant
from m365archive.sim.state import CONNECTOR_APP_ID
from m365archive.steps.connector_consent import consent_url, consent_url_caveat
from m365archive.steps.retention import location_names
from m365archive.tenant.exchange import has_archive
from m365archive.tenant.session import discover_simulator, endpoints_for_cloud

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
    from m365archive.sim.server import simulated_tenant
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
        assert any("not accepted" in str(e.get("auth_error", "")) for e in strict.requests)
    with simulated_tenant("hybrid", time_scale=0.001) as lenient:  # the scenario allows NTLM (no KDC here)
        assert "ntlm" in lenient.state.knobs.onprem_auth
        host, port = lenient.url.split("//", 1)[1].rsplit(":", 1)
        runner = OnPremExchangeRunner(
            host, port=int(port), auth="ntlm", username=admin, password=lenient.state.onprem_users[admin]
        )
        outcome = asyncio.run(runner.invoke(Cmdlet("Get-RemoteMailbox")))
        assert outcome.ok
