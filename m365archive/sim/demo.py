"""`make demo`: the whole setup against a simulated tenant, in about a minute, with no tenant.

Starts the `fresh` scenario on 127.0.0.1, then runs the real command line against it:
a dry run with its change-ticket report, the apply, a second dry run (no changes) and status.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from m365archive.sim.server import simulated_tenant

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "m365archive.toml"


def main() -> int:
    config = Path(sys.argv[1]) if len(sys.argv) > 1 else EXAMPLE
    with (
        tempfile.TemporaryDirectory(prefix="m365archive-demo-") as tmp,
        simulated_tenant("fresh", time_scale=0.02) as sim,
    ):
        state = sim.state
        print(f"Simulated tenant {state.domain} ({state.tenant_id}) at {sim.url}")
        print(
            f"  {len(state.users)} users, {len(state.mailboxes)} mailboxes, "
            + ", ".join(
                f"{s.sku_part_number} {state.consumed_units(s.sku_id)}/{s.enabled}" for s in state.skus.values()
            )
        )
        env = {**os.environ, "M365ARCHIVE_HOME": tmp, "M365ARCHIVE_SIM": sim.url, "COLUMNS": "120"}
        report = Path(tmp) / "plan.md"
        base = [sys.executable, "-m", "m365archive", "--config", str(config)]
        steps = [
            ("Dry run with a change-ticket report", [*base, "setup", "--dry-run", "--report", str(report)]),
            ("Apply", [*base, "setup", "--yes", "--password-file", str(Path(tmp) / "catchall.password")]),
            ("Second dry run: nothing left to do", [*base, "setup", "--dry-run"]),
            ("Status", [*base, "status"]),
        ]
        for title, command in steps:
            print(f"\n=== {title}: m365archive {' '.join(command[5:])}", flush=True)
            code = subprocess.call(command, env=env)
            if title.startswith("Dry run") and report.exists():
                print(
                    f"(the report has {len(report.read_text(encoding='utf-8').splitlines())} lines; its first lines:)"
                )
                print("\n".join(report.read_text(encoding="utf-8").splitlines()[:12]))
            if code not in (0, 2):
                print(f"demo step failed with exit code {code}", file=sys.stderr)
                return code
        writes = len(sim.writes())
        print(f"\nThe simulator answered {len(sim.requests)} requests, {writes} of them writes.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
