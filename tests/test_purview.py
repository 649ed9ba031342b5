"""Issue 7: `procedure = "purview-connector"` prepares a tenant for a Microsoft Purview data connector."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from m365archive.result import ExitCode
from m365archive.sim.server import SimulatedTenant
from tests.clihelp import m365

TENANT = "6f1c2a4e-3b5d-4c7e-9f10-2a3b4c5d6e7f"
PARTNER_APP = "3f4e5d6c-7b8a-4a1b-9c2d-1e2f3a4b5c6d"
OPERATOR = "admin@contoso.onmicrosoft.com"


def write_config(tmp_path: Path, connector: str, users: str = 'scope = "all"', extra: str = "") -> Path:
    path = tmp_path / "m365archive.toml"
    path.write_text(
        f"""procedure = "purview-connector"

[tenant]
id = "{TENANT}"

[connector]
{connector}

[users]
{users}

{extra}
""",
        encoding="utf-8",
    )
    return path


PARTNER = f'source = "veritas-merge1"\npartner_app_id = "{PARTNER_APP}"\nadd_role_group_member = true'


def test_fresh_converges_then_plans_nothing(sim: SimulatedTenant, tmp_path: Path) -> None:
    with sim.state.lock:
        sim.state.org_config["AuditDisabled"] = True  # org mailbox auditing off: setup turns it on
    config = write_config(tmp_path, PARTNER)
    report = tmp_path / "plan.md"
    plan_json = tmp_path / "plan.json"
    dry = m365(sim.url, "setup", "--dry-run", "--report", str(report), "--plan-out", str(plan_json), config=config)
    assert dry.code == ExitCode.OK, dry.stdout + dry.stderr
    assert sim.writes() == []
    text = report.read_text(encoding="utf-8")
    assert "POST /v1.0/servicePrincipals" in text
    group = sim.state.role_groups["ComplianceAdministrator"].guid  # addressed by its unique id, never by name
    assert f"Add-RoleGroupMember -Identity '{group}' -Member '{OPERATOR}'" in text
    assert "Set-OrganizationConfig -AuditDisabled $false" in text
    assert "No catch-all account is created" in text
    assert "2024-12-30" not in text.split("\n## ")[0]  # today's route: no retirement notice on top
    plan = json.loads(plan_json.read_text(encoding="utf-8"))
    assert plan["procedure"] == "purview-connector"
    instructions = plan["instructions"]
    assert instructions[0].startswith("Create the connector by hand")
    assert "https://purview.microsoft.com" in instructions[0] and OPERATOR in instructions[0]
    assert any('"Veritas Merge1"' in line for line in instructions)
    assert any(PARTNER_APP in line for line in instructions)
    assert "https://purview.microsoft.com" in text  # the report carries the portal handoff

    applied = m365(sim.url, "setup", "--yes", config=config)
    assert applied.code == ExitCode.OK, applied.stdout + applied.stderr
    state = sim.state
    assert state.sp_by_app_id(PARTNER_APP) is not None
    assert OPERATOR in state.role_groups["ComplianceAdministrator"].members
    assert state.org_config["AuditDisabled"] is False
    assert state.admin_audit_log_config["UnifiedAuditLogIngestionEnabled"] is True
    for upn in ("adele.vance@contoso.onmicrosoft.com", "compliance.officer@contoso.onmicrosoft.com"):
        user = state.user_by_upn(upn)
        assert user is not None
        mbx = state.mailboxes[user.id]
        assert mbx.archive_status == "Active" and mbx.litigation_hold_enabled
    assert not any("third" in u.user_principal_name.lower() for u in state.users.values())
    assert len(state.users) == 7  # the operator and the six scenario users: no catch-all was created

    sim.log.clear()
    again = m365(sim.url, "setup", "--dry-run", "--detailed-exitcode", config=config)
    assert again.code == ExitCode.OK, again.stdout
    assert "No changes" in again.stdout
    assert sim.writes() == []
    status = m365(sim.url, "status", config=config)
    assert status.code == ExitCode.OK, status.stdout


def test_operator_already_holding_data_connector_admin_needs_no_role_change(
    sim: SimulatedTenant, tmp_path: Path
) -> None:
    with sim.state.lock:
        sim.state.role_groups["OrganizationManagement"].members.append(OPERATOR)
    config = write_config(tmp_path, 'source = "bloomberg-message"', users='scope = "none"')
    run = m365(sim.url, "--output", "json", "setup", "--dry-run", config=config)
    assert run.code == ExitCode.OK, run.stdout + run.stderr
    doc = json.loads(run.stdout)
    data = doc["data"]
    checks = {c["id"]: c for c in data["checks"]}
    assert (
        checks["data-connector-admin"]["passed"] and "OrganizationManagement" in checks["data-connector-admin"]["title"]
    )
    assert not [c for c in data["changes"] if c["action"] != "no-op"]
    assert any("no users in scope" in f["message"] for f in data["findings"])
    assert sim.writes() == []


def test_missing_role_and_audit_off_are_findings_with_exact_commands(sim: SimulatedTenant, tmp_path: Path) -> None:
    with sim.state.lock:
        sim.state.admin_audit_log_config["UnifiedAuditLogIngestionEnabled"] = False
    config = write_config(tmp_path, 'source = "bloomberg-message"', users='scope = "none"')
    report = tmp_path / "r.md"
    run = m365(sim.url, "setup", "--dry-run", "--report", str(report), config=config)
    assert run.code == ExitCode.OK, run.stderr
    text = report.read_text(encoding="utf-8")
    assert "Set-AdminAuditLogConfig -UnifiedAuditLogIngestionEnabled $true" in text
    group = sim.state.role_groups["ComplianceAdministrator"].guid  # addressed by its unique id, never by name
    assert f"Add-RoleGroupMember -Identity '{group}' -Member '{OPERATOR}'" in text
    assert "HIGH" in text
    applied = m365(sim.url, "setup", "--yes", config=config)
    assert applied.code == ExitCode.OK
    # Set-AdminAuditLogConfig is not in the cmdlet spec: reported, never sent.
    assert sim.state.admin_audit_log_config["UnifiedAuditLogIngestionEnabled"] is False
    assert OPERATOR not in sim.state.role_groups["ComplianceAdministrator"].members


def test_litigation_hold_only_scope_needs_holds(sim: SimulatedTenant, tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        'source = "instant-bloomberg"\nimport_scope = "litigation-hold-only"',
        users='scope = "all"\nhold = false',
    )
    run = m365(sim.url, "setup", "--dry-run", config=config)
    assert run.code == ExitCode.PREREQUISITE
    assert "Litigation Hold" in run.stderr


@pytest.mark.parametrize(
    ("connector", "message"),
    [
        ('source = "veritas-merge1"', "partner_app_id"),
        ('source = "no-such-connector"', "not a known Purview data connector"),
    ],
)
def test_connector_prerequisites(sim: SimulatedTenant, tmp_path: Path, connector: str, message: str) -> None:
    run = m365(sim.url, "setup", "--dry-run", config=write_config(tmp_path, connector))
    assert run.code == ExitCode.PREREQUISITE
    assert message in run.stderr
    assert sim.writes() == []


def test_mapping_file_is_in_the_portal_instructions(sim: SimulatedTenant, tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        'source = "bloomberg-message"\nmapping_file = "bloomberg-map.csv"\nimport_scope = "litigation-hold-only"',
    )
    run = m365(sim.url, "--output", "json", "setup", "--dry-run", config=config)
    assert run.code == ExitCode.OK, run.stderr
    instructions = json.loads(run.stdout)["data"]["instructions"]
    assert any("upload bloomberg-map.csv" in i and "--source bloomberg" in i for i in instructions)
    assert any("Only users on Litigation hold" in i for i in instructions)
