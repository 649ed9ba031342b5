"""`m365archive config validate`: check the desired-state file offline (no tenant, no sign-in)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from m365archive.cli.common import finish, state
from m365archive.result import ExitCode, Result

app = typer.Typer(help="The desired-state file (m365archive.toml).", no_args_is_help=True, rich_markup_mode=None)


@app.command("validate")
def validate(
    ctx: typer.Context,
    path: Annotated[Path | None, typer.Argument(help="The file to check (default: the --config path).")] = None,
) -> None:
    """Check the desired-state file without a tenant: exit 0 valid, 4 with one line per problem
    (the JSON envelope's errors under -o json).

    Examples:

    \b
      m365archive config validate
      m365archive config validate staging.toml -o json
    """
    cli = state(ctx)
    if path is not None:
        cli.config_path = path
    config = cli.load_config()  # one line per problem and exit 4, as every command that reads it
    message = f"{cli.config_path}: valid ({config.procedure}, tenant {config.tenant.domain or config.tenant.id})"
    data = {"path": str(cli.config_path), "valid": True, "procedure": config.procedure}
    finish(cli, Result("config validate", ExitCode.OK, data=data, messages=[message]))
