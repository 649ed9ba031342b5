"""Issue 19 part 2: `doctor` probes, with reads only, each behaviour of docs/fidelity.md that can be observed
without changing anything. On every built-in scenario every assumption holds (or can't be told); turning a
behaviour's knob off makes exactly its probe differ; the service profile has one entry per probe and no tenant
data. The probes send malformed reads on purpose (no continue-on-error, an item without Authorization, an anchor
naming no mailbox), so the request-log check is replaced by a reads-only check of its own."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from m365archive.result import ExitCode
from m365archive.sim.scenario import builtin_scenarios
from m365archive.sim.server import SimulatedTenant, simulated_tenant
from m365archive.sim.state import RetentionPolicy, Sku, TenantState
from tests.clihelp import EXAMPLE, m365

pytestmark = pytest.mark.naive_requests

PROBES = {
    "scc-regional-host",
    "role-identities",
    "role-group-by-name",
    "retention-locations",
    "archive-guid",
    "exchange-skus",
    "batch-continue-on-error",
    "batch-item-auth",
    "token-audience",
    "anchor-mailbox",
    "adminapi-warnings",
    "verified-domains",
}


def _config(sim: SimulatedTenant, tmp_path: Path) -> Path:
    text = EXAMPLE.read_text(encoding="utf-8")
    text = text.replace("6f1c2a4e-3b5d-4c7e-9f10-2a3b4c5d6e7f", sim.state.tenant_id)
    text = text.replace("contoso.onmicrosoft.com", sim.state.domain)
    text = text.replace('cloud = "global"', f'cloud = "{sim.state.cloud}"')
    path = tmp_path / "m365archive.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _doctor(sim: SimulatedTenant, tmp_path: Path, *args: str) -> tuple[int, dict[str, str]]:
    run = m365(sim.url, "-o", "json", "doctor", *args, config=_config(sim, tmp_path))
    doc = json.loads(run.stdout)
    assert doc["exit_code"] == run.code
    return run.code, {p["id"]: p["verdict"] for p in doc["data"]["probes"]}


def _only_reads(sim: SimulatedTenant) -> None:
    for entry in sim.requests:
        if entry.get("service") == "graph":
            assert entry["method"] == "GET" or entry["path"].endswith("/oauth2/v2.0/token"), entry["path"]
        for cmdlet in entry.get("cmdlets") or []:
            assert str(cmdlet).startswith("Get-"), cmdlet
    assert sim.writes() == []


def _tenant_data(state: TenantState) -> set[str]:
    """Every name, UPN, id and domain of the scenario (what the profile must not hold)."""
    out = {state.tenant_id, state.domain, state.display_name, state.compliance_region, *state.verified_domains}
    for user in state.users.values():
        out |= {user.id, user.user_principal_name, user.display_name, user.mail or "", user.mail_nickname}
    for mbx in state.mailboxes.values():
        out |= {mbx.guid, mbx.alias, mbx.primary_smtp, mbx.display_name}
    for group in state.role_groups.values():
        out |= {group.guid}
    for group in state.groups.values():
        out |= {group.id, group.display_name}
    for sp in state.service_principals.values():
        out |= {sp.id}
    return {v for v in out if v and len(v) > 3}


@pytest.mark.parametrize("scenario", builtin_scenarios())
def test_doctor_holds_on_every_built_in_scenario_with_reads_only_and_a_redacted_profile(
    scenario: str, tmp_path: Path
) -> None:
    with simulated_tenant(scenario, time_scale=0.001) as sim:
        profile = tmp_path / "profile.json"
        code, verdicts = _doctor(sim, tmp_path, "--profile", str(profile))
        assert code == ExitCode.OK, verdicts
        assert set(verdicts) == PROBES and "differs" not in verdicts.values()
        assert {k for k, v in verdicts.items() if v == "can't tell"} <= {"retention-locations"}
        doc = json.loads(profile.read_text())
        assert [p["probe"] for p in doc["probes"]] == list(verdicts)  # one entry per probe
        text = profile.read_text()
        hosts = re.findall(r'"([^" ]+\.(?:com|us|cn))"', text)  # service host patterns: checked apart
        assert hosts and not [h for h in hosts if sim.state.domain in h or sim.state.compliance_region in h]
        assert sim.state.compliance_region not in text
        scanned = re.sub(r'"[^" ]+\.(?:com|us|cn)"', '""', text).lower()
        leaked = [v for v in _tenant_data(sim.state) if re.search(rf"\b{re.escape(v.lower())}\b", scanned)]
        assert leaked == []
        assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", text, re.I)
        assert "127.0.0.1" not in text and "@" not in text.replace("@adminapi", "").replace("@odata", "")
        _only_reads(sim)


def _retention_policy(sim: SimulatedTenant) -> Callable[[], None]:
    upn = next(u.user_principal_name for u in sim.state.users.values() if u.id in sim.state.mailboxes)
    sim.state.retention_policies["Doctor"] = RetentionPolicy(name="Doctor", guid="p-1", exchange_locations=[upn])
    return lambda: sim.state.retention_policies.pop("Doctor")


def _unknown_plan(sim: SimulatedTenant) -> Callable[[], None]:
    kiosk = Sku(
        "80b2d799-d2ba-4d2a-8842-fb0d0f3a4b82",
        "EXCHANGEDESKLESS",
        5,
        [("4a82b400-a79f-41a4-b4e2-e94f5787b113", "EXCHANGE_S_DESKLESS")],
    )
    sim.state.skus[kiosk.sku_id] = kiosk
    return lambda: sim.state.skus.pop(kiosk.sku_id)


FLIPS: list[tuple[dict[str, Any], Any, str]] = [
    ({"scc_regional_redirect": False}, None, "scc-regional-host"),
    ({"role_identities_qualified": False}, None, "role-identities"),
    ({"role_group_name_ambiguous": False}, None, "role-group-by-name"),
    ({"retention_location_objects": False}, _retention_policy, "retention-locations"),
    ({"archive_guid_exposed": False}, None, "archive-guid"),
    ({}, _unknown_plan, "exchange-skus"),
    ({"batch_stop_on_error": False}, None, "batch-continue-on-error"),
    ({"batch_item_auth": False}, None, "batch-item-auth"),
    ({"audience_check": False}, None, "token-audience"),
    ({"anchor_check": False}, None, "anchor-mailbox"),
]


@pytest.fixture(scope="module")
def shared() -> Iterator[SimulatedTenant]:
    """One `fresh` tenant for the flips below: each turns its knob off and puts it back (doctor only reads)."""
    with simulated_tenant("fresh", time_scale=0.001) as sim:
        yield sim


@pytest.mark.parametrize(("knobs", "setup", "probe"), FLIPS, ids=[f[2] for f in FLIPS])
def test_turning_a_behaviour_off_makes_exactly_its_probe_differ(
    shared: SimulatedTenant, knobs: dict[str, Any], setup: Any, probe: str, tmp_path: Path
) -> None:
    before = {name: getattr(shared.state.knobs, name) for name in knobs}
    for name, value in knobs.items():
        setattr(shared.state.knobs, name, value)
    undo = setup(shared) if setup is not None else None
    try:
        code, verdicts = _doctor(shared, tmp_path)
        assert {k for k, v in verdicts.items() if v == "differs"} == {probe}, verdicts
        assert code == ExitCode.FINDINGS
        _only_reads(shared)
    finally:
        for name, value in before.items():
            setattr(shared.state.knobs, name, value)
        if undo is not None:
            undo()


def test_retention_locations_hold_when_a_policy_has_locations(tmp_path: Path) -> None:
    with simulated_tenant("fresh", time_scale=0.001) as sim:
        _retention_policy(sim)
        code, verdicts = _doctor(sim, tmp_path)
        assert code == ExitCode.OK and verdicts["retention-locations"] == "holds"
        human = m365(sim.url, "doctor", config=_config(sim, tmp_path))
        assert "HOLDS       retention-locations" in human.stdout and "0 differ" in human.stdout
        markdown = m365(sim.url, "doctor", "-o", "markdown", config=_config(sim, tmp_path))
        assert markdown.code == ExitCode.OK and markdown.stdout.startswith("# m365archive doctor")
        assert "HOLDS       verified-domains" in markdown.stdout
