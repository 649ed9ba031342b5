"""`-o markdown` on every command: a Markdown document, or a refusal with exit 4 (#17)."""

from __future__ import annotations

from pathlib import Path

import pytest

from m365archive.engine.journal import Journal
from m365archive.paths import journal_path
from m365archive.result import ExitCode
from m365archive.sim.server import SimulatedTenant, simulated_tenant
from tests.clihelp import m365
from tests.keyrings import MemoryKeyring
from tests.test_docs import commands
from tests.test_hybrid import HYBRID

REFUSED = {"sim serve"}  # serves until Ctrl-C: nothing to render


def arguments(tmp_path: Path) -> dict[str, list[str]]:
    export = tmp_path / "map.csv"
    return {
        "init": [str(tmp_path / "new.toml"), "--domain", "contoso.onmicrosoft.com"],
        "login": [],
        "whoami": [],
        "logout": [],
        "setup": ["--dry-run", "--plan-out", str(tmp_path / "plan.json")],
        "show": [str(tmp_path / "plan.json")],  # the plan setup saved (setup runs first)
        "config validate": [],
        "history show": ["run-1"],  # journaled below
        "status": [],
        "steps": [],
        "verify": [],  # partner-ews on a fresh tenant: no catch-all yet, nothing left to check (exit 0)
        "preflight": ["--onprem"],  # against the hybrid scenario, below
        "doctor": [],  # sends malformed reads on purpose: tests/test_doctor.py checks its Markdown
        "partners": ["--source", "bloomberg"],
        "partner-info": [],
        "sim serve": [],
        "consent grant": ["--no-browser", "--timeout", "0.01"],
        "consent status": [],
        "consent revoke": ["--dry-run"],
        "credentials show": [],
        "credentials rotate": ["--dry-run"],
        "legacy cleanup": ["--dry-run"],
        "mapping export": ["--source", "email", "--out", str(export)],
        "mapping check": [str(export), "--source", "email"],
        "capture": ["--out", str(tmp_path / "twin.jsonl")],
    }


@pytest.mark.usefixtures("memory_keyring")
def test_every_command_writes_markdown_or_refuses_with_4(sim: SimulatedTenant, tmp_path: Path) -> None:
    args = arguments(tmp_path)
    names = [name for name, _ in commands()]
    assert set(names) == set(args), "a new command needs its arguments here"
    documents: list[str] = []
    journal = Journal(journal_path())
    journal.start_run("run-1", "plan-1", "setup", "tenant", "admin@contoso.onmicrosoft.com", "0", command="setup")
    journal.finish_run("run-1", "success")
    journal.close()
    first = {"mapping export": 0, "setup": 1}  # export writes the file check reads, setup the plan show reads
    for name in sorted(names, key=lambda n: first.get(n, 2)):
        if name in ("preflight", "doctor"):
            continue
        run = m365(sim.url, *name.split(), "-o", "markdown", *args[name])
        if name in REFUSED:
            assert run.code == ExitCode.USAGE, (name, run.stderr)
            assert "no Markdown output" in run.stderr
            continue
        assert run.code != ExitCode.USAGE or "markdown" not in run.stderr, (name, run.stderr)
        if run.code in (ExitCode.OK, ExitCode.CHANGES, ExitCode.ABSENT, ExitCode.FINDINGS):
            assert run.stdout.lstrip().startswith("#"), (name, run.code, run.stdout[:300], run.stderr[-300:])
            documents.append(name)
        else:  # a failure: its line on stderr, and no human text on stdout
            assert run.stdout == "" and "error: " in run.stderr, (name, run.code, run.stdout[:300])
    # on a fresh tenant: consent is not given in 0.01 s (exit 9); there is no catch-all to rotate (exit 7);
    # preflight is run against the hybrid scenario below
    assert set(names) - set(documents) - REFUSED == {"preflight", "doctor", "consent grant", "credentials rotate"}


def test_a_plain_answer_becomes_a_markdown_document(sim: SimulatedTenant, memory_keyring: MemoryKeyring) -> None:
    run = m365(sim.url, "consent", "status", "-o", "markdown")
    assert run.code == ExitCode.ABSENT
    assert run.stdout.startswith("# m365archive consent status\n\nConnector consent: absent")


def test_preflight_writes_markdown(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with simulated_tenant("hybrid", time_scale=0.001) as sim:
        monkeypatch.setenv("M365ARCHIVE_ONPREM_PASSWORD", sim.state.onprem_users["CONTOSO\\exadmin"])
        run = m365(sim.url, "preflight", "-o", "markdown", *arguments(tmp_path)["preflight"], config=HYBRID)
    assert run.code == ExitCode.OK, run.stderr
    assert run.stdout.startswith("# m365archive preflight\n")
