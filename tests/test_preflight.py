"""Issue 19 part 1: `preflight` reads what the signed-in principal holds against what a run needs, and `setup`
makes the same verdicts blocking checks of its plan. Every case runs the real command line against the
simulator, whose knobs give the principal its scopes and roles."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from m365archive.result import ExitCode
from m365archive.sim.server import SimulatedTenant, simulated_tenant
from m365archive.sim.tokens import DEFAULT_SCOPES, SIMULATOR_APP_ID
from tests.clihelp import m365
from tests.test_hybrid import HYBRID

EVERY_ROLE = (
    "User Administrator",
    "Privileged Role Administrator",
    "Exchange Administrator",
    "Global Reader",
    "Compliance Administrator",
)


def _preflight(sim: SimulatedTenant, *args: str, config: Path | None = None) -> tuple[int, dict[str, Any]]:
    run = m365(sim.url, "-o", "json", "preflight", *args, **({"config": config} if config else {}))
    doc = json.loads(run.stdout)
    assert doc["exit_code"] == run.code
    return run.code, doc["data"]


def _by_verdict(data: dict[str, Any], verdict: str) -> dict[str, dict[str, Any]]:
    return {n["need"]: n for n in data["needs"] if n["verdict"] == verdict}


def test_a_principal_with_everything_has_every_need_and_sends_only_reads() -> None:
    with simulated_tenant("fresh", time_scale=0.001) as sim:
        code, data = _preflight(sim)
        assert code == ExitCode.OK
        assert data["principal"] == "admin@contoso.onmicrosoft.com" and data["sign_in"] == "delegated"
        kinds = {n["kind"] for n in data["needs"]}
        assert kinds == {"graph-permission", "exchange-permission", "entra-role", "role-group", "service-principal"}
        assert {n["verdict"] for n in data["needs"]} == {"have"}
        assert "User.ReadWrite.All" in {n["need"] for n in data["needs"]}  # setup's writes, not only its reads
        human = m365(sim.url, "preflight")
        assert human.code == ExitCode.OK and "0 missing or only eligible" in human.stdout
        assert sim.writes() == []


# (knobs, the needs that must be missing and nothing else)
CASES = [
    ({"principal_scopes": tuple(s for s in DEFAULT_SCOPES if s != "User.ReadWrite.All")}, {"User.ReadWrite.All"}),
    (
        {"principal_scopes": tuple(s for s in DEFAULT_SCOPES if s != "LicenseAssignment.ReadWrite.All")},
        {"LicenseAssignment.ReadWrite.All"},
    ),
    (
        {"principal_scopes": tuple(s for s in DEFAULT_SCOPES if s != "RoleManagement.ReadWrite.Directory")},
        {"RoleManagement.Read.Directory", "RoleManagement.ReadWrite.Directory"},
    ),
    (
        {"principal_scopes": tuple(s for s in DEFAULT_SCOPES if s != "Application.ReadWrite.All")},
        {"Application.Read.All"},
    ),
    (
        {"principal_scopes": tuple(s for s in DEFAULT_SCOPES if s != "GroupMember.Read.All")},
        {"GroupMember.Read.All or Group.Read.All"},
    ),
    (
        {"principal_scopes": tuple(s for s in DEFAULT_SCOPES if not s.startswith("User.Read"))},
        {"User.Read.All", "User.ReadWrite.All"},
    ),
    ({"principal_scopes": tuple(s for s in DEFAULT_SCOPES if s != "Exchange.Manage")}, {"Exchange.Manage"}),
    ({"principal_roles": EVERY_ROLE}, set()),
    (
        {"principal_roles": tuple(r for r in EVERY_ROLE if r != "User Administrator")},
        {"User Administrator", "License Administrator or User Administrator"},
    ),
    (
        {"principal_roles": tuple(r for r in EVERY_ROLE if r != "Privileged Role Administrator")},
        {"Privileged Role Administrator"},
    ),
    (
        {"principal_roles": tuple(r for r in EVERY_ROLE if r != "Exchange Administrator")},
        {"Organization Management (Exchange Online role group)"},
    ),
    (
        {"principal_roles": ("User Administrator", "Privileged Role Administrator", "Exchange Administrator")},
        {"Compliance Administrator (Security & Compliance role group)"},
    ),
]


@pytest.fixture(scope="module")
def shared() -> Iterator[SimulatedTenant]:
    """One `fresh` tenant for the cases below: each sets the principal's knobs and puts them back (every command
    signs in anew, so the tokens follow the knobs; nothing here writes)."""
    with simulated_tenant("fresh", time_scale=0.001) as sim:
        yield sim


@pytest.mark.parametrize(("knobs", "missing"), CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_each_missing_need_is_reported_with_its_remedy_exit_7_and_blocks_setup(
    shared: SimulatedTenant, knobs: dict[str, Any], missing: set[str], tmp_path: Path
) -> None:
    before = {name: getattr(shared.state.knobs, name) for name in knobs}
    for name, value in knobs.items():
        setattr(shared.state.knobs, name, value)
    try:
        _missing_case(shared, missing, tmp_path)
    finally:
        for name, value in before.items():
            setattr(shared.state.knobs, name, value)


def _missing_case(sim: SimulatedTenant, missing: set[str], tmp_path: Path) -> None:
    code, data = _preflight(sim)
    found = _by_verdict(data, "missing")
    assert set(found) == missing
    assert code == (ExitCode.PREREQUISITE if missing else ExitCode.OK)
    for need in found.values():
        if need["kind"] in ("graph-permission", "exchange-permission"):
            assert "/v2.0/adminconsent?client_id=" in need["remedy"]
            assert need["alternatives"][0] in need["remedy"]  # the consent URL asks for that permission
        elif need["kind"] == "entra-role":
            assert need["remedy"].startswith("New-MgRoleManagementDirectoryRoleAssignment -PrincipalId '")
        else:
            assert "Add-RoleGroupMember -Identity '" in need["remedy"]
            assert "-Member 'admin@contoso.onmicrosoft.com'" in need["remedy"]
    # setup --dry-run makes the same verdicts blocking checks of its plan, and sends nothing
    plan = tmp_path / "plan.json"
    run = m365(sim.url, "setup", "--dry-run", "--plan-out", str(plan), "--password-file", str(tmp_path / "pw"))
    assert run.code == (ExitCode.PREREQUISITE if missing else ExitCode.OK), run.stdout + run.stderr
    checks = json.loads(plan.read_text())["checks"]
    blocking = [c for c in checks if c["id"].startswith("permission/") and c["blocking"] and not c["passed"]]
    assert {_need_of(c) for c in blocking} == missing
    assert all(c["remedy"] == found[_need_of(c)]["remedy"] for c in blocking)
    assert sim.writes() == []


def _need_of(check: dict[str, Any]) -> str:
    return str(check["title"].split(": ", 1)[1].split(" ", 1)[1].rsplit(" missing", 1)[0])


def test_an_eligible_role_is_activate_first_and_blocks() -> None:
    roles = tuple(r for r in EVERY_ROLE if r != "Privileged Role Administrator")
    with simulated_tenant(
        "fresh", time_scale=0.001, principal_roles=roles, principal_eligible_roles=("Privileged Role Administrator",)
    ) as sim:
        code, data = _preflight(sim)
        assert code == ExitCode.PREREQUISITE
        eligible = _by_verdict(data, "eligible")
        assert set(eligible) == {"Privileged Role Administrator"}
        assert "activate first" in eligible["Privileged Role Administrator"]["remedy"]
        assert not _by_verdict(data, "missing")
        human = m365(sim.url, "preflight")
        assert "ELIGIBLE    entra-role: Privileged Role Administrator" in human.stdout


def test_an_app_only_principal_needs_application_permissions() -> None:
    scopes = tuple(s for s in DEFAULT_SCOPES if s != "Exchange.ManageAsApp")
    with simulated_tenant("fresh", time_scale=0.001, principal_scopes=scopes) as sim:
        sim.state.signed_in_user = None  # the scenario's principal is an application
        code, data = _preflight(sim)
        assert data["sign_in"] == "application" and data["principal"] == f"application {SIMULATOR_APP_ID}"
        missing = _by_verdict(data, "missing")
        assert set(missing) == {"Exchange.ManageAsApp"} and code == ExitCode.PREREQUISITE
        remedy = missing["Exchange.ManageAsApp"]["remedy"]
        assert f"application permission Exchange.ManageAsApp to app {SIMULATOR_APP_ID}" in remedy
        assert f"adminconsent?client_id={SIMULATOR_APP_ID}&scope=https://outlook.office365.com/.default" in remedy
        assert "role-group" not in {n["kind"] for n in data["needs"]}  # apps hold Entra roles, not role groups


def test_role_group_membership_is_read_when_no_entra_role_settles_it() -> None:
    roles = ("User Administrator", "Privileged Role Administrator", "Global Reader")
    with simulated_tenant("fresh", time_scale=0.001, principal_roles=roles) as sim:
        _, data = _preflight(sim)
        assert "Organization Management (Exchange Online role group)" in _by_verdict(data, "missing")
        sim.state.role_groups["OrganizationManagement"].members.append("admin@contoso.onmicrosoft.com")
        code, data = _preflight(sim)
        held = _by_verdict(data, "have")["Organization Management (Exchange Online role group)"]
        assert held["via"] == "member of OrganizationManagement" and code == ExitCode.OK
        cmdlets = [e.get("cmdlet") for e in sim.requests if e.get("service") in ("exchange", "compliance")]
        assert "Get-RoleGroupMember" in str(sim.requests) and all(
            c is None or str(c).startswith("Get-") for c in cmdlets
        )


def test_eligibility_needs_its_permission_and_a_reader_role() -> None:
    with simulated_tenant("fresh", time_scale=0.001, principal_roles=("User Administrator",)) as sim:
        token = httpx.post(
            f"{sim.url}/{sim.state.tenant_id}/oauth2/v2.0/token",
            data={"scope": "https://graph.microsoft.com/.default", "grant_type": "client_credentials"},
            timeout=30,
        ).json()["access_token"]
        url = f"{sim.url}/v1.0/roleManagement/directory/roleEligibilityScheduleInstances"
        answer = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert answer.status_code == 403 and answer.json()["error"]["code"] == "Authorization_RequestDenied"
        _, data = _preflight(sim)  # the read is refused: a role not held is missing, PIM could not be told
        assert (
            _by_verdict(data, "missing")["Privileged Role Administrator"]["via"] == "PIM eligibility could not be read"
        )
        sim.state.knobs.permission_check = False
        assert httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30).status_code == 200


def test_preflight_for_other_commands_and_a_bad_name() -> None:
    with simulated_tenant("fresh", time_scale=0.001, principal_roles=("Global Reader",)) as sim:
        code, data = _preflight(sim, "--for", "consent-status")
        assert code == ExitCode.OK and data["for"] == "consent-status"
        assert {n["need"] for n in data["needs"]} >= {"Application.Read.All", "Global Reader"}
        code, data = _preflight(sim, "--for", "legacy")
        assert code == ExitCode.PREREQUISITE
        assert "Privileged Authentication Administrator" in _by_verdict(data, "missing")
        bad = m365(sim.url, "preflight", "--for", "setpu")
        assert bad.code == ExitCode.USAGE and "--for must be one of" in bad.stderr


@pytest.fixture
def hybrid(monkeypatch: pytest.MonkeyPatch) -> Any:
    with simulated_tenant("hybrid", time_scale=0.001, onprem_role_groups=("View-Only Organization Management",)) as sim:
        monkeypatch.setenv("M365ARCHIVE_ONPREM_PASSWORD", sim.state.onprem_users["CONTOSO\\exadmin"])
        yield sim


def test_preflight_onprem_reads_effective_role_users_and_a_missing_role_is_exit_7(hybrid: SimulatedTenant) -> None:
    run = m365(hybrid.url, "preflight", "--onprem", config=HYBRID)
    assert run.code == ExitCode.PREREQUISITE, run.stdout + run.stderr
    assert "FAIL  enable archives" in run.stdout
    assert "Add-RoleGroupMember -Identity 'Recipient Management' -Member 'CONTOSO\\exadmin'" in run.stdout
    onprem = [e for e in hybrid.requests if e.get("service") == "onprem" and e.get("cmdlets")]
    sent = {c for e in onprem for c in e["cmdlets"]}
    assert "Get-ManagementRoleAssignment" in str(sent) and "Enable-RemoteMailbox" not in str(sent)
    # setup's plan-time check asks the same: the on-premises need is missing, with the same remedy
    code, data = _preflight(hybrid, config=HYBRID)
    assert code == ExitCode.PREREQUISITE
    need = _by_verdict(data, "missing")[
        "Recipient Management or Organization Management (on-premises Exchange role group)"
    ]
    assert "'CONTOSO\\exadmin'" in need["remedy"]
    hybrid.state.knobs.onprem_role_groups = ("Recipient Management",)
    assert m365(hybrid.url, "preflight", "--onprem", config=HYBRID).code == ExitCode.OK
