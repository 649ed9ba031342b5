"""Issue 4 at scale on the simulator: resumable after SIGKILL, converges under faults and throttling."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from m365archive.sim.scenario import build_state
from m365archive.sim.server import SimulatedTenant, simulated_tenant
from tests.clihelp import EXAMPLE, m365

TENANT = "6f1c2a4e-3b5d-4c7e-9f10-2a3b4c5d6e7f"


def generated(users: int, **knobs: Any):  # type: ignore[no-untyped-def]
    return build_state(
        {
            "tenant": {"id": TENANT, "domain": "contoso.onmicrosoft.com"},
            "skus": [{"part_number": "EXCHANGEENTERPRISE", "enabled": 10}],
            "generate": {"users": users, "seed": 3},
            "knobs": {"time_scale": 0.001, **knobs},
        }
    )


def config(tmp_path: Path) -> Path:
    cfg = tmp_path / "m365archive.toml"
    cfg.write_text(EXAMPLE.read_text().replace("compliance.officer@", "admin@"), encoding="utf-8")
    return cfg


def setup_command(sim: SimulatedTenant, tmp_path: Path) -> tuple[list[str], dict[str, str]]:
    """`m365archive setup --yes` against `sim` as a separate process (to be killed or interrupted)."""
    env = {**os.environ, "M365ARCHIVE_HOME": str(tmp_path / "home"), "NO_COLOR": "1"}
    cmd = [sys.executable, "-m", "m365archive", "--sim", sim.url, "--config", str(config(tmp_path)),
           "setup", "--yes", "--password-file", str(tmp_path / "pw")]  # fmt: skip
    return cmd, env


def sent_cmdlets(entries: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(cmdlet, identity) of every Exchange write in these request-log entries."""
    out = []
    for entry in entries:
        if entry.get("service") != "exchange":
            continue
        body = entry.get("body") or {}
        inputs = [r.get("body", {}).get("CmdletInput", {}) for r in body.get("requests", [])] or [
            body.get("CmdletInput", {})
        ]
        for cmd in inputs:
            name = str(cmd.get("CmdletName", ""))
            if name and not name.startswith("Get-"):
                out.append((name, str(cmd.get("Parameters", {}).get("Identity", ""))))
    return out


def kill_when_held(sim: SimulatedTenant, cmd: list[str], env: dict[str, str], count: int) -> None:
    """Run `cmd`; SIGKILL it once `count` mailboxes are on hold (the requests already on the server finish there)."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(held(sim)) < count and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed; slow the simulator down"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)


def held(sim: SimulatedTenant) -> set[str]:
    with sim.state.lock:
        return {
            sim.state.users[m.user_id].user_principal_name
            for m in sim.state.mailboxes.values()
            if m.litigation_hold_enabled
        }


@pytest.mark.slow
def test_a_run_killed_halfway_resumes_without_resending_completed_changes(tmp_path: Path) -> None:
    state = generated(3000, exchange_latency_ms=(10.0, 30.0), exchange_rate=600.0, exchange_burst=50)
    with simulated_tenant(state) as sim:
        cmd, env = setup_command(sim, tmp_path)
        kill_when_held(sim, cmd, env, 1000)
        cut = len(sim.requests)
        done_before = held(sim)
        assert 1000 <= len(done_before) < 2900

        rerun = m365(sim.url, "setup", "--yes", "--password-file", str(tmp_path / "pw"), config=config(tmp_path))
        assert rerun.code == 0, rerun.stdout[-3000:] + rerun.stderr
        resent = [(c, i) for c, i in sent_cmdlets(sim.requests[cut:]) if i in done_before and c == "Set-Mailbox"]
        assert resent == [], resent[:5]
        user_mailboxes = [m for m in sim.state.mailboxes.values() if m.recipient_type_details == "UserMailbox"]
        assert all(m.archive_status == "Active" for m in user_mailboxes)
        assert m365(sim.url, "status", config=config(tmp_path)).code == 0


@pytest.mark.slow
def test_faults_and_throttling_storms_converge_with_nothing_lost_or_applied_twice(tmp_path: Path) -> None:
    state = generated(
        2000,
        fault_rate=0.05,
        fault_kinds=("503", "504", "reset"),
        exchange_rate=800.0,
        exchange_burst=20,
        exchange_concurrency=4,
        exchange_latency_ms=(2.0, 8.0),
    )
    with simulated_tenant(state) as sim:
        run = m365(sim.url, "setup", "--yes", "--password-file", str(tmp_path / "pw"), config=config(tmp_path))
        assert run.code == 0, run.stdout[-3000:] + run.stderr
        faults = sum(1 for e in sim.requests if e.get("fault"))
        throttled = sum(1 for e in sim.requests if e.get("status") == 429)
        assert faults >= 20 and throttled + sim.load.faults.injected > 0
        user_mailboxes = [m for m in sim.state.mailboxes.values() if m.recipient_type_details == "UserMailbox"]
        holdable = [m for m in user_mailboxes if sim.state.user_allows_hold(sim.state.users[m.user_id])]
        assert all(m.archive_status == "Active" for m in user_mailboxes)  # nothing lost
        assert all(m.litigation_hold_enabled for m in holdable)
        assert len(holdable) > 1800
        assert max(sim.state.transitions.values()) == 1  # nothing applied twice
        assert sum(1 for k in sim.state.transitions if k.startswith("Archive:")) == len(user_mailboxes)
        sim.load.faults.rate = 0.0
        plan = tmp_path / "again.json"
        again = m365(sim.url, "setup", "--dry-run", "--plan-out", str(plan), config=config(tmp_path))
        assert again.code == 0
        assert '"action": "update"' not in plan.read_text() and '"action": "create"' not in plan.read_text()
