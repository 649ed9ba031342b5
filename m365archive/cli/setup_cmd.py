"""`m365archive setup`: plan, show, confirm, apply exactly, show the result."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from m365archive.cli import changes
from m365archive.cli.common import finish, run, state


def register(app: typer.Typer) -> None:
    @app.command("setup")
    def setup(
        ctx: typer.Context,
        dry_run: changes.DryRun = False,
        report: changes.Report = None,
        plan_out: changes.PlanOut = None,
        plan_file: changes.PlanIn = None,
        expect_digest: changes.ExpectDigest = None,
        csv: changes.Csv = None,
        yes: changes.Yes = False,
        detailed_exitcode: changes.DetailedExitcode = False,
        password_file: Annotated[
            Path | None,
            typer.Option(
                "--password-file", help="Keep the catch-all password in this 0600 file instead of the keyring."
            ),
        ] = None,
    ) -> None:
        """Bring the tenant to the desired state in m365archive.toml.

        Examples:

        \b
          m365archive setup --dry-run --report plan.md --plan-out plan.json
          m365archive setup --plan plan.json --expect-digest sha256:3f2a... --yes
        """
        from m365archive.app import pipeline
        from m365archive.app.setup import Setup

        cli = state(ctx)
        config = cli.load_config()
        env = cli.env(password_file=password_file)
        ui = changes.frontend(cli, yes, "Apply {count} change(s) to {domain}?")
        ticket = changes.ticket(cli, "setup", plan_out or plan_file, config.tenant.cloud)
        opts = changes.options(dry_run, report, plan_out, plan_file, csv, expect_digest, ticket=ticket)
        result = run(cli, lambda: pipeline.run(env, config, Setup(env, config), opts, ui))
        finish(cli, changes.render(cli, result, detailed=detailed_exitcode))
