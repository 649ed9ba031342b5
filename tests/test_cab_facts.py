"""Issue 16: what a change board decides on, read from the tenant: the connector's permissions by name
(from the resource's own service principal), and whether Security defaults or Conditional Access would
block the partner's password sign-in to the catch-all (an advisory check that says "can't tell" when
the policies can't be read)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from m365archive.result import ExitCode
from m365archive.sim.server import simulated_tenant
from m365archive.sim.tokens import DEFAULT_SCOPES
from tests.clihelp import m365
from tests.test_tokens import GRAPH, bearer

FULL_ACCESS = "dc890d15-9560-4a4c-9b7f-a736ec74ec40"
EXCHANGE_APP = "00000002-0000-0ff1-ce00-000000000000"
EXCHANGE_ADMIN = "29232cdf-9323-42fd-ade2-1d097af3e4de"
WITH_POLICY_READ = (*DEFAULT_SCOPES, "Policy.Read.All")


def test_consent_status_names_each_permission_and_resource_from_the_resources_service_principal() -> None:
    with simulated_tenant("legacy-leftovers", time_scale=0.001) as sim:
        human = m365(sim.url, "consent", "status")
        document = m365(sim.url, "-o", "json", "consent", "status")
    assert human.code == ExitCode.OK, human.stderr
    exchange = f"Office 365 Exchange Online (app {EXCHANGE_APP})"
    assert f"    - full_access_as_app ({FULL_ACCESS}) on {exchange}" in human.stdout
    assert f"    - EWS.AccessAsUser.All on {exchange} for all users" in human.stdout
    permissions = json.loads(document.stdout)["data"]["permissions"]
    assert {(p["type"], p["permission"]) for p in permissions} == {
        ("delegated", "EWS.AccessAsUser.All"),
        ("application", f"full_access_as_app ({FULL_ACCESS})"),
    }


def test_without_published_permissions_an_id_is_said_to_be_unnamed_never_guessed() -> None:
    with simulated_tenant("legacy-leftovers", time_scale=0.001, resource_permissions_published=False) as sim:
        human = m365(sim.url, "consent", "status")
    assert human.code == ExitCode.OK, human.stderr
    assert f"app role {FULL_ACCESS} (not among the resource's published appRoles)" in human.stdout
    assert "EWS.AccessAsUser.All (not among the resource's published scopes)" in human.stdout
    assert "full_access_as_app" not in human.stdout


def test_the_simulator_serves_the_sign_in_policies_only_with_policy_read_all() -> None:
    with simulated_tenant("fresh", time_scale=0.001, security_defaults=True) as sim:
        token = bearer(sim, GRAPH)
        refused = httpx.get(
            f"{sim.url}/v1.0/policies/identitySecurityDefaultsEnforcementPolicy",
            headers={"Authorization": f"Bearer {token}"},
        )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "Authorization_RequestDenied"
    with simulated_tenant("fresh", time_scale=0.001, security_defaults=True, principal_scopes=WITH_POLICY_READ) as sim:
        token = bearer(sim, GRAPH)
        headers = {"Authorization": f"Bearer {token}"}
        defaults = httpx.get(f"{sim.url}/v1.0/policies/identitySecurityDefaultsEnforcementPolicy", headers=headers)
        policies = httpx.get(f"{sim.url}/v1.0/identity/conditionalAccess/policies", headers=headers)
    assert defaults.status_code == 200 and defaults.json()["isEnabled"] is True
    assert policies.status_code == 200 and policies.json()["value"] == []


def _advisory(tmp_path: Path, **knobs: Any) -> str:
    report = tmp_path / "r.md"
    with simulated_tenant("fresh", time_scale=0.001, **knobs) as sim:
        run = m365(sim.url, "setup", "--dry-run", "--report", str(report))
        assert run.code == ExitCode.OK, run.stderr
        assert sim.writes() == []
    text = report.read_text(encoding="utf-8")
    advisory = text[text.index("Advisory: shown with what to do") : text.index("## Warnings")]
    return next(line for line in advisory.splitlines() if "multifactor authentication" in line)


def test_security_defaults_are_an_advisory_check_before_approval(tmp_path: Path) -> None:
    line = _advisory(tmp_path, security_defaults=True, principal_scopes=WITH_POLICY_READ)
    assert "Security defaults are on" in line and "a password alone can't sign in" in line
    assert "learn.microsoft.com/entra/fundamentals/security-defaults" in line and "not met (advisory)" in line


def test_a_conditional_access_policy_requiring_mfa_of_exchange_admins_is_named(tmp_path: Path) -> None:
    def policy(name: str, state: str, controls: list[str], apps: str = "All") -> dict[str, Any]:
        return {
            "id": name,
            "displayName": name,
            "state": state,
            "conditions": {
                "applications": {"includeApplications": [apps], "excludeApplications": []},
                "users": {"includeUsers": [], "includeRoles": [EXCHANGE_ADMIN], "excludeUsers": []},
            },
            "grantControls": {"operator": "OR", "builtInControls": controls},
        }

    azure_management = "797f4846-ba00-4fd7-ba43-dac1f8f63013"
    policies = (
        policy("Require MFA for admins", "enabled", ["mfa"]),
        policy("MFA for Exchange", "enabled", ["mfa"], EXCHANGE_APP),
        policy("Report-only MFA", "enabledForReportingButNotEnforced", ["mfa"]),
        policy("Compliant device", "enabled", ["compliantDevice"]),
        policy("MFA for Azure management", "enabled", ["mfa"], azure_management),
    )
    line = _advisory(tmp_path, conditional_access_policies=policies, principal_scopes=WITH_POLICY_READ)
    assert "Conditional Access requires multifactor authentication" in line
    assert "MFA for Exchange; Require MFA for admins" in line
    assert "Report-only" not in line and "Compliant device" not in line and "Azure management" not in line


def test_the_check_passes_when_no_policy_asks_for_mfa_and_cant_tell_without_permission(tmp_path: Path) -> None:
    line = _advisory(tmp_path, principal_scopes=WITH_POLICY_READ)
    assert "neither Security defaults nor an enabled Conditional Access policy (0 read)" in line and "| pass |" in line
    line = _advisory(tmp_path, security_defaults=True)  # the default principal holds no Policy.Read.All
    assert "can't tell whether multifactor authentication blocks" in line and "was refused" in line
