"""Issue 18, the offline parts: `show` a saved plan with the simulator stopped, `config validate`,
`history` of runs from the journal."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from m365archive.engine.journal import Journal
from m365archive.engine.runner import Runner
from m365archive.paths import journal_path
from m365archive.result import ExitCode
from m365archive.sim.server import SimulatedTenant, simulated_tenant
from tests.clihelp import m365
from tests.test_journal import Boom, ExplodingExecutor, chain


@pytest.fixture(scope="module")
def saved_plan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plan saved from a simulated tenant that is stopped before any test reads it."""
    path = tmp_path_factory.mktemp("plan") / "plan.json"
    with pytest.MonkeyPatch.context() as mp, simulated_tenant("fresh", time_scale=0.001) as tenant:
        mp.setenv("M365ARCHIVE_HOME", str(tmp_path_factory.mktemp("home")))
        mp.setenv("NO_COLOR", "1")
        run = m365(tenant.url, "setup", "--dry-run", "--plan-out", str(path))
        assert run.code == ExitCode.OK, run.stderr
    return path  # the simulator is stopped here


def test_show_renders_a_saved_plan_with_the_simulator_stopped(saved_plan: Path, tmp_path: Path) -> None:
    doc: dict[str, Any] = json.loads(saved_plan.read_text())
    pending = [c for c in doc["changes"] if c["action"] != "no-op"]
    assert pending

    human = m365(None, "show", str(saved_plan))
    assert human.code == ExitCode.OK, human.stderr
    assert doc["digest"] in human.stdout and pending[0]["target"] in human.stdout

    report = tmp_path / "ticket.md"
    md = m365(None, "show", str(saved_plan), "-o", "markdown", "--report", str(report))
    assert md.code == ExitCode.OK, md.stderr
    assert md.stdout.lstrip().startswith("#") and doc["digest"] in md.stdout
    assert report.read_text().strip() == md.stdout.strip()  # the same change-ticket document
    assert "--plan" in md.stdout and str(saved_plan) in md.stdout  # the command that applies exactly this plan

    js = m365(None, "show", str(saved_plan), "-o", "json")
    assert js.code == ExitCode.OK, js.stderr
    envelope = json.loads(js.stdout)
    assert envelope["command"] == "show" and envelope["data"]["digest"] == doc["digest"]
    assert envelope["data"]["summary"]["pending"] == len(pending)
    assert [c["id"] for c in envelope["data"]["changes"]] == [c["id"] for c in doc["changes"]]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("v1", "format_version 1"),
        ("{not json", "plan.json"),
        ('{"format_version": "2"}', "not a valid m365archive plan"),
        ("[]", "not a JSON object"),
    ],
)
def test_show_refuses_an_old_or_malformed_plan_with_one_line(
    saved_plan: Path, tmp_path: Path, content: str, expected: str
) -> None:
    bad = tmp_path / "plan.json"
    if content == "v1":
        doc = json.loads(saved_plan.read_text())
        doc["format_version"] = "1"
        content = json.dumps(doc)
    bad.write_text(content)
    run = m365(None, "show", str(bad))
    assert run.code == ExitCode.USAGE
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], run.stderr
    assert "Traceback" not in run.stdout + run.stderr


def test_show_refuses_an_edited_plan_and_a_missing_file(saved_plan: Path, tmp_path: Path) -> None:
    doc = json.loads(saved_plan.read_text())
    next(c for c in doc["changes"] if c["action"] != "no-op")["target"] = "someone-else@contoso.onmicrosoft.com"
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(doc))
    assert m365(None, "show", str(edited)).code == ExitCode.PLAN_MISMATCH
    missing = m365(None, "show", str(tmp_path / "nope.json"), "-o", "json")
    assert missing.code == ExitCode.USAGE and "no such plan file" in json.loads(missing.stdout)["errors"][0]


def test_config_validate_accepts_the_example_offline() -> None:
    ok = m365(None, "config", "validate")
    assert ok.code == ExitCode.OK, ok.stderr
    assert "valid" in ok.stdout
    js = json.loads(m365(None, "config", "validate", "-o", "json").stdout)
    assert js["command"] == "config validate" and js["exit_code"] == 0 and js["data"]["valid"] is True


def test_config_validate_refuses_a_bad_file_with_one_line_per_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'procedure = "partner-ews"\n[tenant]\nid = "not a tenant"\n[catchall]\nupn = "nobody"\n', encoding="utf-8"
    )
    run = m365(None, "config", "validate", str(bad))
    assert run.code == ExitCode.USAGE
    lines = run.stderr.strip().splitlines()
    assert len(lines) >= 2 and all(line.startswith("error: ") for line in lines), run.stderr
    assert any("not a tenant" in line for line in lines) and any("nobody" in line for line in lines)
    js = m365(None, "config", "validate", str(bad), "-o", "json")
    envelope = json.loads(js.stdout)
    assert js.code == ExitCode.USAGE and envelope["exit_code"] == 4 and len(envelope["errors"]) == len(lines)
    missing = m365(None, "config", "validate", str(tmp_path / "none.toml"))
    assert missing.code == ExitCode.USAGE and "no such file" in missing.stderr


