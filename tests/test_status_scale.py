"""`status` at scale: a summary above a threshold, --drift-only, --limit (#17). Timings are in make bench."""

from __future__ import annotations

import json
from pathlib import Path

from m365archive.cli.status_cmd import SUMMARY_ABOVE, SUMMARY_ROWS
from m365archive.result import ExitCode
from m365archive.sim.server import SimulatedTenant, simulated_tenant
from tests.clihelp import m365
from tests.test_scale import config, generated


def test_large_status_is_a_summary_unless_asked_for_every_row(tmp_path: Path) -> None:
    with simulated_tenant(generated(600)) as sim:
        cfg = config(tmp_path)
        summary = m365(sim.url, "status", config=cfg)
        assert summary.code == ExitCode.CHANGES, summary.stderr
        doc = json.loads(m365(sim.url, "-o", "json", "status", config=cfg).stdout)
        total = doc["data"]["summary"]["in_sync"] + doc["data"]["summary"]["drift"]
        assert total > SUMMARY_ABOVE  # the threshold is crossed
        assert "more (--limit 0 shows every row)" in summary.stdout
        everything = m365(sim.url, "status", "--limit", "0", config=cfg)
        assert "more (--limit" not in everything.stdout
        assert len(summary.stdout.splitlines()) < len(everything.stdout.splitlines()) / 4
        for upn in sorted({s["target"] for s in doc["data"]["settings"] if s["state"] == "drift"})[SUMMARY_ROWS:][:5]:
            assert upn in everything.stdout


def test_drift_only_and_limit(sim: SimulatedTenant, tmp_path: Path) -> None:
    doc = json.loads(m365(sim.url, "-o", "json", "status", "--drift-only").stdout)
    assert doc["data"]["settings"] and {s["state"] for s in doc["data"]["settings"]} == {"drift"}
    assert doc["data"]["summary"]["in_sync"] > 0  # the summary still counts what is in sync
    human = m365(sim.url, "status", "--drift-only", "--limit", "1")
    assert human.code == ExitCode.CHANGES
    assert "│ in sync" not in human.stdout  # no in-sync rows
    assert "more (--limit 0 shows every row)" in human.stdout
