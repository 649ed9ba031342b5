"""`m365archive preflight --onprem`: connectivity, authentication and rights, each with a verdict."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from m365archive.cli import exits
from m365archive.cli.common import CliState, Output, finish, run, state
from m365archive.result import ExitCode, Result

if TYPE_CHECKING:
    from m365archive.app.context import Env
    from m365archive.config import Config


def register(app: typer.Typer) -> None:
    @app.command("preflight")
    def preflight(
        ctx: typer.Context,
        onprem: Annotated[
            bool, typer.Option("--onprem", help="Check the on-premises Exchange endpoint ([onprem]).")
        ] = False,
    ) -> None:
        """Check what a run will need before it runs. Exit 0 all good, 1 unreachable, 5 sign-in refused,
        7 a right is missing.

        Example:

        \b
          M365ARCHIVE_ONPREM_PASSWORD=... m365archive preflight --onprem
        """
        cli = state(ctx)
        if not onprem:
            cli.err.print("error: choose a check, e.g. --onprem", markup=False)
            raise typer.Exit(ExitCode.USAGE)
        config = cli.load_config()
        if config.onprem is None:
            cli.err.print("error: the config has no [onprem] table (server, auth, username)", markup=False)
            raise typer.Exit(ExitCode.USAGE)
        env = cli.env()
        finish(cli, run(cli, lambda: _onprem(cli, config, env)))


async def _onprem(cli: CliState, config: Config, env: Env) -> Result:
    from m365archive.app.preflight import onprem

    verdicts = await onprem(env, config)
    if cli.output is Output.human:
        for v in verdicts:
            cli.out.print(f"{'PASS' if v.ok else 'FAIL'}  {v.check}: {v.detail}", markup=False, highlight=False)
    failed = next((v for v in verdicts if not v.ok), None)
    return Result(
        "preflight",
        exits.for_preflight(failed.check if failed else None),
        data={"checks": [v.to_dict() for v in verdicts]},
        errors=[f"{failed.check}: {failed.detail}"] if failed and cli.output is Output.json else [],
    )
