"""`m365archive credentials show|rotate`: the catch-all account's password, kept in the keyring."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from m365archive.cli import changes
from m365archive.cli.common import call, finish, run, state
from m365archive.result import ExitCode, Result

app = typer.Typer(
    help="The catch-all account's password: where it is kept, and rotating it.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

PasswordFile = Annotated[
    Path | None,
    typer.Option("--password-file", help="Keep the password in this 0600 file instead of the keyring."),
]


@app.command("show")
def show(
    ctx: typer.Context,
    show_secret: Annotated[bool, typer.Option("--show-secret", help="Print the password itself.")] = False,
    password_file: PasswordFile = None,
) -> None:
    """Where the catch-all password is kept and whether one is stored (the value only with --show-secret).

    Example:

    \b
      m365archive credentials show
    """
    from m365archive.app import credentials
    from m365archive.app.consent import retirement_line

    cli = state(ctx)
    config = cli.load_config()
    env = cli.env(password_file=password_file)
    stored = call(cli, lambda: credentials.show(env, config, include_secret=show_secret))
    data: dict[str, Any] = {
        "upn": stored.upn,
        "store": stored.where,
        "stored": stored.stored,
        "pending": stored.pending,
    }
    messages = [f"Catch-all account: {stored.upn}", f"Password kept in: {stored.where}"]
    messages.append("Password: stored" if stored.stored else "Password: none stored")
    if stored.pending:
        messages.append(
            "A rotation was interrupted: a pending password is kept beside the current one. "
            "Run `m365archive credentials rotate` to send it again and finish."
        )
    if stored.value:
        data["password"] = stored.value
        messages.append(f"Password value: {stored.value}")
        messages.append("warning: " + retirement_line())
    finish(cli, Result("credentials show", ExitCode.OK, data=data, messages=messages))


@app.command("rotate")
def rotate(
    ctx: typer.Context,
    dry_run: changes.DryRun = False,
    report: changes.Report = None,
    plan_out: changes.PlanOut = None,
    plan_file: changes.PlanIn = None,
    expect_digest: changes.ExpectDigest = None,
    csv: changes.Csv = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Rotate without asking.")] = False,
    detailed_exitcode: changes.DetailedExitcode = False,
    password_file: PasswordFile = None,
) -> None:
    """Reset the catch-all password through Microsoft Graph and keep the new one (journaled, never printed).

    Whoever holds the old password (a partner of the retired route) can no longer sign in.

    Examples:

    \b
      m365archive credentials rotate --dry-run --report rotate.md --plan-out rotate.json
      m365archive credentials rotate --plan rotate.json --yes
    """
    from m365archive.app import pipeline
    from m365archive.app.credentials import CredentialsRotate

    cli = state(ctx)
    config = cli.load_config()
    env = cli.env(password_file=password_file)
    procedure = call(cli, lambda: CredentialsRotate(env, config))
    ui = changes.frontend(
        cli,
        yes,
        f"Reset the password of {procedure.store.upn}?",
        title=procedure.report_title,
        verbose=True,
        action="rotate",
        hint="add --yes to reset the password shown above",
    )
    opts = changes.options(dry_run, report, plan_out, plan_file, csv, expect_digest)
    result = run(cli, lambda: pipeline.run(env, config, procedure, opts, ui))
    finish(cli, changes.render(cli, result, detailed=detailed_exitcode, noun=procedure.noun))
