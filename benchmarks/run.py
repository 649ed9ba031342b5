"""`make bench`: performance targets, measured in one run on this machine.

  1. `m365archive --help` wall time (target < 0.3 s).
  2. User mailboxes at scale (default 10,000; BENCH_USERS up to 100,000) on a simulated tenant
     with 50-150 ms per Exchange call and a throttle budget:
       (a) the naive baseline: a serial Get-Mailbox + Enable-Mailbox + Set-Mailbox loop per
           mailbox, like a PowerShell script (measured on BENCH_NAIVE_SAMPLE mailboxes and
           extrapolated linearly: it is latency-bound, one mailbox after another);
       (b) `m365archive setup --yes`.
     Wall time, HTTP requests per mailbox change, peak RSS of the tool, and the ratio of its
     time to the throttle-bound limit (changes / allowed cmdlet rate).
  3. A read-only plan over BENCH_PLAN_USERS (default 100,000) mailboxes: requests and peak RSS.
  5. `status` over BENCH_STATUS_USERS (default 20000,100000) mailboxes of an unconfigured tenant (drift
     everywhere, the most output): human summary, every row (--limit 0) and -o markdown; lines and time.
  4. The simulated tenant at BENCH_PLAN_USERS: time to generate and start it, and to page every
     mailbox (Exchange Get-Mailbox) and every user (Graph /users) through the real clients.
  6. `verify` over BENCH_VERIFY_USERS (default 10,000; 0 skips) mailboxes receiving two sources (one gone
     silent), with the same latency and throttle budget as 2: wall time, HTTP requests per mailbox
     (target <= 0.11), peak RSS, ratio to the throttle-bound limit. `BENCH_ONLY=verify` runs only this part.
  7. `capture` of BENCH_CAPTURE_USERS (default 100000; 0 skips) mailboxes: wall time, peak RSS of the
     tool (target < 500 MB), requests, writes (must be 0), the file's size, and the time the simulator
     takes to load the twin. `BENCH_ONLY=capture` runs only this part.

Simulator and tool run in separate processes, so each RSS is its own. Results are printed
and appended to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
TENANT = "6f1c2a4e-3b5d-4c7e-9f10-2a3b4c5d6e7f"
DOMAIN = "contoso.onmicrosoft.com"
USERS = int(os.environ.get("BENCH_USERS", "10000"))
NAIVE_SAMPLE = int(os.environ.get("BENCH_NAIVE_SAMPLE", "150"))
PLAN_USERS = int(os.environ.get("BENCH_PLAN_USERS", "100000"))
RATE = float(os.environ.get("BENCH_RATE", "400"))  # cmdlets per second per tenant
BURST = int(os.environ.get("BENCH_BURST", "100"))
CONCURRENCY_CAP = int(os.environ.get("BENCH_CONCURRENCY_CAP", "12"))
EXCHANGE_LATENCY = (50.0, 150.0)
CAPTURE_USERS = int(os.environ.get("BENCH_CAPTURE_USERS", "100000"))


def scenario(path: Path, users: int, **knobs: Any) -> Path:
    data = {
        "tenant": {"id": TENANT, "domain": DOMAIN, "signed_in_user": f"admin@{DOMAIN}"},
        "skus": [{"part_number": "EXCHANGEENTERPRISE", "enabled": 10}],
        "generate": {"users": users, "seed": 7},
        "knobs": {"time_scale": 0.001, "mailbox_provisioning_delay": 60.0, **knobs},
    }
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def config(path: Path) -> Path:
    text = (ROOT / "examples" / "m365archive.toml").read_text(encoding="utf-8")
    text = text.replace("max_concurrency = 8", "max_concurrency = 16").replace("compliance.officer@", "admin@")
    path.write_text(text, encoding="utf-8")
    return path


@contextmanager
def simulator(scenario_file: Path, log: Path) -> Iterator[str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "m365archive",
            "sim",
            "serve",
            "--scenario",
            str(scenario_file),
            "--request-log",
            str(log),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    url = ""
    for line in proc.stdout:
        match = re.search(r"URL: (\S+)", line)
        if match:
            url = match.group(1)
            break
    try:
        if not url:
            raise RuntimeError("the simulator did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def run_tool(
    args: list[str], env: dict[str, str], lines: list[int] | None = None, prefix: list[str] | None = None
) -> tuple[float, int, int, str]:
    """(wall seconds, peak RSS in MB, exit code, output tail) of one m365archive process; `lines` gets
    the number of lines it printed; `prefix` goes between the interpreter and `-m benchmarks.measure`
    (a profiler's `-m memray run -o FILE`)."""
    rss_file = Path(env["M365ARCHIVE_HOME"]) / f"rss-{time.time_ns()}"
    Path(env["M365ARCHIVE_HOME"]).mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, *(prefix or []), "-m", "benchmarks.measure", *args],
        env={**env, "BENCH_RSS_FILE": str(rss_file)},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wall = time.perf_counter() - started
    rss = int(rss_file.read_text(encoding="utf-8")) // 1024 if rss_file.exists() else -1
    if lines is not None:
        lines.append(proc.stdout.count("\n"))
    return wall, rss, proc.returncode, proc.stdout[-2000:]


