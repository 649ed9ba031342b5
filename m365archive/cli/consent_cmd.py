"""`m365archive consent grant|status|revoke`: Step 5, the third-party data connector's consent."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from m365archive.cli.common import CliState, Output, confirm_apply, finish, run, state, write_text
from m365archive.result import CommandError, ExitCode, Result

if TYPE_CHECKING:
    from m365archive.consent import ConsentState

app = typer.Typer(
    help="Consent to the third-party data connector app (Step 5), check it, or revoke it.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _say(cli: CliState, line: str) -> None:
    """Progress and warnings go to stderr so stdout stays the command's answer."""
    if cli.output is not Output.json:
        cli.err.print(line, markup=False, highlight=False)


@app.command("grant")
def grant(
    ctx: typer.Context,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Print the consent URL; don't open it.")] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", metavar="SECONDS", help="How long to wait for the service principal.")
    ] = 600.0,
) -> None:
    """Open the admin-consent page for the connector, then wait until its service principal appears.

    A global administrator must accept in the browser. Exit 9 when it does not appear in time.

    Example:

    \b
      m365archive consent grant --no-browser --timeout 900
    """
    cli = state(ctx)
    config = cli.load_config()
    env = cli.env()
    finish(cli, run(cli, lambda: _grant(cli, config, env, no_browser, timeout)))


async def _grant(cli: CliState, config: Any, env: Any, no_browser: bool, timeout: float) -> Result:
    from m365archive.consent import (
        consent_state,
        consent_url,
        consent_url_caveat,
        new_consent_state_token,
        retirement_line,
        wait_for_consent,
    )
    from m365archive.core import connect

    _say(cli, "warning: " + retirement_line())
    async with connect(env, config) as session:
        before = await consent_state(session)
        if before.present:
            return _state_result(cli, "consent grant", before, ["Consent is already given; nothing to do."])
        url = consent_url(session.endpoints, new_consent_state_token())
        _say(cli, "A global administrator must sign in and accept at:")
        # the URL is the answer in human mode; in JSON mode stdout holds only the envelope
        (cli.err if cli.output is Output.json else cli.out).print(url, markup=False, highlight=False, soft_wrap=True)
        caveat = consent_url_caveat(session.endpoints)
        if caveat:
            _say(cli, "warning: " + caveat)
        if not no_browser:
            import webbrowser

            if not webbrowser.open(url):
                _say(cli, "no browser could be opened: open the URL above yourself")

        def progress(message: str) -> None:
            _say(cli, f"… {message}")

        after = await wait_for_consent(session, timeout, progress)
    result = _state_result(
        cli, "consent grant", after, ["Consent given: the connector's service principal is present."]
    )
    result.data["consent_url"] = url
    return result


@app.command("status")
def status(ctx: typer.Context) -> None:
    """Is the connector consented? Exit 0 present, 3 absent.

    Shows its service principal, when it was created (as far as Graph tells), its delegated
    permission grants and app role assignments.
    """
    cli = state(ctx)
    config = cli.load_config()
    env = cli.env()
    finish(cli, run(cli, lambda: _status(config, env, cli)))


async def _status(config: Any, env: Any, cli: CliState) -> Result:
    from m365archive.consent import consent_state, retirement_line
    from m365archive.core import connect

    async with connect(env, config) as session:
        current = await consent_state(session)
    extra = []
    if current.present:
        extra = [retirement_line(), "Remove it with `m365archive consent revoke` if no partner still needs it."]
    result = _state_result(cli, "consent status", current, extra)
    result.exit_code = ExitCode.OK if current.present else ExitCode.ABSENT
    return result


def _state_result(cli: CliState, command: str, current: ConsentState, extra: list[str]) -> Result:
    messages = current.lines() + extra if cli.output is not Output.json else extra
    return Result(command, ExitCode.OK, data=current.to_dict(), messages=messages)


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be deleted; send nothing.")] = False,
    report: Annotated[Path | None, typer.Option("--report", help="Write the change-ticket report (Markdown).")] = None,
) -> None:
    """Revoke consent: delete the connector's service principal (with its grants), then verify it is gone.

    Exit 0 when revoked or when there is nothing to revoke.

    Examples:

    \b
      m365archive consent revoke --dry-run --report revoke.md
      m365archive consent revoke --yes
    """
    cli = state(ctx)
    config = cli.load_config()
    env = cli.env()
    finish(cli, run(cli, lambda: _revoke(cli, config, env, yes, dry_run, report)))


async def _revoke(cli: CliState, config: Any, env: Any, yes: bool, dry_run: bool, report: Path | None) -> Result:
    from m365archive.consent import apply_exact, consent_state, revoke_plan
    from m365archive.core import connect, tenant_info
    from m365archive.report import console as console_report
    from m365archive.report import jsonout, markdown

    async with connect(env, config) as session:
        current = await consent_state(session)
        plan = revoke_plan(current, tenant_info(session), session.operator, config.procedure)
        if report:
            write_text(report, markdown.render_plan(plan, title="m365archive consent revoke"))
        messages = [f"Report written to {report}"] if report else []
        if not current.present:
            return Result(
                "consent revoke",
                ExitCode.OK,
                data={"revoked": False, "present": False},
                messages=["Connector consent is absent: nothing to revoke.", *messages],
            )
        if cli.output is Output.human:
            for line in current.lines():
                cli.out.print(line, markup=False, highlight=False)
            console_report.print_plan(cli.out, plan, verbose=True)
        elif cli.output is Output.markdown:
            cli.out.print(markdown.render_plan(plan), markup=False, highlight=False, soft_wrap=True)
        if dry_run:
            return Result(
                "consent revoke",
                ExitCode.OK,
                data=jsonout.plan_document(plan),
                messages=["Dry run: the service principal would be deleted; nothing sent.", *messages],
            )
        question = "Delete the connector's service principal (revoke consent)?"
        if not confirm_apply(
            cli, yes, question, action="revoke", hint="add --yes to delete the service principal shown above"
        ):
            return Result("consent revoke", ExitCode.OK, messages=["Nothing revoked."])
        result = await apply_exact(env, session, plan)
        after = await consent_state(session)
    failed = [o for o in result.outcomes if o.outcome != "ok"]
    if failed or after.present:
        detail = failed[0].detail if failed else "Graph still shows the service principal"
        raise CommandError(
            f"consent was not revoked: {detail}", ExitCode.TIMEOUT if "timed out" in detail else ExitCode.ERROR
        )
    return Result(
        "consent revoke",
        ExitCode.OK,
        data={"revoked": True, "present": False, "run_id": result.run_id, **jsonout.result_document(plan, result)},
        messages=["Consent revoked: the connector's service principal is deleted (verified).", *messages],
    )
