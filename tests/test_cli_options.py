"""Global options before or after the command, usage errors (exit 4), --query, -q, colour, width,
shell completion (issue #17)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import typer.main
from typer.testing import CliRunner

from m365archive.cli.group import lift_global_options
from m365archive.cli.main import app
from m365archive.result import ExitCode
from m365archive.sim.server import SimulatedTenant
from tests.clihelp import EXAMPLE, Run

ROOT = typer.main.get_command(app)


def cli(*args: str) -> Run:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return Run(result.exit_code, result.stdout, result.stderr)


@pytest.mark.parametrize(
    ("given", "lifted"),
    [
        (["status", "--output", "markdown"], ["--output", "markdown", "status"]),
        (["status", "-o", "json", "-v"], ["-o", "json", "-v", "status"]),
        (["consent", "status", "-ojson", "--config=x.toml"], ["-ojson", "--config=x.toml", "consent", "status"]),
        (["-c", "a.toml", "status", "-vv", "-q"], ["-c", "a.toml", "-vv", "-q", "status"]),
        (["setup", "--dry-run", "--sim", "http://h", "--report", "r.md"],
         ["--sim", "http://h", "setup", "--dry-run", "--report", "r.md"]),
        (["status", "--query", "data", "--debug", "--no-color"],
         ["--query", "data", "--debug", "--no-color", "status"]),
        # after `--` nothing is an option; an unknown option stays for the command to refuse
        (["mapping", "check", "--", "-o"], ["mapping", "check", "--", "-o"]),
        (["status", "--outptu", "json"], ["status", "--outptu", "json"]),
        (["--output", "json", "status"], ["--output", "json", "status"]),
    ],
)  # fmt: skip
def test_global_options_after_the_command_move_in_front(given: list[str], lifted: list[str]) -> None:
    assert lift_global_options(ROOT, given) == lifted


def test_options_after_the_command_work_end_to_end(sim: SimulatedTenant) -> None:
    markdown = cli("status", "--config", str(EXAMPLE), "--sim", sim.url, "--output", "markdown")
    assert markdown.code == ExitCode.CHANGES, markdown.stderr
    assert markdown.stdout.lstrip().startswith("#")  # a Markdown document, not the console table
    as_json = cli("status", "-c", str(EXAMPLE), "--sim", sim.url, "-o", "json")
    doc = json.loads(as_json.stdout)
    assert doc["command"] == "status" and doc["exit_code"] == ExitCode.CHANGES


def test_a_mistyped_option_is_usage_exit_4_with_a_suggestion_in_one_line() -> None:
    run = cli("status", "--outptu", "markdown")
    assert run.code == ExitCode.USAGE
    assert run.stderr.splitlines() == [
        "error: No such option: --outptu. Did you mean --output?",
        "hint: see `m365archive status --help`",
    ]
    assert run.stdout == ""


def test_a_mistyped_command_is_usage_exit_4_with_a_suggestion() -> None:
    run = cli("stauts")
    assert run.code == ExitCode.USAGE
    assert run.stderr.splitlines()[0] == "error: No such command 'stauts'. Did you mean 'status'?"


def test_a_usage_error_under_json_output_is_the_envelope() -> None:
    for args in (["consent", "status", "--bogus", "-o", "json"], ["-o", "json", "consent", "status", "--bogus"]):
        run = cli(*args)
        assert run.code == ExitCode.USAGE
        doc = json.loads(run.stdout)
        assert doc["exit_code"] == ExitCode.USAGE and doc["status"] == "error"
        assert doc["command"] == "consent status"
        assert doc["errors"] == ["No such option: --bogus"]


def test_a_bad_option_value_is_usage_exit_4() -> None:
    run = cli("status", "-o", "xml")
    assert run.code == ExitCode.USAGE
    assert "'xml' is not one of 'human', 'json', 'markdown'" in run.stderr


def test_query_selects_from_the_json_envelope(sim: SimulatedTenant) -> None:
    base = ["status", "-c", str(EXAMPLE), "--sim", sim.url]
    code = cli(*base, "--query", "exit_code")
    assert code.code == ExitCode.CHANGES
    assert json.loads(code.stdout) == ExitCode.CHANGES
    names = cli(*base, "-o", "json", "--query", "[command, status]")
    assert json.loads(names.stdout) == ["status", "success"]


def test_query_refuses_a_bad_expression_and_markdown() -> None:
    bad = cli("status", "--query", "data[")
    assert bad.code == ExitCode.USAGE
    assert bad.stderr.startswith("error: --query 'data[' is not a JMESPath expression")
    with_markdown = cli("status", "--query", "data", "-o", "markdown")
    assert with_markdown.code == ExitCode.USAGE
    assert "can't be used with --output markdown" in with_markdown.stderr


def test_quiet_prints_nothing_and_the_exit_code_tells(sim: SimulatedTenant) -> None:
    run = cli("status", "-q", "-c", str(EXAMPLE), "--sim", sim.url)
    assert run.code == ExitCode.CHANGES
    assert run.stdout == ""
    assert cli("status", "-q", "-c", str(EXAMPLE), "--sim", sim.url, "-o", "json").stdout.startswith("{")


def test_colour_follows_no_color_and_the_flag(sim: SimulatedTenant, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("FORCE_COLOR", "1")
    base = ["status", "-c", str(EXAMPLE), "--sim", sim.url]
    assert "\x1b[3" in cli(*base).stdout  # a foreground colour
    assert "\x1b[3" not in cli(*base, "--no-color").stdout
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[3" not in cli(*base).stdout


def test_output_to_a_pipe_is_not_wrapped(sim: SimulatedTenant, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS")  # what a pipe gives: no terminal, no width
    run = cli("status", "-c", str(EXAMPLE), "--sim", sim.url)
    assert run.code == ExitCode.CHANGES, run.stderr
    assert "compliance.officer@contoso.onmicrosoft.com" in run.stdout  # whole: not folded at 80 columns
    assert max(len(line) for line in run.stdout.splitlines()) > 80


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish", "powershell"])
def test_completion_scripts_for_four_shells(shell: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # typer detects the shell unless told not to (its switch for naming one, as here)
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
    result = CliRunner().invoke(app, ["--show-completion", shell], prog_name="m365archive")
    assert result.exit_code == 0, result.stderr
    assert "_M365ARCHIVE_COMPLETE" in result.stdout
    assert f"complete_{shell}" in result.stdout


def test_completion_completes_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_M365ARCHIVE_COMPLETE", "complete_bash")
    monkeypatch.setenv("COMP_WORDS", "m365archive consent st")
    monkeypatch.setenv("COMP_CWORD", "2")
    result = CliRunner().invoke(app, [], prog_name="m365archive")
    assert result.stdout.split() == ["status"]


def test_help_follows_columns() -> None:
    def widest(columns: str) -> int:
        done = subprocess.run(
            [sys.executable, "-m", "m365archive", "--help"],
            capture_output=True,
            text=True,
            env={**os.environ, "COLUMNS": columns},
            timeout=60,
            check=False,
        )
        return max(map(len, done.stdout.splitlines()))

    assert widest("60") <= 60 < widest("160")


def test_every_commands_help_names_the_global_options() -> None:
    from tests.test_docs import commands

    root_options = {
        opt
        for param in ROOT.params
        if param.name in ("output", "config", "sim", "query", "debug", "verbose", "quiet", "no_color")
        for opt in param.opts
    }
    for name, _cmd in commands():
        run = cli(*name.split(), "--help")
        assert run.code == 0, name
        text = " ".join(run.stdout.split())
        assert "Global options (before or after the command" in text, name
        assert text.count("Global options (before") == 1, name  # added once, however often help is built
        missing = [opt for opt in root_options if opt not in text]
        assert not missing, (name, missing)
