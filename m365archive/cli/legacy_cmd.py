"""`m365archive legacy cleanup`: remove what the retired route left behind, keep its data."""

from __future__ import annotations

from typing import Annotated

import typer

from m365archive.cli import changes
from m365archive.cli.common import finish, run, state

app = typer.Typer(
    help="The retired EWS partner route: find and remove what it left behind.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("cleanup")
def cleanup(
    ctx: typer.Context,
    dry_run: changes.DryRun = False,
    account: Annotated[
        list[str] | None,
        typer.Option("--account", metavar="UPN", help="A catch-all account to clean up (repeatable)."),
    ] = None,
    rotate_password: Annotated[
        bool,
        typer.Option("--rotate-password", help="Rotate the catch-all's password instead of blocking its sign-in."),
    ] = False,
    report: changes.Report = None,
    plan_out: changes.PlanOut = None,
    plan_file: changes.PlanIn = None,
    expect_digest: changes.ExpectDigest = None,
    csv: changes.Csv = None,
    yes: changes.Yes = False,
    detailed_exitcode: changes.DetailedExitcode = False,
) -> None:
    """Delete the connector app's service principal; take the catch-all account's admin role away and block
    its sign-in; delete its password from this machine. Its mailbox, archive and hold are kept.

    Catch-all accounts come from the config ([catchall] upn, connector.legacy_catchall) or --account;
    accounts that only look like one are listed, never changed.

    Examples:

    \b
      m365archive legacy cleanup --dry-run --report cleanup.md --plan-out cleanup.json
      m365archive legacy cleanup --plan cleanup.json --expect-digest sha256:3f2a... --yes
    """
    from m365archive.app import pipeline
    from m365archive.app.legacy import CleanupOptions, LegacyCleanup

    cli = state(ctx)
    config = cli.load_config()
    env = cli.env()
    procedure = LegacyCleanup(env, config, CleanupOptions(list(account or []), rotate_password))
    ui = changes.frontend(cli, yes, "Apply {count} removal(s) to {domain}?", title=procedure.report_title)
    ticket = changes.ticket(cli, "legacy cleanup", plan_out or plan_file, config.tenant.cloud)
    opts = changes.options(dry_run, report, plan_out, plan_file, csv, expect_digest, ticket=ticket)
    result = run(cli, lambda: pipeline.run(env, config, procedure, opts, ui))
    finish(cli, changes.render(cli, result, detailed=detailed_exitcode, noun=procedure.noun))
