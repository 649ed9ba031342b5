"""Findings agree with the procedure: what partner-ews itself requires is an accepted risk, anything
else can be accepted in the config by id, and `status --fail-on` exits 13 FINDINGS for the rest."""

from __future__ import annotations

import json
from pathlib import Path

from m365archive.result import ExitCode
from m365archive.sim.server import SimulatedTenant, simulated_tenant
from tests.clihelp import EXAMPLE, m365

LEGACY = "thirdpartydata@contoso.onmicrosoft.com"


def test_status_after_applying_the_example_shows_the_procedures_risk_as_accepted(
    sim: SimulatedTenant, tmp_path: Path
) -> None:
    applied = m365(sim.url, "setup", "--yes", "--password-file", str(tmp_path / "pw"))
    assert applied.code == ExitCode.OK, applied.stderr
    status = m365(sim.url, "-o", "json", "status", "--fail-on", "critical")
    assert status.code == ExitCode.OK, status.stdout[-800:]
    findings = json.loads(status.stdout)["data"]["findings"]
    handoff = next(f for f in findings if f["id"] == f"partner_handoff/handoff/{LEGACY}")
    assert handoff["severity"] == "high" and handoff["accepted_by"] == "procedure"
    assert "Step 2 adds the catch-all account to the Exchange administrator role" in handoff["accepted"]
    for finding in findings:  # every critical or high one is accepted, each with its reason
        if finding["severity"] in ("critical", "high"):
            assert finding["accepted"], finding
    assert m365(sim.url, "status", "--fail-on", "high").code == ExitCode.OK
    text = m365(sim.url, "-o", "markdown", "status").stdout
    assert "accepted by the procedure: the documented procedure" in text


def test_an_unaccepted_critical_finding_fails_status_until_the_config_accepts_it(tmp_path: Path) -> None:
    # The example config names another catch-all; the retired route's account is a leftover, not required.
    base = EXAMPLE.read_text(encoding="utf-8").replace(LEGACY, "archive-intake@contoso.onmicrosoft.com")
    base += f'\n[connector]\nlegacy_catchall = ["{LEGACY}"]\n' if "[connector]" not in base else ""
    config = tmp_path / "m365archive.toml"
    config.write_text(base, encoding="utf-8")
    with simulated_tenant("legacy-leftovers", time_scale=0.001) as sim:
        failing = m365(sim.url, "status", "--fail-on", "critical", config=config)
        assert failing.code == ExitCode.FINDINGS, failing.stdout[-800:] + failing.stderr
        assert "not accepted risks" in failing.stdout + failing.stderr
        document = json.loads(m365(sim.url, "-o", "json", "status", config=config).stdout)
        critical = [f for f in document["data"]["findings"] if f["severity"] == "critical"]
        assert critical and not any(f["accepted"] for f in critical)
        accepted = base + "".join(
            f'\n[[accepted_risks]]\nid = "{f["id"]}"\nreason = "CAB-1234: partner offboarding in progress"\n'
            for f in critical
        )
        config.write_text(accepted, encoding="utf-8")
        passing = m365(sim.url, "status", "--fail-on", "critical", config=config)
        assert passing.code != ExitCode.FINDINGS, passing.stdout[-800:]
        text = m365(sim.url, "-o", "markdown", "status", config=config).stdout
        assert "accepted by the config: CAB-1234: partner offboarding in progress" in text
        assert sim.writes() == []
