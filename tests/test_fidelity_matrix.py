"""Issue 12's matrix: every scenario x procedure against the strict simulator (regional S&C host, batches
that stop without continue-on-error, path-qualified roles, ambiguous built-in group names, anchor checks;
each tenant's Exchange Online redirected to its own host, as ScubaGear says some are) converges, and a
second run plans nothing; no-seats fails cleanly before any write. The request-log check
(tests/conftest.py) reads every request each run sent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from m365archive.result import ExitCode
from m365archive.sim.server import simulated_tenant
from tests.clihelp import EXAMPLE, m365
from tests.test_hybrid import HYBRID
from tests.test_purview import PARTNER, write_config

SCENARIOS = ["fresh", "half-configured", "hybrid", "legacy-leftovers", "no-seats"]
# Pairs another test already runs end to end against the same strict simulator (kept out to save time):
COVERED = {
    ("fresh", "partner-ews"): "tests/test_setup.py::test_fresh_converges_then_plans_nothing_and_status_tracks_drift",
    ("hybrid", "partner-ews"): "tests/test_hybrid.py::test_with_onprem_setup_converges_through_directory_sync",
    ("no-seats", "partner-ews"): "tests/test_setup.py::test_no_seats_is_a_clear_error_before_any_write",
    ("fresh", "purview-connector"): "tests/test_purview.py::test_fresh_converges_then_plans_nothing",
}
PAIRS = [(s, p) for s in SCENARIOS for p in ("partner-ews", "purview-connector") if (s, p) not in COVERED]


def test_the_pairs_left_out_are_covered_elsewhere() -> None:
    from tests.test_fidelity_doc import named_test_exists

    assert all(named_test_exists(ref) for ref in COVERED.values())
    assert len(PAIRS) + len(COVERED) == len(SCENARIOS) * 2


def _config(procedure: str, scenario: str, tmp_path: Path) -> Path:
    if procedure == "purview-connector":
        return write_config(tmp_path, PARTNER)
    return HYBRID if scenario == "hybrid" else EXAMPLE


@pytest.mark.parametrize(("scenario", "procedure"), PAIRS)
def test_every_scenario_converges_and_plans_nothing_the_second_time(
    scenario: str, procedure: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(procedure, scenario, tmp_path)
    with simulated_tenant(scenario, time_scale=0.001, exchange_redirect="contoso01") as sim:
        if scenario == "hybrid":
            monkeypatch.setenv("M365ARCHIVE_ONPREM_PASSWORD", sim.state.onprem_users["CONTOSO\\exadmin"])
        applied = m365(sim.url, "setup", "--yes", "--password-file", str(tmp_path / "pw"), config=config)
        assert applied.code == ExitCode.OK, applied.stdout + applied.stderr
        sim.state.clock.advance(sim.state.knobs.dir_sync_delay + 1)  # hybrid: directory sync has run
        sim.log.clear()
        again = m365(sim.url, "--output", "json", "setup", "--dry-run", "--detailed-exitcode", config=config)
        pending = [c for c in json.loads(again.stdout)["data"]["changes"] if c["action"] != "no-op"]
        assert again.code == ExitCode.OK and not pending, pending
        assert sim.writes() == []
