"""Running the real command line in-process against a simulated tenant."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from m365archive.cli.main import app

EXAMPLE = Path(__file__).parents[1] / "examples" / "m365archive.toml"


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


def m365(sim_url: str | None, *args: str, config: Path = EXAMPLE, input: str | None = None) -> Run:
    base = ["--config", str(config)]
    if sim_url:
        base += ["--sim", sim_url]
    result = CliRunner().invoke(app, [*base, *args], input=input, catch_exceptions=False)
    return Run(result.exit_code, result.stdout, result.stderr)
