"""`m365archive preflight [--for COMMAND] [--onprem]`: what the principal holds against what a run needs, or the
on-premises endpoint's connectivity, authentication and rights. Reads only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from m365archive.cli import exits
from m365archive.cli.common import CliState, Output, finish, run, state
from m365archive.result import ExitCode, Result

if TYPE_CHECKING:
    from m365archive.app.access import AccessReport
    from m365archive.app.context import Env
    from m365archive.config import Config

TARGET_NAMES = (
    "setup",
    "status",
    "consent",
    "consent-grant",
    "consent-status",
    "consent-revoke",
    "credentials",
    "legacy",
    "partner-info",
    "mapping",
)


def register(app: typer.Typer) -> None:
    @app.command("preflight")
    def preflight(
        ctx: typer.Context,
        target: Annotated[
            str,
            typer.Option(
                "--for",
                metavar="COMMAND",
                help="The command to check for: " + ", ".join(TARGET_NAMES) + " (default setup).",
            ),
        ] = "setup",
        onprem: Annotated[
            bool, typer.Option("--onprem", help="Check the on-premises Exchange endpoint ([onprem]).")
        ] = False,
    ) -> None:
        """Check what a run will need before it runs, sending only reads: per permission, Entra role and role
        group, have / missing / eligible / can't tell, with the remedy. Exit 0 all there, 7 something needed is
        missing (or only eligible); with --onprem 1 unreachable, 5 sign-in refused, 7 a right is missing.

        Example:

        \b
          m365archive preflight
          m365archive preflight --for legacy -o json
          M365ARCHIVE_ONPREM_PASSWORD=... m365archive preflight --onprem
        """
        cli = state(ctx)
        if target not in TARGET_NAMES:
            cli.err.print(
                f"error: --for must be one of {', '.join(TARGET_NAMES)}, not {target!r}", markup=False, highlight=False
            )
            raise typer.Exit(ExitCode.USAGE)
        config = cli.load_config()
        env = cli.env()
        if not onprem:
            finish(cli, run(cli, lambda: _access(cli, config, env, target)))
        if config.onprem is None:
            cli.err.print("error: the config has no [onprem] table (server, auth, username)", markup=False)
            raise typer.Exit(ExitCode.USAGE)
        finish(cli, run(cli, lambda: _onprem(cli, config, env)))


SYMBOL = {"have": "HAVE", "missing": "MISSING", "eligible": "ELIGIBLE", "can't tell": "CAN'T TELL"}


async def _access(cli: CliState, config: Config, env: Env, target: str) -> Result:
    from m365archive.app.access import preflight

    report = await preflight(env, config, target)
    if cli.output is Output.human and not cli.quiet:
        for line in render(report):  # never wrapped: a remedy is a line to copy
            cli.out.print(line, markup=False, highlight=False, soft_wrap=True)
    return Result(
        "preflight",
        ExitCode.PREREQUISITE if report.blocking else ExitCode.OK,
        data=report.to_dict(),
        messages=render(report) if cli.output is Output.markdown else [],
        errors=[f"{len(report.blocking)} need(s) missing or only eligible"] if report.blocking else [],
    )


def render(report: AccessReport) -> list[str]:
    """One line per need, its remedy under it, and a closing verdict."""
    kind = "an application" if report.app_only else "a user"
    lines = [f"preflight for `{report.target}` as {report.principal} ({kind})"]
    for v in report.verdicts:
        via = f" ({v.via})" if v.via and v.via not in v.need.names else ""
        lines.append(f"{SYMBOL[v.verdict]:<10}  {v.need.kind}: {v.need.label}{via}")
        if v.remedy:
            lines.append(f"            remedy: {v.remedy}")
    have = sum(1 for v in report.verdicts if v.verdict == "have")
    lines.append(f"{have} of {len(report.verdicts)} need(s) held; {len(report.blocking)} missing or only eligible")
    return lines


async def _onprem(cli: CliState, config: Config, env: Env) -> Result:
    from m365archive.app.preflight import onprem

    verdicts = await onprem(env, config)
    if cli.output is Output.human:
        for v in verdicts:
            line = f"{'PASS' if v.ok else 'FAIL'}  {v.check}: {v.detail}"
            cli.out.print(line, markup=False, highlight=False, soft_wrap=True)
    failed = next((v for v in verdicts if not v.ok), None)
    return Result(
        "preflight",
        exits.for_preflight(failed.check if failed else None),
        data={"checks": [v.to_dict() for v in verdicts]},
        errors=[f"{failed.check}: {failed.detail}"] if failed and cli.output is Output.json else [],
    )
