"""Every documented exit code that no other test file pins (README "Exit codes")."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from m365archive.result import ExitCode
from m365archive.sim.server import simulated_tenant
from tests.clihelp import EXAMPLE, m365
from tests.keyrings import MemoryKeyring
from tests.test_scale import config, generated, held, setup_command

TENANT = "6f1c2a4e-3b5d-4c7e-9f10-2a3b4c5d6e7f"


def test_exit_codes_are_stable() -> None:
    assert {c.name: int(c) for c in ExitCode} == {
        "OK": 0,
        "ERROR": 1,
        "CHANGES": 2,
        "ABSENT": 3,
        "USAGE": 4,
        "AUTH": 5,
        "STALE_PLAN": 6,
        "PREREQUISITE": 7,
        "PARTIAL": 8,
        "TIMEOUT": 9,
        "NO_SECRET_STORE": 10,
        "LOCKED": 11,
        "PLAN_MISMATCH": 12,
        "FINDINGS": 13,
        "INTERRUPTED": 130,
    }


def test_unreachable_simulator_is_error_1_in_one_line() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = m365(f"http://127.0.0.1:{port}", "status")
    assert run.code == ExitCode.ERROR
    assert run.stderr.startswith("error: no simulated tenant answers at") and "Traceback" not in run.stderr


def test_exchange_failing_throughout_apply_is_partial_8(tmp_path: Path) -> None:
    with simulated_tenant(
        "fresh",
        time_scale=0.001,
        fault_rate=1.0,
        fault_kinds=("503",),
        fault_after_commit=False,
        fault_methods=(f"POST /adminapi/beta/{TENANT}/$batch",),
    ) as sim:
        run = m365(sim.url, "setup", "--yes", "--password-file", str(tmp_path / "pw"), config=config(tmp_path))
        assert run.code == ExitCode.PARTIAL, run.stdout[-2000:] + run.stderr
        assert "Apply partial" in run.stdout and "not confirmed" in run.stdout
        assert sim.state.user_by_upn("thirdpartydata@contoso.onmicrosoft.com") is not None  # Graph part done


def test_ctrl_c_stops_after_in_flight_requests_with_130(tmp_path: Path) -> None:
    state = generated(3000, exchange_latency_ms=(10.0, 30.0), exchange_rate=500.0, exchange_burst=50)
    with simulated_tenant(state) as sim:
        cmd, env = setup_command(sim, tmp_path)
        out_file, err_file = tmp_path / "out.txt", tmp_path / "err.txt"
        with out_file.open("w") as out_handle, err_file.open("w") as err_handle:
            proc = subprocess.Popen(cmd, env=env, stdout=out_handle, stderr=err_handle, text=True)
            deadline = time.monotonic() + 120
            while len(held(sim)) < 300 and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.02)
            assert proc.poll() is None, "finished before Ctrl-C"
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=120)
        out, err = out_file.read_text(), err_file.read_text()
        assert proc.returncode == ExitCode.INTERRUPTED, out[-2000:] + err
        assert "stopping after the requests in flight" in err
        assert "Traceback" not in err
        assert len(held(sim)) < 2900  # it stopped rather than finishing


def test_config_errors_are_one_unwrapped_line_each_or_a_json_envelope(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "40")  # a narrow terminal must not split an error line
    bad = tmp_path / "bad.toml"
    text = EXAMPLE.read_text().replace('cloud = "global"', 'cloud = "mars"')
    bad.write_text(text.replace('upn = "thirdpartydata@', 'upn = "thirdpartydata-at-'), encoding="utf-8")
    human = m365(None, "status", config=bad)
    assert human.code == ExitCode.USAGE
    lines = human.stderr.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith(f"error: {bad}: ") for line in lines)
    as_json = m365(None, "--output", "json", "consent", "status", config=bad)
    doc = json.loads(as_json.stdout)
    assert (doc["command"], doc["status"], doc["exit_code"], len(doc["errors"])) == ("consent status", "error", 4, 2)


def test_every_applying_command_refuses_a_session_nobody_can_answer(
    tmp_path: Path, memory_keyring: MemoryKeyring
) -> None:
    cases = [
        (["setup"], "refusing to apply without confirmation", "add --yes to apply the plan shown above"),
        (["legacy", "cleanup"], "refusing to apply without confirmation", "add --yes to apply the plan shown above"),
        (["consent", "revoke"], "refusing to revoke without confirmation", "add --yes to delete the service principal"),
        (["credentials", "rotate"], "refusing to rotate without confirmation", "add --yes to reset the password"),
        (["partner-info", "--include-secret", "--out", str(tmp_path / "p.md")],
         "refusing to write the password without confirmation", "add --yes after reading the warning above"),
    ]  # fmt: skip
    with simulated_tenant("legacy-leftovers", time_scale=0.001) as sim:
        memory_keyring.set_password("m365archive", f"{TENANT}/thirdpartydata@contoso.onmicrosoft.com", "x" * 20)
        for args, message, hint in cases:
            run = m365(sim.url, *args)
            assert run.code == ExitCode.USAGE, (args, run.stdout[-500:], run.stderr)
            assert f"error: {message} in a non-interactive session" in run.stderr, args
            assert hint in run.stderr, args
        assert sim.writes() == []
        assert not (tmp_path / "p.md").exists()


def test_every_failure_reason_has_exactly_one_exit_code() -> None:
    from m365archive.cli.exits import FOR_REASON
    from m365archive.errors import Reason

    assert set(FOR_REASON) == set(Reason)
    assert len(set(FOR_REASON.values())) == len(Reason)  # no two reasons share a code
    for reason, code in FOR_REASON.items():
        assert code.name == reason.name  # the table in README "Exit codes" names both alike
