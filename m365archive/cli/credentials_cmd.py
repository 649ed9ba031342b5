"""`m365archive credentials show|rotate`: the catch-all account's password, kept in the keyring."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from m365archive.cli.common import CliState, Output, confirm_apply, finish, run, state, write_text
from m365archive.result import CommandError, ExitCode, Result

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
    cli = state(ctx)
    config = cli.load_config()
    env = cli.env(password_file=password_file)
    finish(cli, run(cli, lambda: _show(cli, config, env, show_secret)))


async def _show(cli: CliState, config: Any, env: Any, show_secret: bool) -> Result:
    from m365archive.consent import PasswordStore, retirement_line

    store = PasswordStore.for_config(env, config)
    store.check()
    current = store.current()
    pending = store.pending()
    data: dict[str, Any] = {"upn": store.upn, "store": store.where, "stored": bool(current), "pending": bool(pending)}
    messages = [f"Catch-all account: {store.upn}", f"Password kept in: {store.where}"]
    messages.append("Password: stored" if current else "Password: none stored")
    if pending:
        messages.append(
            "A rotation was interrupted: a pending password is kept beside the current one. "
            "Run `m365archive credentials rotate` to send it again and finish."
        )
    if show_secret and current:
        data["password"] = current
        messages.append(f"Password value: {current}")
        messages.append("warning: " + retirement_line())
    return Result("credentials show", ExitCode.OK, data=data, messages=messages)


@app.command("rotate")
def rotate(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Rotate without asking.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the change; send nothing.")] = False,
    report: Annotated[Path | None, typer.Option("--report", help="Write the change-ticket report (Markdown).")] = None,
    password_file: PasswordFile = None,
) -> None:
    """Reset the catch-all password through Microsoft Graph and keep the new one (journaled, never printed).

    Whoever holds the old password (a partner of the retired route) can no longer sign in.

    Examples:

    \b
      m365archive credentials rotate --dry-run --report rotate.md
      m365archive credentials rotate --yes
    """
    cli = state(ctx)
    config = cli.load_config()
    env = cli.env(password_file=password_file)
    finish(cli, run(cli, lambda: _rotate(cli, config, env, yes, dry_run, report)))


async def _rotate(cli: CliState, config: Any, env: Any, yes: bool, dry_run: bool, report: Path | None) -> Result:
    from m365archive.consent import PasswordStore, rotate_plan
    from m365archive.consent import rotate as apply_rotation
    from m365archive.core import connect
    from m365archive.report import console as console_report
    from m365archive.report import jsonout, markdown

    store = PasswordStore.for_config(env, config)
    store.check()  # before connecting: no keyring means nothing is read or written
    async with connect(env, config) as session:
        rotation = await rotate_plan(config, session, store)
        plan = rotation.plan
        if report:
            write_text(report, markdown.render_plan(plan, title="m365archive credentials rotate"))
        if cli.output is Output.human:
            console_report.print_plan(cli.out, plan, verbose=True)
        elif cli.output is Output.markdown:
            cli.out.print(markdown.render_plan(plan), markup=False, highlight=False, soft_wrap=True)
        notes = [f"Report written to {report}"] if report else []
        if rotation.resumed:
            notes.insert(0, "An interrupted rotation is finished: its pending password is sent again.")
        if dry_run:
            return Result(
                "credentials rotate",
                ExitCode.OK,
                data=jsonout.plan_document(plan),
                messages=["Dry run: the password would be reset; nothing sent.", *notes],
            )
        question = f"Reset the password of {store.upn}?"
        if not confirm_apply(cli, yes, question, action="rotate", hint="add --yes to reset the password shown above"):
            return Result("credentials rotate", ExitCode.OK, messages=["Nothing changed."])
        result = await apply_rotation(env, session, store, rotation)
    if result.status != "success":
        detail = result.outcomes[0].detail if result.outcomes else result.status
        raise CommandError(
            f"the password was not reset: {detail}",
            ExitCode.ERROR,
            "the stored password is unchanged; a pending value is kept only when Graph may have accepted it",
        )
    return Result(
        "credentials rotate",
        ExitCode.OK,
        data=jsonout.result_document(plan, result),
        messages=[*notes, f"Password of {store.upn} reset and stored in {store.where} (not shown)."],
    )
