"""Fidelity part 2, items 1 and 2: hosts and token audiences per cloud, Government licences.

Each behaviour: the product converges against the strict simulator; the naive request gets the real
answer; with the knob off the simulator is lenient (so the test can fail).
"""

from __future__ import annotations

from pathlib import Path

import httpx

from m365archive.result import ExitCode
from m365archive.sim.server import SimulatedTenant, simulated_tenant
from m365archive.steps.catchall_account import pick_sku
from m365archive.tenant.simcredential import SimulatorCredential, token_url
from tests.clihelp import EXAMPLE, m365

GOV_PLAN2 = "8c3069c0-ccdb-44be-ab77-986203a67df2"  # EXCHANGE_S_ENTERPRISE_GOV
GOV_SKU = "7be8dc28-4da4-4e6d-b9b9-c60f2806df8a"  # EXCHANGEENTERPRISE_GOV


def gcc_high_config(tmp_path: Path) -> Path:
    text = EXAMPLE.read_text(encoding="utf-8")
    text = text.replace("contoso.onmicrosoft.com", "contoso.onmicrosoft.us")
    text = text.replace('cloud = "global"', 'cloud = "gcc-high"')
    text = text.replace("6f1c2a4e-3b5d-4c7e-9f10-2a3b4c5d6e7f", "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f")
    path = tmp_path / "gcc-high.toml"
    path.write_text(text, encoding="utf-8")
    return path


def invoke(sim: SimulatedTenant, audience: str) -> httpx.Response:
    token = SimulatorCredential(token_url(sim.url, sim.state.tenant_id)).get_token(f"{audience}/.default").token
    body = {"CmdletInput": {"CmdletName": "Get-OrganizationConfig", "Parameters": {}}}
    return httpx.post(
        f"{sim.url}/adminapi/beta/{sim.state.tenant_id}/InvokeCommand",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def test_gcc_high_with_government_licences_converges(tmp_path: Path) -> None:
    config = gcc_high_config(tmp_path)
    with simulated_tenant("gcc-high", time_scale=0.001) as sim:
        applied = m365(sim.url, "setup", "--yes", "--password-file", str(tmp_path / "pw"), config=config)
        assert applied.code == ExitCode.OK, applied.stdout + applied.stderr
        catchall = sim.state.user_by_upn("thirdpartydata@contoso.onmicrosoft.us")
        assert catchall is not None and catchall.assigned_licenses == [GOV_SKU]
        mbx = sim.state.mailboxes[catchall.id]
        assert mbx.litigation_hold_enabled and mbx.archive_status == "Active"
        adele = sim.state.user_by_upn("adele.vance@contoso.onmicrosoft.us")
        assert adele is not None and sim.state.mailboxes[adele.id].litigation_hold_enabled
        lee = sim.state.user_by_upn("lee.gu@contoso.onmicrosoft.us")  # Plan 1 for Government: no hold
        assert lee is not None and not sim.state.mailboxes[lee.id].litigation_hold_enabled
        sim.log.clear()
        again = m365(sim.url, "setup", "--dry-run", "--detailed-exitcode", config=config)
        assert again.code == ExitCode.OK, again.stdout
        assert "No changes" in again.stdout and sim.writes() == []


def test_a_token_for_an_old_remote_powershell_host_is_refused_unless_the_knob_is_off() -> None:
    with simulated_tenant("fresh", time_scale=0.001) as sim:
        sim.state.cloud = "dod"
        assert invoke(sim, "https://webmail.apps.mil").status_code == 401  # the old RPS host's audience
        assert invoke(sim, "https://outlook-dod.office365.us").status_code == 200
        sim.state.cloud = "china"
        assert invoke(sim, "https://partner.outlook.cn").status_code == 200
        sim.state.cloud = "gcc-high"
        assert invoke(sim, "https://outlook.office365.com").status_code == 401  # a commercial token
        sim.state.knobs.audience_check = False
        assert invoke(sim, "https://webmail.apps.mil").status_code == 200


def test_government_plan_2_is_plan_2_for_the_catch_all_and_for_holds() -> None:
    gov = {
        "skuId": GOV_SKU,
        "skuPartNumber": "EXCHANGEENTERPRISE_GOV",
        "prepaidUnits": {"enabled": 5},
        "consumedUnits": 1,
        "servicePlans": [{"servicePlanId": GOV_PLAN2, "servicePlanName": "EXCHANGE_S_ENTERPRISE_GOV"}],
    }
    plan1 = {
        "skuId": "f37d5ebf-4bf1-4aa2-8fa3-50c51059e983",
        "skuPartNumber": "EXCHANGESTANDARD_GOV",
        "prepaidUnits": {"enabled": 5},
        "consumedUnits": 0,
        "servicePlans": [{"servicePlanId": "e9b4930a-925f-45e2-ac2a-3f7788ca6fdd"}],
    }
    sku, why = pick_sku([plan1, gov], "any")
    assert sku is gov, why
    sku, why = pick_sku([plan1], "EXCHANGESTANDARD_GOV")
    assert sku is None and "EXCHANGE_S_ENTERPRISE_GOV" in why


def test_the_simulator_refuses_a_hold_without_plan_2_in_government_too(tmp_path: Path) -> None:
    with simulated_tenant("gcc-high", time_scale=0.001) as sim:
        token = (
            SimulatorCredential(token_url(sim.url, sim.state.tenant_id))
            .get_token("https://outlook.office365.us/.default")
            .token
        )
        body = {
            "CmdletInput": {
                "CmdletName": "Set-Mailbox",
                "Parameters": {"Identity": "lee.gu@contoso.onmicrosoft.us", "LitigationHoldEnabled": True},
            }
        }
        r = httpx.post(
            f"{sim.url}/adminapi/beta/{sim.state.tenant_id}/InvokeCommand",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert r.status_code >= 400
        body["CmdletInput"]["Parameters"]["Identity"] = "adele.vance@contoso.onmicrosoft.us"  # type: ignore[index]
        ok = httpx.post(
            f"{sim.url}/adminapi/beta/{sim.state.tenant_id}/InvokeCommand",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert ok.status_code == 200, ok.text
        sim.state.knobs.hold_licence_check = False  # lenient: any licence allows a hold
        body["CmdletInput"]["Parameters"]["Identity"] = "lee.gu@contoso.onmicrosoft.us"  # type: ignore[index]
        lenient = httpx.post(
            f"{sim.url}/adminapi/beta/{sim.state.tenant_id}/InvokeCommand",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert lenient.status_code == 200, lenient.text
