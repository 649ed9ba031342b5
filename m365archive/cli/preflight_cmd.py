"""`m365archive preflight --onprem`: connectivity, authentication and rights, each with a verdict."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from m365archive.cli.common import CliState, Output, finish, run, state
from m365archive.result import CommandError, ExitCode, Result


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


async def _onprem(cli: CliState, config: Any, env: Any) -> Result:
    from urllib.parse import urlparse

    from m365archive.app.context import make_onprem_runner
    from m365archive.app.preflight import onprem_checks
    from m365archive.tenant.session import discover_simulator

    cfg = config.onprem
    endpoints = discover_simulator(env.sim_url) if env.sim_url else None
    if endpoints is None:
        from m365archive.tenant.session import endpoints_for_cloud

        endpoints = endpoints_for_cloud(config.tenant.cloud, config.tenant.id, config.tenant.domain)
    try:
        runner = make_onprem_runner(env, config, endpoints)
    except ValueError as exc:
        raise CommandError(str(exc), ExitCode.USAGE) from None
    host, port = cfg.server, cfg.port or (443 if cfg.ssl else 80)
    if endpoints.simulator and endpoints.onprem_url:
        parsed = urlparse(endpoints.onprem_url)
        host, port = parsed.hostname or host, parsed.port or port
    try:
        verdicts = await onprem_checks(runner, host, port)
    finally:
        await runner.aclose()
    if cli.output is Output.human:
        for v in verdicts:
            cli.out.print(f"{'PASS' if v.ok else 'FAIL'}  {v.check}: {v.detail}", markup=False, highlight=False)
    failed = next((v for v in verdicts if not v.ok), None)
    code = ExitCode.OK
    if failed is not None:
        code = {"connectivity": ExitCode.ERROR, "authentication": ExitCode.AUTH}.get(
            failed.check, ExitCode.PREREQUISITE
        )
    return Result(
        "preflight",
        code,
        data={"checks": [v.to_dict() for v in verdicts]},
        errors=[f"{failed.check}: {failed.detail}"] if failed and cli.output is Output.json else [],
    )
