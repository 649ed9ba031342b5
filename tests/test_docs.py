"""Every command has help text and appears in the README; every exit code is documented."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer.main

from m365archive.cli.main import app
from m365archive.result import ExitCode

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


def commands() -> list[tuple[str, Any]]:
    root: Any = typer.main.get_command(app)  # typer vendors click: duck-type groups
    out: list[tuple[str, Any]] = []
    for name, cmd in root.commands.items():
        if hasattr(cmd, "commands"):
            out.extend((f"{name} {sub}", subcmd) for sub, subcmd in cmd.commands.items())
        else:
            out.append((name, cmd))
    return out


def test_every_command_has_help_and_a_readme_entry() -> None:
    found = commands()
    assert len(found) >= 15
    for name, cmd in found:
        assert (cmd.help or "").strip(), f"{name} has no help text"
        assert re.search(rf"m365archive {re.escape(name)}\b", README), f"README does not document {name}"


def test_every_exit_code_is_in_the_readme_table() -> None:
    for code in ExitCode:
        assert re.search(rf"^\| {int(code)} \| {code.name} \|", README, re.M), code


def test_quick_start_is_two_commands() -> None:
    quick = README.split("## Quick start")[1].split("##")[0]
    assert "make demo" in quick and "make test" in quick
