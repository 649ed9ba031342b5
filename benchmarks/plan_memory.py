"""`make bench-plan`: only the read-only plan part of `make bench`, at one or more tenant sizes.

    BENCH_PLAN_SIZES=20000,100000 .venv/bin/python -m benchmarks.plan_memory

For each size: a generated simulated tenant (the same scenario and config as `make bench`), then
`m365archive setup --dry-run` in its own process; prints the tool's peak RSS, its wall time, the
number of requests and the exit code, one JSON line per size. Nothing is appended to RESULTS.md.

BENCH_MEMRAY=DIR also records each run with memray (a dev tool: `pip install memray`) into
DIR/plan-N.bin; `memray stats --peak`/`memray tree` on it show what is alive at the peak.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.run import config, read_log, run_tool, scenario, simulator


def plan_once(tmp: Path, env: dict[str, str], users: int) -> dict[str, Any]:
    cfg = config(tmp / "m365archive.toml")
    log = tmp / f"plan-{users}.log"
    prefix: list[str] = []
    memray_dir = os.environ.get("BENCH_MEMRAY")
    with simulator(scenario(tmp / f"plan-{users}.json", users), log) as url:
        args = ["--sim", url, "--config", str(cfg), "setup", "--dry-run"]
        if memray_dir:
            out = Path(memray_dir) / f"plan-{users}.bin"
            out.unlink(missing_ok=True)
            prefix = ["-m", "memray", "run", "--trace-python-allocators", "-q", "-o", str(out)]
        wall, rss, code, tail = run_tool(args, env, prefix=prefix)
        requests = len(read_log(log))
    row: dict[str, Any] = {"users": users, "peak_rss_mb": rss, "wall_s": round(wall, 1), "requests": requests}
    row["exit_code"] = code
    if code != 0:
        row["tail"] = tail[-500:]
    return row


def main() -> int:
    sizes = [int(n) for n in os.environ.get("BENCH_PLAN_SIZES", "20000,100000").split(",") if n]
    with tempfile.TemporaryDirectory(prefix="m365archive-bench-plan-") as tmp_name:
        tmp = Path(tmp_name)
        env = {**os.environ, "M365ARCHIVE_HOME": str(tmp / "home"), "NO_COLOR": "1", "COLUMNS": "120"}
        for users in sizes:
            print(json.dumps(plan_once(tmp, env, users)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
