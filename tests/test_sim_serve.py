"""`m365archive sim serve`: prints its URL, serves the scenario, logs requests, stops on Ctrl-C."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from m365archive.result import ExitCode
from m365archive.sim.scenario import builtin_scenarios
from m365archive.sim.server import SimulatedTenant
from tests.clihelp import EXAMPLE, m365


def test_serve_prints_its_url_serves_the_tenant_logs_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "m365archive", "sim", "serve", "--scenario", "hybrid", "--generate-users", "50",
         "--seed", "4", "--time-scale", "0.001", "--request-log", str(log)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = ""
        printed = []
        for line in proc.stdout:
            printed.append(line)
            match = re.search(r"URL: (http://127\.0\.0\.1:\d+)", line)
            if match:
                url = match.group(1)
                break
        assert url, printed
        doc = httpx.get(url + "/", timeout=10).json()
        assert doc["domain"] == "contoso.onmicrosoft.com" and doc["services"]["graph"] == url + "/v1.0"
        assert doc["timeScale"] == 0.001
        assert any("users" in line and "with" in line for line in printed)
        status = m365(url, "status")  # the real CLI against the served tenant
        assert status.code in (ExitCode.OK, ExitCode.CHANGES), status.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert proc.returncode == 0
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert any(e["path"] == "/v1.0/users" for e in entries)
    assert any(e.get("cmdlet") == "Get-Mailbox" or "Get-Mailbox" in (e.get("cmdlets") or []) for e in entries)


def test_serve_refuses_an_unknown_scenario_in_one_line() -> None:
    run = m365(None, "sim", "serve", "--scenario", "no-such-tenant")
    assert run.code == ExitCode.USAGE
    assert "no scenario file or built-in scenario named 'no-such-tenant'" in run.stderr
    assert "Traceback" not in run.stderr
    assert f"(built-in: {', '.join(builtin_scenarios())})" in run.stderr
    assert {"fresh", "hybrid", "no-seats"} <= set(builtin_scenarios())


def test_serve_on_a_busy_port_is_one_line_with_exit_4(sim: SimulatedTenant) -> None:
    port = sim.url.rsplit(":", 1)[1]
    run = m365(None, "sim", "serve", "--port", port)
    assert run.code == ExitCode.USAGE
    assert run.stderr.splitlines()[0] == f"error: cannot serve on 127.0.0.1:{port}: Address already in use"
    assert "Traceback" not in run.stderr


def test_serve_given_a_config_file_says_it_is_not_a_scenario() -> None:
    run = m365(None, "sim", "serve", "--scenario", str(EXAMPLE))
    assert run.code == ExitCode.USAGE
    assert "is not a scenario file: unknown key(s)" in run.stderr
    assert "an m365archive config file? sim serve takes a scenario" in run.stderr
    assert len(run.stderr.splitlines()) == 1


def test_without_the_sim_extra_sim_commands_say_how_to_install_it() -> None:
    # A Python where uvicorn can't be imported: what `pipx install m365archive` (no [sim]) gives.
    code = "import sys; sys.modules['uvicorn'] = None; from m365archive.cli.main import run; run()"
    done = subprocess.run(
        [sys.executable, "-c", code, "sim", "serve"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == ExitCode.PREREQUISITE
    assert "error: the simulated tenant is an optional extra and uvicorn is not installed" in done.stderr
    assert "pipx install --force 'm365archive[sim]'" in done.stderr
    assert "Traceback" not in done.stderr
