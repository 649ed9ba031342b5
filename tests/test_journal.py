"""The journal tells the truth (issue 15) and is versioned (issue 14).

A change is journaled as sending before it is sent; a run that raises is `crashed`; a journal that
can't be written (a full disk, here a file-size limit in a subprocess) stops the run before anything
more is sent; a journal that can't be read is moved aside with one line and the next run works.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from m365archive.engine.journal import SCHEMA_VERSION, Journal, JournalError
from m365archive.engine.plan import Action, Change, Operation, Plan, Wait
from m365archive.engine.runner import ExecResult, Runner
from m365archive.paths import journal_path
from m365archive.result import ExitCode
from m365archive.sim.server import SimulatedTenant
from tests.clihelp import m365


class Boom(RuntimeError):
    pass


class ExplodingExecutor:
    """Sends one change at a time; raises (a bug, not a service answer) at the change named `explode`."""

    def __init__(self, explode: str) -> None:
        self.explode = explode
        self.sent: list[str] = []

    def batch_key(self, op: Operation) -> str | None:
        return None

    async def execute(self, op: Operation, request: dict[str, Any]) -> ExecResult:
        if request["name"] == self.explode:
            raise Boom("injected")
        self.sent.append(request["name"])
        return ExecResult(ok=True, body={}, request_id="rid")

    async def execute_many(self, ops: list[tuple[Operation, dict[str, Any]]]) -> list[ExecResult]:
        return [await self.execute(op, req) for op, req in ops]

    async def wait(self, wait: Wait, resolved_target: str, tick: Callable[[str], None]) -> bool:
        return True


def chain(n: int) -> Plan:
    changes = [
        Change(
            id=f"c{i}",
            step="s",
            target=f"t{i}",
            setting="x",
            action=Action.UPDATE,
            before=0,
            after=1,
            operation=Operation(kind="graph", request={"name": f"c{i}"}, display=f"c{i}"),
            depends_on=[f"c{i - 1}"] if i else [],
        )
        for i in range(n)
    ]
    return Plan(procedure="partner-ews", tenant={"id": "t"}, operator="me", tool_version="0", changes=changes)


def test_an_exception_mid_apply_is_journaled_as_crashed(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    executor = ExplodingExecutor(explode="c2")
    runner = Runner(executor, journal, secrets=lambda name: "", command="setup")
    with pytest.raises(Boom):
        asyncio.run(runner.apply(chain(5)))
    (run,) = journal.rows("runs")
    assert run["status"] == "crashed" and "Boom: injected" in run["detail"] and run["command"] == "setup"
    outcomes = {r["change_id"]: r["outcome"] for r in journal.rows()}
    assert outcomes == {"c0": "ok", "c1": "ok", "c2": "sending"}  # c2 in doubt; nothing after it was sent
    assert executor.sent == ["c0", "c1"]
    assert journal.in_doubt(run["plan_id"]) == {"c2"}


FULL_DISK = textwrap.dedent(
    """
    import asyncio, resource, signal, sys
    from pathlib import Path
    from m365archive.engine.journal import Journal, JournalError
    from m365archive.engine.runner import Runner, ExecResult
    from tests.test_journal import chain

    class Executor:
        def batch_key(self, op): return None
        async def execute(self, op, request):
            print("sent", request["name"], flush=True)
            return ExecResult(ok=True, body={}, request_id="rid")
        async def wait(self, wait, target, tick): return True

    journal = Journal(Path(sys.argv[1]))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) like a full disk
    limit = int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    try:
        asyncio.run(Runner(Executor(), journal, secrets=lambda n: "").apply(chain(3000)))
    except JournalError as exc:
        print("error:", exc, flush=True)
        sys.exit(1)
    """
)


def test_a_full_disk_stops_the_run_and_everything_sent_is_journaled(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    proc = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(path), str(3 * 1024 * 1024)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parents[1],
    )
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    error = [line for line in proc.stdout.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and str(path) in error[0] and "could not be written" in error[0]
    sent = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("sent ")]
    assert 100 < len(sent) < 3000  # hundreds of writes, then the disk was full
    journal = Journal(path)
    (run,) = journal.rows("runs")
    assert run["status"] == "crashed" and "could not be written" in run["detail"]
    journaled = {r["change_id"]: r["outcome"] for r in journal.rows()}
    assert set(sent) <= set(journaled)  # nothing was sent that the journal does not know of
    assert all(journaled[c] == "ok" for c in sent[:-1])


def test_a_corrupt_journal_is_set_aside_with_one_line_and_the_next_open_works(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    path.write_bytes(b"this is not a database\n" * 100)
    with pytest.raises(JournalError) as refused:
        Journal(path)
    message = str(refused.value)
    assert "\n" not in message and str(path) in message and "moved it aside" in message
    (aside,) = [p for p in tmp_path.iterdir() if ".unreadable-" in p.name]
    assert aside.name in message
    assert aside.read_bytes().startswith(b"this is not a database")  # kept, not deleted
    journal = Journal(path)
    journal.start_run("r", "p", "setup", "t", "me", "0")
    assert [r["status"] for r in journal.rows("runs")] == ["running"]


def test_a_journal_from_a_newer_version_is_refused_and_an_older_one_migrated(tmp_path: Path) -> None:
    newer = tmp_path / "newer.sqlite3"
    with sqlite3.connect(newer) as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(JournalError, match="newer m365archive"):
        Journal(newer)
    older = tmp_path / "older.sqlite3"
    with sqlite3.connect(older) as db:
        db.executescript(
            "CREATE TABLE runs (run_id TEXT PRIMARY KEY, plan_id TEXT, kind TEXT, tenant TEXT, operator TEXT,"
            " started REAL, finished REAL, status TEXT, tool_version TEXT);"
            "INSERT INTO runs VALUES ('r', 'p', 'setup', 't', 'me', 1.0, 2.0, 'success', '0.1.0');"
        )
    notices: list[str] = []
    journal = Journal(older, on_notice=notices.append)
    assert notices == [f"journal {older}: migrated from schema 0 to {SCHEMA_VERSION}"]
    assert [r["status"] for r in journal.rows("runs")] == ["success"]
    assert json.loads(journal.rows("runs")[0]["command"] or "null") is None


def test_through_the_command_line_a_corrupt_journal_is_one_line_and_the_next_run_works(
    sim: SimulatedTenant, tmp_path: Path
) -> None:
    path = journal_path()
    path.write_bytes(b"this is not a database\n" * 100)
    run = m365(sim.url, "setup", "--yes", "--password-file", str(tmp_path / "pw"))
    assert run.code == ExitCode.ERROR
    assert run.stderr.count("\n") == 1 and str(path) in run.stderr and "moved it aside" in run.stderr
    assert sim.writes() == []
    again = m365(sim.url, "setup", "--yes", "--password-file", str(tmp_path / "pw"))
    assert again.code == ExitCode.OK, again.stdout[-2000:] + again.stderr
    assert [(r["status"], r["command"]) for r in Journal(path).rows("runs")] == [("success", "setup")]