def read_log(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def token(url: str, aud: str) -> str:
    from m365archive.tenant.simcredential import SimulatorCredential, token_url

    return SimulatorCredential(token_url(url, TENANT)).get_token(f"{aud}/.default").token


def bench_help() -> dict[str, Any]:
    times = []
    for _ in range(7):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "m365archive", "--help"], capture_output=True, check=True, cwd=ROOT)
        times.append(time.perf_counter() - started)
    bare = []
    for _ in range(5):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], capture_output=True, check=True)
        bare.append(time.perf_counter() - started)
    return {
        "help_median_s": statistics.median(times),
        "help_min_s": min(times),
        "python_startup_s": statistics.median(bare),
    }


def naive_loop(url: str, sample: int) -> dict[str, Any]:
    """What a PowerShell script does: for each mailbox, read it, enable the archive, set the hold."""
    headers = {"Authorization": f"Bearer {token(url, 'https://outlook.office365.com')}"}
    endpoint = f"{url}/adminapi/beta/{TENANT}/InvokeCommand"

    def call(client: httpx.Client, name: str, params: dict[str, Any]) -> dict[str, Any]:
        while True:
            r = client.post(endpoint, json={"CmdletInput": {"CmdletName": name, "Parameters": params}})
            if r.status_code == 429:
                time.sleep(float(r.headers.get("Retry-After", "1")))
                continue
            return dict(r.json())

    with httpx.Client(headers=headers, timeout=60) as client:
        listing = call(client, "Get-Mailbox", {"ResultSize": sample * 2, "RecipientTypeDetails": "UserMailbox"})
        upns = [m["UserPrincipalName"] for m in listing["value"]][:sample]
        started = time.perf_counter()
        for upn in upns:
            call(client, "Get-Mailbox", {"Identity": upn})
            call(client, "Enable-Mailbox", {"Identity": upn, "Archive": True})
            call(client, "Set-Mailbox", {"Identity": upn, "LitigationHoldEnabled": True})
        elapsed = time.perf_counter() - started
    return {"sample": len(upns), "seconds": elapsed, "per_mailbox_s": elapsed / max(len(upns), 1)}


def count_plan(url: str, cfg: Path, env: dict[str, str], tmp: Path) -> int:
    plan_file = tmp / f"plan-{time.time_ns()}.json"
    run_tool(["--sim", url, "--config", str(cfg), "setup", "--dry-run", "--plan-out", str(plan_file)], env)
    doc = json.loads(plan_file.read_text(encoding="utf-8"))
    return sum(1 for c in doc["changes"] if c["action"] != "no-op")


