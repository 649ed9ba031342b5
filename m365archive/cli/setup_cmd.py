"""`m365archive setup`: plan, show, confirm, apply exactly, show the result."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from m365archive.app.selection import steps_help
from m365archive.cli import changes
from m365archive.cli.common import call, finish, run, state

if TYPE_CHECKING:
    from m365archive.app.selection import Selection


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
        step: Annotated[
            list[str] | None,
            typer.Option(
                "--step",
                metavar="NAME",
                help=f"Plan only this step (repeatable). {steps_help()}.",
            ),
        ] = None,
        limit: Annotated[
            str | None,
            typer.Option(
                "--limit",
                metavar="N|P%",
                help="Staged rollout: only the first N user mailboxes (in UPN order) that still need changes, or "
                "P% of the licensed users in scope; the plan says what remains.",
            ),
        ] = None,
        only: Annotated[
            list[str] | None,
            typer.Option("--only", metavar="UPN,...", help="Only these user mailboxes (comma-separated, repeatable)."),
        ] = None,
    ) -> None:
        """Bring the tenant to the desired state in m365archive.toml, or the steps and mailboxes chosen.

        Examples:

        \b
          m365archive setup --dry-run --report plan.md --plan-out plan.json
          m365archive setup --plan plan.json --expect-digest sha256:3f2a... --yes
          m365archive setup --step catchall-account --step catchall-mailbox
          m365archive setup --step user-mailboxes --limit 100 --dry-run --plan-out stage1.json
        """
        from m365archive.app import pipeline
        from m365archive.app.setup import Setup

        cli = state(ctx)
        config = cli.load_config()
        selection = call(cli, lambda: _selection(config.procedure, step, limit, only, plan_file is not None))
        env = cli.env(password_file=password_file)
        ui = changes.frontend(cli, yes, "Apply {count} change(s) to {domain}?")
        ticket = changes.ticket(cli, "setup", plan_out or plan_file, config.tenant.cloud)
        opts = changes.options(dry_run, report, plan_out, plan_file, csv, expect_digest, ticket=ticket)
        result = run(cli, lambda: pipeline.run(env, config, Setup(env, config, selection), opts, ui))
        if result.plan.selection.get("mailboxes") is not None or step:
            result.data["selection"] = result.plan.selection
        finish(cli, changes.render(cli, result, detailed=detailed_exitcode))


def _selection(
    procedure: str, step: list[str] | None, limit: str | None, only: list[str] | None, saved: bool
) -> Selection:
    """What --step/--limit/--only choose (one line and exit 4 when they don't fit)."""
    from m365archive.app.selection import USER_MAILBOXES, Limit, Selection, parse_only, resolve_steps
    from m365archive.errors import CommandError, Reason

    if saved and (step or limit is not None or only):
        raise CommandError(
            "--step, --limit and --only choose what a new plan covers; a saved plan (--plan) replays its own selection",
            Reason.USAGE,
        )
    steps = resolve_steps(procedure, step) if step else None
    parsed = Limit.parse(limit) if limit is not None else None
    names = parse_only(only or [])
    if (parsed is not None or names) and steps is not None and USER_MAILBOXES not in steps:
        raise CommandError("--limit and --only choose user mailboxes: add `--step user-mailboxes`", Reason.USAGE)
    return Selection(steps=steps, limit=parsed, only=names)
