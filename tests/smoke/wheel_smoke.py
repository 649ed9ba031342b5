"""Smoke test of the installed wheel, run by `make smoke` (part of `make test`).

Run with the python of a fresh venv holding the wheel (not editable, with [sim]), from a directory
outside the source tree: what a new user gets from `pipx install 'm365archive[sim]'`.

    python wheel_smoke.py SOURCE_TREE

Checks: --version; the demo's whole flow (a dry run with its report, the apply, a dry run that
finds nothing, status) with its outputs kept and named; `sim serve` of every built-in scenario (the
source tree's list, so a scenario left out of the package fails) with a dry run against each.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# What a dry run may answer: in sync, changes pending, or a prerequisite the scenario lacks on purpose.
DRY_RUN_CODES = {0, 2, 7}


def cli(*args: str, env: dict[str, str], check: set[int] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("m365archive")), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    expected = check if check is not None else {0}
    if done.returncode not in expected:
        sys.exit(
            f"FAIL: m365archive {' '.join(args)} exited {done.returncode} (expected {sorted(expected)})\n"
            f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
    return done


def serve(scenario: str, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("m365archive")), "sim", "serve", "--scenario", scenario, "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("URL: "):
            return proc, line.removeprefix("URL: ").strip()
    proc.wait(10)
    assert proc.stderr is not None
    sys.exit(f"FAIL: sim serve --scenario {scenario} printed no URL (exit {proc.returncode}): {proc.stderr.read()}")


def config_for(url: str, demo_config: str, path: Path) -> str:
    """The demo's desired state moved to the simulated tenant's id, domain and cloud."""
    import httpx

    doc = httpx.get(url + "/", timeout=30).json()
    text = demo_config.replace("contoso.onmicrosoft.com", doc["domain"])
    text = text.replace('cloud = "global"', f'cloud = "{doc.get("cloud", "global")}"')
    text = re.sub(r'(?m)^id = "[^"]*"', f'id = "{doc["tenantId"]}"', text)
    path.write_text(text, encoding="utf-8")
    return str(path)


def main() -> int:
    source = Path(sys.argv[1]).resolve()
    started = time.monotonic()
    import m365archive
    from m365archive.sim.scenario import builtin_scenarios

    installed = Path(m365archive.__file__).resolve()
    if installed.is_relative_to(source):
        sys.exit(f"FAIL: imported m365archive from the source tree ({installed}), not the installed wheel")
    work = Path(tempfile.mkdtemp(prefix="m365archive-smoke-"))
    env = {**os.environ, "M365ARCHIVE_HOME": str(work / "home"), "NO_COLOR": "1", "COLUMNS": "120"}
    env.pop("M365ARCHIVE_SIM", None)

    version = cli("--version", env=env).stdout.strip()
    assert version == f"m365archive {m365archive.__version__}", version
    print(f"ok  {version} from {installed.parent}")

    expected = sorted(p.stem for p in (source / "m365archive" / "sim" / "scenarios").glob("*.toml"))
    assert builtin_scenarios() == expected, f"packaged scenarios {builtin_scenarios()} != source tree {expected}"

    # The demo's flow writes the demo config; every other step uses the same file.
    demo = subprocess.run(
        [sys.executable, "-m", "m365archive.sim.demo", "--out", str(work / "demo"), "--time-scale", "0.002"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if demo.returncode != 0:
        sys.exit(f"FAIL: the demo exited {demo.returncode}\n{demo.stdout[-3000:]}\n{demo.stderr[-2000:]}")
    for name in ("m365archive.toml", "plan.md", "catchall.password"):
        if not (work / "demo" / name).is_file():
            sys.exit(f"FAIL: the demo did not keep {name}\n{demo.stdout[-2000:]}")
        if str(work / "demo" / name) not in demo.stdout:
            sys.exit(f"FAIL: the demo did not print the path of {name}")
    if "In sync: every setting matches the desired state." not in demo.stdout:
        sys.exit(f"FAIL: after the demo's apply, status did not report in sync\n{demo.stdout[-3000:]}")
    print("ok  the demo's flow: dry run, apply, dry run, status; outputs kept and named")
    demo_config = (work / "demo" / "m365archive.toml").read_text(encoding="utf-8")

    # Every server starts at once (they idle between requests); the dry runs go two at a time.
    servers = {scenario: serve(scenario, env) for scenario in expected}

    def dry_run(scenario: str) -> str:
        url = servers[scenario][1]
        run_env = {**env, "M365ARCHIVE_HOME": str(work / scenario)}
        config = config_for(url, demo_config, work / f"{scenario}.toml")
        plan = cli("-c", config, "--sim", url, "-o", "json", "setup", "--dry-run", env=run_env, check=DRY_RUN_CODES)
        assert json.loads(plan.stdout)["command"] == "setup", plan.stdout[:200]
        return f"ok  sim serve --scenario {scenario}: dry run exit {plan.returncode}"

    try:
        with ThreadPoolExecutor(2) as pool:
            for line in pool.map(dry_run, expected):
                print(line)
    finally:
        for proc, _ in servers.values():
            proc.terminate()
        for proc, _ in servers.values():
            proc.wait(15)
    print(f"smoke test passed in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