def bench_scale(tmp: Path, env: dict[str, str]) -> dict[str, Any]:
    cfg = config(tmp / "m365archive.toml")
    knobs = {
        "exchange_latency_ms": list(EXCHANGE_LATENCY),
        "latency_ms": [10.0, 30.0],
        "exchange_rate": RATE,
        "exchange_burst": BURST,
        "exchange_concurrency": CONCURRENCY_CAP,
    }
    out: dict[str, Any] = {"users": USERS, "rate": RATE, "burst": BURST, "concurrency_cap": CONCURRENCY_CAP}
    with simulator(scenario(tmp / "naive.json", max(NAIVE_SAMPLE * 3, 500), **knobs), tmp / "naive.log") as url:
        out["naive"] = naive_loop(url, NAIVE_SAMPLE)
    log = tmp / "scale.log"
    with simulator(scenario(tmp / "scale.json", USERS, **knobs), log) as url:
        changes = count_plan(url, cfg, env, tmp)
        before = len(read_log(log))
        wall, rss, code, tail = run_tool(
            ["--sim", url, "--config", str(cfg), "setup", "--yes", "--password-file", str(tmp / "pw")], env
        )
        entries = read_log(log)[before:]
        after = count_plan(url, cfg, env, tmp)
    exchange_writes = sum(
        len(e.get("cmdlets") or [e.get("cmdlet")])
        for e in entries
        if e.get("service") == "exchange"
        and e.get("status") == 200
        and any(not str(c).startswith("Get-") for c in (e.get("cmdlets") or [e.get("cmdlet")]))
    )
    mailboxes_changed = USERS  # every generated user mailbox needs something in a fresh tenant
    naive_total = out["naive"]["per_mailbox_s"] * mailboxes_changed
    bound = changes / RATE
    out.update(
        {
            "changes": changes,
            "exit_code": code,
            "wall_s": wall,
            "peak_rss_mb": rss,
            "requests": len(entries),
            "requests_per_change": len(entries) / max(changes, 1),
            "exchange_cmdlets_sent_ok": exchange_writes,
            "naive_extrapolated_s": naive_total,
            "speedup_vs_naive": naive_total / wall,
            "throttle_bound_s": bound,
            "ratio_to_bound": wall / bound,
            "changes_after": after,
        }
    )
    if code != 0:
        out["tail"] = tail
    return out


def bench_plan(tmp: Path, env: dict[str, str]) -> dict[str, Any]:
    cfg = config(tmp / "m365archive.toml")
    log = tmp / "plan.log"
    with simulator(scenario(tmp / "plan.json", PLAN_USERS), log) as url:
        before = len(read_log(log))
        wall, rss, code, _tail = run_tool(["--sim", url, "--config", str(cfg), "setup", "--dry-run"], env)
        entries = read_log(log)[before:]
    writes = [  # the simulator's token endpoint (a POST) is sign-in, not a write to the tenant
        e
        for e in entries
        if e["method"] != "GET"
        and not e["path"].endswith(("InvokeCommand", "$batch"))
        and not e["path"].endswith("/oauth2/v2.0/token")
    ]
    return {
        "users": PLAN_USERS,
        "wall_s": wall,
        "requests": len(entries),
        "peak_rss_mb": rss,
        "exit_code": code,
        "graph_writes": len(writes),
    }


