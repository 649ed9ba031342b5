"""Issue 16, legacy clean-up completeness: access the clean-up doesn't remove is reported (PIM-eligible role
assignments, ApplicationImpersonation where the tenant still has the role), and the report says what was
checked for each account, telling "none found" apart from "can't tell"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from m365archive.result import ExitCode
from m365archive.sim.server import simulated_tenant
from m365archive.sim.tokens import DEFAULT_SCOPES
from tests.clihelp import m365
from tests.test_legacy import CATCHALL, purview_config


def _cleanup_report(tmp_path: Path, **knobs: Any) -> str:
    report = tmp_path / "cleanup.md"
    with simulated_tenant("legacy-leftovers", time_scale=0.001, **knobs) as sim:
        run = m365(sim.url, "legacy", "cleanup", "--dry-run", "--report", str(report), config=purview_config(tmp_path))
        assert run.code == ExitCode.OK, run.stdout + run.stderr
        assert sim.writes() == []
    return report.read_text(encoding="utf-8")


def _checked(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(f"- checked for {CATCHALL}:"))


def test_pim_eligibility_and_application_impersonation_are_findings_and_the_checks_are_listed(tmp_path: Path) -> None:
    text = _cleanup_report(
        tmp_path,
        eligible_role_assignments=((CATCHALL, "Exchange Administrator"),),
        application_impersonation_assignees=(CATCHALL,),
    )
    findings = text[text.index("## Findings") :]
    assert "eligible (Privileged Identity Management) for Exchange Administrator" in findings
    assert "holds ApplicationImpersonation (assignment ApplicationImpersonation-thirdpartydata)" in findings
    assert "Remove-ManagementRoleAssignment -Identity 'ApplicationImpersonation-thirdpartydata'" in findings
    checked = _checked(text)
    assert "PIM-eligible role assignments (1 found)" in checked
    assert "ApplicationImpersonation assignments (1 found)" in checked


def test_a_tenant_without_the_role_says_so_and_an_unreadable_pim_is_cant_tell(tmp_path: Path) -> None:
    checked = _checked(_cleanup_report(tmp_path))
    assert "PIM-eligible role assignments (0 found)" in checked
    assert "ApplicationImpersonation assignments (the tenant no longer has the role" in checked
    # without a permission that reads eligibilities, Graph refuses: "can't tell", never "none"
    scopes = tuple(s for s in DEFAULT_SCOPES if not s.startswith("RoleManagement"))
    checked = _checked(_cleanup_report(tmp_path, principal_scopes=scopes))
    assert "PIM-eligible role assignments (can't tell (403 Authorization_RequestDenied" in checked
