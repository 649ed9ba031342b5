"""`m365archive consent grant|status|revoke`: Step 5, the third-party data connector's consent."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from m365archive.cli import changes, exits
from m365archive.cli.common import CliState, Output, finish, run, state
from m365archive.result import ExitCode, Result

if TYPE_CHECKING:
    from m365archive.app.consent import ConsentState

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
    from m365archive.app import consent

    cli = state(ctx)
    config = cli.load_config()
    env = cli.env()
    _say(cli, "warning: " + consent.retirement_line())

    def show_url(url: str, caveat: str | None) -> None:
        _say(cli, "A global administrator must sign in and accept at:")
        # the URL is the answer in human mode; in JSON or Markdown mode stdout holds only the document
        (cli.out if cli.output is Output.human else cli.err).print(url, markup=False, highlight=False, soft_wrap=True)
        if caveat:
            _say(cli, "warning: " + caveat)
        if not no_browser:
            import webbrowser

            if not webbrowser.open(url):
                _say(cli, "no browser could be opened: open the URL above yourself")

    outcome = run(
        cli,
        lambda: consent.grant(env, config, timeout, show_url=show_url, progress=lambda m: _say(cli, f"… {m}")),
    )
    if outcome.already:
        finish(cli, _state_result(cli, "consent grant", outcome.state, ["Consent is already given; nothing to do."]))
    result = _state_result(
        cli, "consent grant", outcome.state, ["Consent given: the connector's service principal is present."]
    )
    result.data["consent_url"] = outcome.url
    finish(cli, result)


@app.command("status")
def status(ctx: typer.Context) -> None:
    """Is the connector consented? Exit 0 present, 3 absent.

    Shows its service principal, when it was created (as far as Graph tells), its delegated
    permission grants and app role assignments.
    """
    from m365archive.app import consent

    cli = state(ctx)
    config = cli.load_config()
    env = cli.env()
    current = run(cli, lambda: consent.status(env, config))
    extra = []
    if current.present:
        extra = [consent.retirement_line(), "Remove it with `m365archive consent revoke` if no partner still needs it."]
    result = _state_result(cli, "consent status", current, extra)
    result.exit_code = exits.for_consent(present=current.present)
    finish(cli, result)


def _state_result(cli: CliState, command: str, current: ConsentState, extra: list[str]) -> Result:
    messages = current.lines() + extra if cli.output is not Output.json else extra
    return Result(command, ExitCode.OK, data=current.to_dict(), messages=messages)


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    dry_run: changes.DryRun = False,
    report: changes.Report = None,
    plan_out: changes.PlanOut = None,
    plan_file: changes.PlanIn = None,
    expect_digest: changes.ExpectDigest = None,
    csv: changes.Csv = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")] = False,
    detailed_exitcode: changes.DetailedExitcode = False,
) -> None:
    """Revoke consent: delete the connector's service principal (with its grants), then verify it is gone.

    Exit 0 when revoked or when there is nothing to revoke.

    Examples:

    \b
      m365archive consent revoke --dry-run --report revoke.md --plan-out revoke.json
      m365archive consent revoke --plan revoke.json --yes
    """
    from m365archive.app import pipeline
    from m365archive.app.consent import ConsentRevoke

    cli = state(ctx)
    config = cli.load_config()
    env = cli.env()
    procedure = ConsentRevoke(env, config)
    ui = changes.frontend(
        cli,
        yes,
        "Delete the connector's service principal (revoke consent)?",
        title=procedure.report_title,
        verbose=True,
        action="revoke",
        hint="add --yes to delete the service principal shown above",
    )
    opts = changes.options(dry_run, report, plan_out, plan_file, csv, expect_digest)
    result = run(cli, lambda: pipeline.run(env, config, procedure, opts, ui))
    finish(cli, changes.render(cli, result, detailed=detailed_exitcode, noun=procedure.noun))