KILLED = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from pathlib import Path
    from m365archive.engine.journal import Journal
    from m365archive.engine.runner import Runner, ExecResult
    from tests.test_journal import chain

    class Executor:
        def batch_key(self, op): return None
        async def execute(self, op, request):
            if request["name"] == "c2":
                os.kill(os.getpid(), signal.SIGKILL)  # the process is lost mid-run (kill -9, power loss)
            return ExecResult(ok=True, body={}, request_id="rid-" + request["name"])
        async def execute_many(self, ops): return [await self.execute(op, req) for op, req in ops]
        async def wait(self, wait, target, tick): return True

    asyncio.run(Runner(Executor(), Journal(Path(sys.argv[1])), secrets=lambda n: "", command="setup").apply(chain(4)))
    """
)


def test_history_shows_a_normal_an_interrupted_and_a_crashed_run(sim: SimulatedTenant, tmp_path: Path) -> None:
    applied = m365(sim.url, "setup", "--yes", "--password-file", str(tmp_path / "pw"))
    assert applied.code == ExitCode.OK, applied.stderr
    path = journal_path()
    killed = subprocess.run([sys.executable, "-c", KILLED, str(path)], check=False, cwd=Path(__file__).parents[1])
    assert killed.returncode == -9
    journal = Journal(path)
    with pytest.raises(Boom):
        asyncio.run(
            Runner(ExplodingExecutor("c3"), journal, secrets=lambda n: "", command="legacy cleanup").apply(chain(5))
        )
    journal.close()

    envelope = json.loads(m365(None, "history", "-o", "json").stdout)
    assert envelope["command"] == "history" and envelope["exit_code"] == 0
    assert len(envelope["data"]["runs"]) == 3
    by_status = {r["status"]: r for r in envelope["data"]["runs"]}
    assert set(by_status) == {"success", "interrupted", "crashed"}
    normal, lost, crashed = by_status["success"], by_status["interrupted"], by_status["crashed"]
    assert normal["command"] == "setup" and normal["plan_digest"].startswith("sha256:")
    assert normal["plan_digest_short"] == normal["plan_digest"].removeprefix("sha256:")[:12]
    assert normal["counts"]["ok"] > 0 and set(normal["counts"]) == {"ok"}
    assert lost["counts"] == {"ok": 2, "sending": 1} and "killed or lost" in lost["detail"]
    assert crashed["counts"] == {"ok": 3, "sending": 1} and "Boom: injected" in crashed["detail"]
    assert crashed["command"] == "legacy cleanup"
    assert [r["status"] for r in envelope["data"]["runs"]] == ["crashed", "interrupted", "success"]  # newest first

    human = m365(None, "history")
    assert human.code == ExitCode.OK, human.stderr
    lines = human.stdout.splitlines()
    for run in (normal, lost, crashed):
        rows = [
            line for line in lines if run["run_id"][:8] in line and run["status"] in line and run["command"] in line
        ]
        assert len(rows) == 1, human.stdout
    assert normal["plan_digest_short"] in human.stdout and f"{normal['counts']['ok']} ok" in human.stdout
    assert "2 ok, 1 sending" in human.stdout and "3 ok, 1 sending" in human.stdout
    assert f"{crashed['run_id'][:8]} crashed: " in human.stdout and "killed or lost" in human.stdout

    one = json.loads(m365(None, "history", "show", crashed["run_id"][:8], "-o", "json").stdout)
    assert one["data"]["run"]["status"] == "crashed"
    assert [(c["change_id"], c["outcome"]) for c in one["data"]["changes"]] == [
        ("c0", "ok"),
        ("c1", "ok"),
        ("c2", "ok"),
        ("c3", "sending"),
    ]
    md = m365(None, "history", "show", normal["run_id"], "-o", "markdown")
    assert md.code == ExitCode.OK and normal["plan_digest"] in md.stdout and "| ok |" in md.stdout
    text = m365(None, "history", "show", lost["run_id"])
    assert "interrupted" in text.stdout and "killed or lost" in text.stdout and "rid-c1" in text.stdout
    unknown = m365(None, "history", "show", "no-such-run")
    assert unknown.code == ExitCode.USAGE and unknown.stderr.startswith("error: no run 'no-such-run'")


def test_history_with_no_runs_says_so() -> None:
    run = m365(None, "history")
    assert run.code == ExitCode.OK and "No runs" in run.stdout
