"""Issue 21: `m365archive steps` says where a tenant stands in the procedure, and the command it prints for
the next part, when run, moves that step forward."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from m365archive.result import ExitCode
from m365archive.sim.server import SimulatedTenant, simulated_tenant
from tests.clihelp import EXAMPLE, m365
from tests.test_consent import accept_consent
from tests.test_hybrid import HYBRID

TENANT = "6f1c2a4e-3b5d-4c7e-9f10-2a3b4c5d6e7f"
CATCHALL = "thirdpartydata@contoso.onmicrosoft.com"


def checklist(sim: SimulatedTenant, config: Path = EXAMPLE) -> dict[str, dict[str, Any]]:
    before = len(sim.writes())
    run = m365(sim.url, "-o", "json", "steps", config=config)
    assert run.code == ExitCode.OK, run.stdout + run.stderr
    assert len(sim.writes()) == before  # reads only
    return {item["key"]: item for item in json.loads(run.stdout)["data"]["items"]}


def states(items: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {key: item["state"] for key, item in items.items()}


def run_next(sim: SimulatedTenant, item: dict[str, Any], tmp_path: Path, config: Path = EXAMPLE) -> None:
    """Run the item's next command as printed (plus --yes: the session has no one to answer)."""
    argv = shlex.split(item["next_command"])
    assert argv[0] == "m365archive", item
    extra = ["--password-file", str(tmp_path / "pw")] if argv[1] == "setup" else []
    run = m365(sim.url, *argv[1:], "--yes", *extra, config=config)
    assert run.code == ExitCode.OK, run.stdout[-2000:] + run.stderr


def test_fresh_each_next_command_moves_its_step_forward(sim: SimulatedTenant, tmp_path: Path) -> None:
    items = checklist(sim)
    assert states(items) == {
        "step-1": "done",
        "step-2": "not started",
        "step-3": "not started",
        "step-4": "retired",
        "step-5": "retired",
    }
    assert [i["title"] for i in items.values()][1] == (
        "Step 2: Create and configure a third-party data mailbox in Microsoft 365"
    )
    assert items["step-2"]["next_command"] == "m365archive setup --step catchall-account --step catchall-mailbox"
    assert items["step-3"]["counts"]["left"] == 5 and items["step-3"]["counts"]["done"] == 0
    assert items["step-5"]["next_command"] == "m365archive consent grant"

    run_next(sim, items["step-2"], tmp_path)
    after = checklist(sim)
    assert after["step-2"]["state"] == "done" and after["step-2"]["next_command"] is None
    assert after["step-3"] == items["step-3"]  # the catch-all step changed nothing else
    assert after["step-4"]["next_command"] == "m365archive partner-info --out handoff.md"

    run_next(sim, after["step-3"], tmp_path)
    last = checklist(sim)
    assert last["step-3"]["state"] == "done" and last["step-3"]["counts"]["left"] == 0


def test_half_configured_counts_what_is_done_and_what_is_left(tmp_path: Path) -> None:
    with simulated_tenant("half-configured", time_scale=0.001) as sim:
        items = checklist(sim)
        assert items["step-2"]["state"] == "partly done"
        assert items["step-2"]["counts"] == {"settings": 10, "done": 7, "left": 3}
        step3 = items["step-3"]
        assert step3["state"] == "partly done"
        assert {k: step3["counts"][k] for k in ("done", "left", "not_applicable")} == {
            "done": 1,
            "left": 4,
            "not_applicable": 1,  # the shared mailbox
        }
        run_next(sim, step3, tmp_path)
        assert checklist(sim)["step-3"]["state"] == "done"
        run_next(sim, items["step-2"], tmp_path)
        assert checklist(sim)["step-2"]["state"] == "done"


def test_hybrid_waits_for_directory_sync_then_is_done(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "h.toml"
    cfg.write_text(HYBRID.read_text().replace("sync_timeout = 3600", "sync_timeout = 0.01"), encoding="utf-8")
    with simulated_tenant("hybrid", time_scale=0.001) as sim:
        monkeypatch.setenv("M365ARCHIVE_ONPREM_PASSWORD", sim.state.onprem_users["CONTOSO\\exadmin"])
        sim.state.knobs.dir_sync_delay = 10_000_000.0  # simulated seconds: no sync until the clock moves
        items = checklist(sim, cfg)
        assert items["step-3"]["state"] == "not started" and items["step-3"]["counts"]["left"] == 7
        run_next(sim, items["step-3"], tmp_path, cfg)
        waiting = checklist(sim, cfg)["step-3"]
        assert waiting["state"] == "partly done", waiting
        assert waiting["counts"]["waiting"] == 3 and waiting["counts"]["left"] == 0  # the synced users
        assert "waiting for directory sync" in waiting["left"]
        sim.state.clock.advance(20_000_000.0)
        assert checklist(sim, cfg)["step-3"]["state"] == "done"


def test_legacy_leftovers_show_the_clean_up_and_its_command_does_it(tmp_path: Path) -> None:
    purview = tmp_path / "purview.toml"
    purview.write_text(
        f'procedure = "purview-connector"\n\n[tenant]\nid = "{TENANT}"\n\n'
        f'[connector]\nlegacy_catchall = ["{CATCHALL}"]\n',
        encoding="utf-8",
    )
    with simulated_tenant("legacy-leftovers", time_scale=0.001) as sim:
        ews = checklist(sim)  # the retired procedure on this tenant: its steps 2 and 5 were done
        assert ews["step-2"]["state"] == "done" and ews["step-5"]["state"] == "done"
        items = checklist(sim, purview)
        assert list(items) == ["connector-readiness", "user-mailboxes", "connector-handoff", "cleanup"]
        assert items["user-mailboxes"]["state"] == "not applicable"
        assert items["connector-handoff"]["state"] == "manual"
        cleanup = items["cleanup"]
        assert cleanup["state"] in ("not started", "partly done") and cleanup["counts"]["left"] >= 3
        assert "1 more account(s) look like its catch-all" in cleanup["left"]  # bloomberg.archive, not touched
        run_next(sim, cleanup, tmp_path, purview)
        done = checklist(sim, purview)["cleanup"]
        assert done["state"] == "done" and done["next_command"] is None


def test_human_and_markdown_say_the_same(sim: SimulatedTenant) -> None:
    human = m365(sim.url, "steps")
    assert human.code == ExitCode.OK, human.stderr
    assert "[not started]   Step 2: Create and configure a third-party data mailbox in Microsoft 365" in human.stdout
    assert "next: m365archive setup --step user-mailboxes" in human.stdout
    assert "2024-12-30" in human.stdout.splitlines()[1]
    md = m365(sim.url, "-o", "markdown", "steps").stdout
    assert md.startswith("# m365archive steps")
    assert "| Step | State | What is left | Next command |" in md
    assert "| Step 4: Provide your partner with information | retired |" in md
    assert "`m365archive setup --step catchall-account --step catchall-mailbox`" in md


def test_step_5_consent_grant_as_printed_moves_it_to_done(sim: SimulatedTenant) -> None:
    item = checklist(sim)["step-5"]
    assert item["state"] == "retired" and item["next_command"] == "m365archive consent grant"
    argv = [*shlex.split(item["next_command"])[1:], "--no-browser", "--timeout", "30"]  # no browser in a test
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "m365archive", "--config", str(EXAMPLE), "--sim", sim.url, *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    try:
        assert proc.stdout is not None
        accept_consent(proc.stdout.readline().strip())  # the global administrator, on the printed page
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == ExitCode.OK, stdout + stderr
    assert checklist(sim)["step-5"]["state"] == "done"
