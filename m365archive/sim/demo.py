"""`make demo`: the whole setup against a simulated tenant, with no tenant.

Starts the `fresh` scenario on 127.0.0.1, then runs the real command line against it:
a dry run with its change-ticket report, the apply, a second dry run (no changes) and status.
Everything it writes (the config it used, the report, the catch-all password file, the journal)
stays under ./demo/ (or --out DIR) and its paths are printed at the end.

    python -m m365archive.sim.demo [CONFIG] [--out DIR] [--time-scale X]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

from m365archive.sim.server import simulated_tenant


def demo_config() -> str:
    """The desired state the demo applies (package data, so an installed wheel has it too)."""
    return (resources.files("m365archive.sim") / "demo.toml").read_text(encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m m365archive.sim.demo", description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", type=Path, help="a desired-state file (default: the built-in demo one)")
    parser.add_argument("--out", type=Path, default=Path("demo"), help="where the outputs go (default: ./demo)")
    parser.add_argument(
        "--time-scale", type=float, default=0.02, help="simulated delays x this (default 0.02: minutes in seconds)"
    )
    args = parser.parse_args(argv)
    out: Path = args.out.resolve()
    home = out / "home"
    # A new simulated tenant each run: a journal from an earlier run would describe another tenant.
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    config = args.config.resolve() if args.config else out / "m365archive.toml"
    if not args.config:
        config.write_text(demo_config(), encoding="utf-8")
    report = out / "plan.md"
    password = out / "catchall.password"
    password.unlink(missing_ok=True)

    with simulated_tenant("fresh", time_scale=args.time_scale) as sim:
        state = sim.state
        print(f"Simulated tenant {state.domain} ({state.tenant_id}) at {sim.url}")
        print(
            f"  {len(state.users)} users, {len(state.mailboxes)} mailboxes, "
            + ", ".join(
                f"{s.sku_part_number} {state.consumed_units(s.sku_id)}/{s.enabled}" for s in state.skus.values()
            )
        )
        env = {**os.environ, "M365ARCHIVE_HOME": str(home), "M365ARCHIVE_SIM": sim.url, "COLUMNS": "120"}
        base = [sys.executable, "-m", "m365archive", "--config", str(config)]
        steps = [
            ("Dry run with a change-ticket report", [*base, "setup", "--dry-run", "--report", str(report)]),
            ("Apply", [*base, "setup", "--yes", "--password-file", str(password)]),
            ("Second dry run: nothing left to do", [*base, "setup", "--dry-run"]),
            ("Status", [*base, "status"]),
        ]
        for title, command in steps:
            print(f"\n=== {title}: m365archive {' '.join(command[5:])}", flush=True)
            code = subprocess.call(command, env=env)
            if command is steps[0][1] and report.exists():
                lines = report.read_text(encoding="utf-8").splitlines()
                print(f"(the report has {len(lines)} lines; its first lines:)")
                print("\n".join(lines[:12]))
            if code not in (0, 2):
                print(f"demo step failed with exit code {code}", file=sys.stderr)
                return code
        print(f"\nThe simulator answered {len(sim.requests)} requests, {len(sim.writes())} of them writes.")
    print("\nKept for you to read:")
    print(f"  desired state     {config}")
    print(f"  change ticket     {report}")
    print(f"  catch-all secret  {password}  (a simulated account's password)")
    print(f"  journal           {home / 'journal.sqlite3'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
