"""m365archive's command line: global options and the command groups."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from m365archive import __version__
from m365archive.cli import (
    capture_cmd,
    config_cmd,
    consent_cmd,
    credentials_cmd,
    doctor_cmd,
    history_cmd,
    init_cmd,
    legacy_cmd,
    mapping_cmd,
    partner_info_cmd,
    partners_cmd,
    preflight_cmd,
    setup_cmd,
    show_cmd,
    signin_cmd,
    sim_cmd,
    status_cmd,
    steps_cmd,
    verify_cmd,
)
from m365archive.cli.common import CONFIG_ENV, DEFAULT_CONFIG, CliState, Output
from m365archive.cli.group import RootGroup

app = typer.Typer(
    name="m365archive",
    help=(
        "Prepare a Microsoft 365 tenant for archiving third-party data: plan, report, apply, check drift.\n\n"
        "Start with `m365archive init`, then `m365archive setup --dry-run --report plan.md`.\n\n"
        "Global options (-o/--output, -c/--config, --sim, --query, -q, -v, --no-color, --debug) "
        "may come before or after the command."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    rich_markup_mode=None,
    cls=RootGroup,
    # click caps help at 80 columns; this lets COLUMNS or the terminal decide
    context_settings={"max_content_width": 200},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"m365archive {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    output: Annotated[
        Output, typer.Option("--output", "-o", help="human, json (versioned envelope) or markdown.")
    ] = Output.human,
    config: Annotated[Path, typer.Option("--config", "-c", envvar=CONFIG_ENV, help="The desired-state file.")] = Path(
        DEFAULT_CONFIG
    ),
    sim: Annotated[
        str | None,
        typer.Option(
            "--sim",
            envvar="M365ARCHIVE_SIM",
            metavar="URL",
            help="Target a running simulated tenant instead of Microsoft 365.",
        ),
    ] = None,
    query: Annotated[
        str | None,
        typer.Option(
            "--query", metavar="JMESPATH", help="Print only this part of the JSON envelope (implies --output json)."
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for unexpected errors.")] = False,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More detail (repeatable).")] = 0,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Errors only; the exit code says the rest (human output).")
    ] = False,
    no_color: Annotated[bool, typer.Option("--no-color", help="No colour (as the NO_COLOR variable).")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Global options apply to every command and may come before or after it."""
    ctx.obj = CliState.create(
        output=output,
        config_path=config,
        debug=debug,
        verbose=verbose,
        sim_url=sim,
        quiet=quiet,
        no_color=no_color,
        query=query,
    )


init_cmd.register(app)
setup_cmd.register(app)
status_cmd.register(app)
steps_cmd.register(app)
verify_cmd.register(app)
show_cmd.register(app)
preflight_cmd.register(app)
capture_cmd.register(app)
doctor_cmd.register(app)
signin_cmd.register(app)
app.add_typer(sim_cmd.app, name="sim")
partners_cmd.register(app)
partner_info_cmd.register(app)
app.add_typer(consent_cmd.app, name="consent")
app.add_typer(credentials_cmd.app, name="credentials")
app.add_typer(legacy_cmd.app, name="legacy")
app.add_typer(mapping_cmd.app, name="mapping")
app.add_typer(config_cmd.app, name="config")
app.add_typer(history_cmd.app, name="history")


def run() -> None:
    app(prog_name="m365archive")  # also under `python -m m365archive` (completion keys on the name)


if __name__ == "__main__":
    run()