def bench_status(tmp: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    """`status` at scale: the default (a summary above 1,000 settings), every row, and Markdown."""
    cfg = config(tmp / "m365archive.toml")
    out = []
    for users in [int(n) for n in os.environ.get("BENCH_STATUS_USERS", "20000,100000").split(",") if n]:
        row: dict[str, Any] = {"users": users}
        with simulator(scenario(tmp / f"status-{users}.json", users), tmp / f"status-{users}.log") as url:
            runs = [("summary", []), ("markdown", ["-o", "markdown"])]
            if users <= 20_000:  # every row of 100,000 mailboxes is a terminal nobody reads; it takes minutes
                runs.insert(1, ("every_row", ["--limit", "0"]))
            for name, extra in runs:
                counted: list[int] = []
                wall, rss, code, _tail = run_tool(["--sim", url, "--config", str(cfg), "status", *extra], env, counted)
                row[name] = {"wall_s": round(wall, 1), "lines": counted[0], "peak_rss_mb": rss, "exit_code": code}
        out.append(row)
        print(json.dumps(row), flush=True)
    return out


def bench_sim_paging() -> dict[str, Any]:
    """Generate and start a BENCH_PLAN_USERS tenant, then page all of it through the product's clients."""
    import asyncio

    from m365archive.sim.scenario import build_state
    from m365archive.sim.server import simulated_tenant
    from m365archive.tenant.exchange import Cmdlet
    from m365archive.tenant.exchange_rest import RestExchangeRunner
    from m365archive.tenant.graph import GraphGateway
    from m365archive.tenant.simcredential import AsyncSimulatorCredential, token_url

    started = time.perf_counter()
    state = build_state({"tenant": {"id": TENANT, "domain": DOMAIN}, "generate": {"users": PLAN_USERS, "seed": 7}})
    with simulated_tenant(state, time_scale=0.001) as sim:
        start_s = time.perf_counter() - started
        credential = AsyncSimulatorCredential(token_url(sim.url, state.tenant_id))

        async def mailboxes() -> int:
            runner = RestExchangeRunner(
                sim.url, state.tenant_id, credential, scope="https://outlook.office365.com/.default"
            )
            try:
                return sum(
                    [len(page) async for page in runner.pages(Cmdlet("Get-Mailbox", {"ResultSize": "Unlimited"}))]
                )
            finally:
                await runner.aclose()

        async def users() -> int:
            gateway = GraphGateway(sim.url + "/v1.0", credential, scopes=["https://graph.microsoft.com/.default"])
            try:
                return sum(
                    [len(page) async for page in gateway.iter_users(select=["id", "userPrincipalName"], page_size=999)]
                )
            finally:
                await gateway.aclose()

        at = time.perf_counter()
        mailbox_count = asyncio.run(mailboxes())
        exchange_s = time.perf_counter() - at
        at = time.perf_counter()
        user_count = asyncio.run(users())
        graph_s = time.perf_counter() - at
    return {
        "users": PLAN_USERS,
        "start_s": round(start_s, 2),
        "exchange_mailboxes": mailbox_count,
        "exchange_paging_s": round(exchange_s, 2),
        "graph_users": user_count,
        "graph_paging_s": round(graph_s, 2),
    }


def bench_faults(tmp: Path, env: dict[str, str]) -> dict[str, Any]:
    """5% faults (503, 504, resets) and throttling storms at BENCH_FAULT_USERS mailboxes (default 10,000).

    The simulator runs in this process so its state can be read afterwards: every mailbox converged
    (nothing lost) and every setting changed exactly once (nothing applied twice).
    """
    from m365archive.sim.scenario import load_scenario
    from m365archive.sim.server import simulated_tenant

    users = int(os.environ.get("BENCH_FAULT_USERS", "10000"))
    state = load_scenario(
        scenario(
            tmp / "faults.json",
            users,
            fault_rate=0.05,
            fault_kinds=["503", "504", "reset"],
            exchange_rate=RATE,
            exchange_burst=10,
            exchange_concurrency=6,
            exchange_latency_ms=[5.0, 20.0],
        )
    )
    cfg = config(tmp / "m365archive.toml")
    with simulated_tenant(state) as sim:
        wall, _, code, _tail = run_tool(
            ["--sim", sim.url, "--config", str(cfg), "setup", "--yes", "--password-file", str(tmp / "pw-faults")], env
        )
        faults = sum(1 for e in sim.requests if e.get("fault"))
        from m365archive.sim.exchange import service_for

        service = service_for(sim.state)
        throttled = sum(1 for e in sim.requests if e.get("status") == 429) + (
            service.stats["throttled"] if service else 0
        )
        mailboxes = [m for m in sim.state.mailboxes.values() if m.recipient_type_details == "UserMailbox"]
        holdable = [m for m in mailboxes if sim.state.user_allows_hold(sim.state.users[m.user_id])]
        lost = sum(1 for m in mailboxes if m.archive_status != "Active")
        lost += sum(1 for m in holdable if not m.litigation_hold_enabled)
        duplicated = sum(1 for n in sim.state.transitions.values() if n > 1)
    return {
        "users": users,
        "exit_code": code,
        "wall_s": wall,
        "faults_injected": faults,
        "throttled": throttled,
        "lost": lost,
        "duplicated": duplicated,
        "transitions": sum(sim.state.transitions.values()),
    }


VERIFY_USERS = int(os.environ.get("BENCH_VERIFY_USERS", "10000"))


def bench_verify(tmp: Path, env: dict[str, str]) -> dict[str, Any]:
    """`verify` over VERIFY_USERS mailboxes: two sources arriving for 6 simulated days, one stopped on day 4."""
    cfg = tmp / "verify.toml"
    cfg.write_text(
        f'procedure = "purview-connector"\n[tenant]\nid = "{TENANT}"\ndomain = "{DOMAIN}"\n'
        '[users]\nscope = "all"\nmax_concurrency = 16\n[hold]\nkind = "litigation"\n'
        '[verify]\nsources = ["instant-bloomberg", "ice-chat"]\n',
        encoding="utf-8",
    )
    knobs = {
        "exchange_latency_ms": list(EXCHANGE_LATENCY),
        "latency_ms": [10.0, 30.0],
        "exchange_rate": RATE,
        "exchange_burst": BURST,
        "exchange_concurrency": CONCURRENCY_CAP,
    }
    path = scenario(tmp / "verify.json", VERIFY_USERS, **knobs)
    data = json.loads(path.read_text(encoding="utf-8"))
    data["tenant"]["clock_elapsed_days"] = 6.5
    data["imports"] = [
        {"source": "Instant Bloomberg", "folder": "InstantBloomberg", "daily": 4},
        {"source": "ICE Chat", "folder": "ICE Chat", "daily": 3, "stop_day": 4},
    ]
    path.write_text(json.dumps(data), encoding="utf-8")
    log = tmp / "verify.log"
    with simulator(path, log) as url:
        before = len(read_log(log))
        wall, rss, code, tail = run_tool(["--sim", url, "--config", str(cfg), "verify"], env)
        entries = read_log(log)[before:]
    snapshots = sorted((Path(env["M365ARCHIVE_HOME"]) / "verify").rglob("*.json"))  # the run's own record
    last = json.loads(snapshots[-1].read_text(encoding="utf-8")) if snapshots else {}
    silent = [s["source"] for s in last.get("sources", []) if s.get("silent")]
    folder_stats = int(last.get("mailboxes_read", 0))  # user mailboxes read (not counting retried batch items)
    throttled = sum(1 for e in entries if e.get("status") == 429)
    cmdlets = sum(len(e.get("cmdlets") or [e.get("cmdlet")]) for e in entries if e.get("service") == "exchange")
    writes = [
        e
        for e in entries
        if e["method"] != "GET" and not e["path"].endswith(("InvokeCommand", "$batch", "/oauth2/v2.0/token"))
    ]
    exchange_writes = [
        e
        for e in entries
        if e.get("service") == "exchange"
        and any(not str(c).startswith("Get-") for c in (e.get("cmdlets") or [e.get("cmdlet")]))
    ]
    bound = cmdlets / RATE
    return {
        "users": VERIFY_USERS,
        "rate": RATE,
        "mailboxes_read": folder_stats,
        "exit_code": code,
        "wall_s": wall,
        "peak_rss_mb": rss,
        "requests": len(entries),
        "requests_per_mailbox": len(entries) / max(folder_stats, 1),
        "exchange_cmdlets": cmdlets,
        "throttled_requests": throttled,
        "throttle_bound_s": bound,
        "ratio_to_bound": wall / bound if bound else 0.0,
        "writes": len(writes) + len(exchange_writes),
        "silent_sources": silent,
        **({"tail": tail} if code not in (0, 13) else {}),
    }


def _writes(entry: dict[str, Any]) -> bool:
    """The simulator's own rule (SimulatedTenant.writes): Graph POST/PATCH/DELETE (a $batch by its items) and
    cmdlets that are not Get-/Search-/Test-."""
    if entry.get("service") == "graph":
        if entry["path"].endswith("$batch"):
            return any(r.get("method", "GET").upper() != "GET" for r in (entry.get("body") or {}).get("requests", []))
        return entry["method"] in ("POST", "PATCH", "DELETE", "PUT")
    cmdlets = entry.get("cmdlets") or ([entry["cmdlet"]] if entry.get("cmdlet") else [])
    return any(not str(c).startswith(("Get-", "Search-", "Test-")) for c in cmdlets)


def bench_capture(tmp: Path, env: dict[str, str]) -> dict[str, Any]:
    """`capture` of a generated tenant (pseudonymised, the default), then the simulator loading the twin."""
    cfg = config(tmp / "capture.toml")
    log = tmp / "capture.log"
    out = tmp / "twin.jsonl"
    with simulator(scenario(tmp / "capture.json", CAPTURE_USERS), log) as url:
        before = len(read_log(log))
        args = ["--sim", url, "--config", str(cfg), "capture", "--out", str(out), "--force"]
        wall, rss, code, tail = run_tool(args, env)
        entries = read_log(log)[before:]
    writes = [e for e in entries if _writes(e)]
    cmdlets = {str(c) for e in entries for c in (e.get("cmdlets") or [e.get("cmdlet")]) if c}
    started = time.perf_counter()
    load = subprocess.run(
        [sys.executable, "-c", "import sys; from m365archive.sim.scenario import load_scenario; "
         "s = load_scenario(sys.argv[1]); print(len(s.users), len(s.mailboxes))", str(out)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, check=False,
    )  # fmt: skip
    return {
        "users": CAPTURE_USERS,
        "wall_s": wall,
        "peak_rss_mb": rss,
        "exit_code": code,
        "requests": len(entries),
        "writes": len(writes),
        "cmdlets": sorted(cmdlets),
        "file_mb": round(out.stat().st_size / 2**20, 1) if out.exists() else -1,
        "twin_load_s": time.perf_counter() - started,
        "twin_counts": load.stdout.strip(),
        "tail": tail[-300:] if code else "",
    }


def main() -> int:
    if os.environ.get("BENCH_ONLY") == "verify":
        return main_verify()
    if os.environ.get("BENCH_ONLY") == "capture":
        return main_capture()
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    with tempfile.TemporaryDirectory(prefix="m365archive-bench-") as tmp_name:
        tmp = Path(tmp_name)
        env = {**os.environ, "M365ARCHIVE_HOME": str(tmp / "home"), "NO_COLOR": "1", "COLUMNS": "120"}
        results["help"] = bench_help()
        print(json.dumps(results["help"], indent=2), flush=True)
        results["scale"] = bench_scale(tmp, env)
        print(json.dumps(results["scale"], indent=2), flush=True)
        if PLAN_USERS:
            results["plan"] = bench_plan(tmp, env)
            print(json.dumps(results["plan"], indent=2), flush=True)
            results["sim_paging"] = bench_sim_paging()
            print(json.dumps(results["sim_paging"], indent=2), flush=True)
        if os.environ.get("BENCH_STATUS_USERS", "20000,100000"):
            results["status"] = bench_status(tmp, env)
        if os.environ.get("BENCH_FAULT_USERS", "10000") != "0":
            results["faults"] = bench_faults(tmp, env)
            print(json.dumps(results["faults"], indent=2), flush=True)
        if VERIFY_USERS:
            results["verify"] = bench_verify(tmp, env)
            print(json.dumps(results["verify"], indent=2), flush=True)
        if CAPTURE_USERS:
            results["capture"] = bench_capture(tmp, env)
            print(json.dumps(results["capture"], indent=2), flush=True)
    (ROOT / "benchmarks" / "last-run.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(summary(results))
    return 0


def main_verify() -> int:
    """Only the verify measurement (BENCH_ONLY=verify): printed, and its RESULTS.md line."""
    with tempfile.TemporaryDirectory(prefix="m365archive-bench-") as tmp_name:
        tmp = Path(tmp_name)
        env = {**os.environ, "M365ARCHIVE_HOME": str(tmp / "home"), "NO_COLOR": "1", "COLUMNS": "120"}
        result = bench_verify(tmp, env)
    print(json.dumps(result, indent=2))
    print(verify_line(result))
    return 0


def main_capture() -> int:
    """Only the capture measurement (BENCH_ONLY=capture): printed, and its RESULTS.md line."""
    with tempfile.TemporaryDirectory(prefix="m365archive-bench-") as tmp_name:
        tmp = Path(tmp_name)
        env = {**os.environ, "M365ARCHIVE_HOME": str(tmp / "home"), "NO_COLOR": "1", "COLUMNS": "120"}
        result = bench_capture(tmp, env)
    print(json.dumps(result, indent=2))
    print(capture_line(result))
    return 0


def verify_line(v: dict[str, Any]) -> str:
    return (
        f"- `verify` over {v['users']:,} mailboxes ({v['mailboxes_read']:,} user mailboxes read, two sources, "
        f"Exchange 50-150 ms a call, throttle {v['rate']:.0f} cmdlets/s): {v['wall_s']:.1f} s wall (exit "
        f"{v['exit_code']}, silent: {', '.join(v['silent_sources']) or 'none'}), {v['requests']:,} HTTP requests "
        f"({v['throttled_requests']:,} answered 429): "
        f"{v['requests_per_mailbox']:.3f} per mailbox (target <= 0.11), throttle-bound limit "
        f"{v['throttle_bound_s']:.1f} s (ratio {v['ratio_to_bound']:.2f}), peak RSS {v['peak_rss_mb']} MB, "
        f"{v['writes']} writes"
    )


def summary(r: dict[str, Any]) -> str:
    """The lines benchmarks/RESULTS.md keeps for a run."""
    h, s = r["help"], r["scale"]
    lines = [
        f"### {r['when']} ({r['machine']})",
        "",
        f"- `m365archive --help`: median {h['help_median_s']:.3f} s, best {h['help_min_s']:.3f} s "
        f"(bare Python start {h['python_startup_s']:.3f} s); target < 0.3 s",
        f"- {s['users']:,} user mailboxes, {s['changes']:,} changes, Exchange 50-150 ms a call, "
        f"throttle {s['rate']:.0f} cmdlets/s (burst {s['burst']}, {s['concurrency_cap']} concurrent):",
        f"  - naive serial loop: {s['naive']['per_mailbox_s']:.3f} s a mailbox (measured on "
        f"{s['naive']['sample']}), {s['naive_extrapolated_s']:,.0f} s for all",
        f"  - m365archive setup: {s['wall_s']:.1f} s wall (exit {s['exit_code']}), "
        f"{s['speedup_vs_naive']:.1f}x faster than the naive loop (target >= 20x)",
        f"  - throttle-bound limit {s['throttle_bound_s']:.1f} s: ratio {s['ratio_to_bound']:.2f} (target <= 1.25)",
        f"  - {s['requests']:,} HTTP requests: {s['requests_per_change']:.3f} per change (target <= 0.15)",
        f"  - peak RSS of the tool {s['peak_rss_mb']} MB; changes left after the run: {s['changes_after']}",
    ]
    if "plan" in r:
        p = r["plan"]
        lines.append(
            f"- read-only plan over {p['users']:,} mailboxes: {p['requests']} requests (target <= 300), "
            f"peak RSS {p['peak_rss_mb']} MB (target < 500), {p['wall_s']:.1f} s, exit {p['exit_code']}"
        )
    if "sim_paging" in r:
        g = r["sim_paging"]
        lines.append(
            f"- simulated tenant of {g['users']:,} users: generated and started in {g['start_s']:.1f} s; "
            f"{g['exchange_mailboxes']:,} mailboxes paged through Get-Mailbox in {g['exchange_paging_s']:.1f} s, "
            f"{g['graph_users']:,} users through Graph /users in {g['graph_paging_s']:.1f} s"
        )
    for row in r.get("status", []):
        lines.append(
            f"- `status` over {row['users']:,} mailboxes (drift everywhere): "
            + "; ".join(
                f"{name.replace('_', ' ')} {m['lines']:,} lines in {m['wall_s']:.1f} s ({m['peak_rss_mb']} MB)"
                for name, m in row.items()
                if name != "users"
            )
        )
    if "faults" in r:
        f = r["faults"]
        lines.append(
            f"- {f['users']:,} mailboxes with 5% injected faults (503/504/reset) and throttling storms: "
            f"exit {f['exit_code']}, {f['faults_injected']:,} faults, {f['throttled']:,} throttled requests, "
            f"{f['lost']} lost, {f['duplicated']} applied twice ({f['transitions']:,} setting changes), "
            f"{f['wall_s']:.1f} s"
        )
    if "verify" in r:
        lines.append(verify_line(r["verify"]))
    if "capture" in r:
        lines.append(capture_line(r["capture"]))
    return "\n".join(lines) + "\n"


def capture_line(c: dict[str, Any]) -> str:
    return (
        f"- `capture` of {c['users']:,} mailboxes (pseudonymised): {c['wall_s']:.1f} s, peak RSS {c['peak_rss_mb']} MB "
        f"(target < 500), {c['requests']:,} requests, {c['writes']} writes, {c['file_mb']} MB file, exit "
        f"{c['exit_code']}; the simulator loads the twin in {c['twin_load_s']:.1f} s"
    )


if __name__ == "__main__":
    raise SystemExit(main())
