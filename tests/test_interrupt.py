"""Ctrl-C during a long wait on the service stops promptly and journals the change in flight (#17)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from m365archive.result import ExitCode
from m365archive.sim.server import SimulatedTenant, simulated_tenant
from tests.clihelp import EXAMPLE


def licensed(sim: SimulatedTenant) -> bool:
    return any(entry["path"].endswith("/assignLicense") for entry in sim.writes())


def test_ctrl_c_during_a_300_second_mailbox_wait_returns_within_10_s_and_journals_it(tmp_path: Path) -> None:
    # Real time (time_scale 1): the catch-all's mailbox appears 300 s after its licence.
    # (no replication lag: this is about the mailbox wait; tests/test_retry.py stops the lag resends)
    with simulated_tenant("fresh", time_scale=1.0, mailbox_provisioning_delay=300.0, user_replication_delay=0.0) as sim:
        home = tmp_path / "home"
        env = {**os.environ, "M365ARCHIVE_HOME": str(home), "NO_COLOR": "1"}
        cmd = [sys.executable, "-m", "m365archive", "--sim", sim.url, "-c", str(EXAMPLE), "-v",
               "setup", "--yes", "--password-file", str(tmp_path / "pw")]  # fmt: skip
        err_file = tmp_path / "err.txt"
        with err_file.open("w") as err_handle:
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err_handle, text=True)
            deadline = time.monotonic() + 240
            while not licensed(sim) and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            assert proc.poll() is None, err_file.read_text()
            time.sleep(2)  # now waiting for the mailbox (it comes 300 s after the licence)
            interrupted = time.monotonic()
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
            took = time.monotonic() - interrupted
        err = err_file.read_text()
        assert proc.returncode == ExitCode.INTERRUPTED, err
        assert took < 10, f"Ctrl-C took {took:.1f} s"
        assert "Traceback" not in err
        with sqlite3.connect(home / "journal.sqlite3") as db:
            rows = db.execute("SELECT setting, outcome, detail FROM changes WHERE outcome='interrupted'").fetchall()
        assert rows, "the change in flight was not journaled"
        assert all(detail.startswith("sent; stopped (Ctrl-C) while waiting") for _, _, detail in rows)
