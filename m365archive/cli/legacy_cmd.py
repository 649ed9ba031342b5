"""`m365archive legacy cleanup`: remove what the retired route left behind, keep its data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from m365archive.cli.common import CliState, Output, confirm_apply, finish, run, state, write_text
from m365archive.result import CommandError, ExitCode, Result

if TYPE_CHECKING:
    from m365archive.engine.plan import Plan

app = typer.Typer(
    help="The retired EWS partner route: find and remove what it left behind.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("cleanup")
def cleanup(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan and report; send no write.")] = False,
    account: Annotated[
        list[str] | None,
        typer.Option("--account", metavar="UPN", help="A catch-all account to clean up (repeatable)."),
    ] = None,
    rotate_password: Annotated[
        bool,
        typer.Option("--rotate-password", help="Rotate the catch-all's password instead of blocking its sign-in."),
    ] = False,
    report: Annotated[Path | None, typer.Option(help="Write the change-ticket report (Markdown) here.")] = None,
    plan_out: Annotated[Path | None, typer.Option("--plan-out", help="Save the plan (JSON) to apply later.")] = None,
    plan_file: Annotated[
        Path | None, typer.Option("--plan", help="Apply exactly this saved plan (refused if the tenant changed).")
    ] = None,
    csv: Annotated[Path | None, typer.Option("--csv", help="One row per target and change (CSV).")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking.")] = False,
    detailed_exitcode: Annotated[
        bool, typer.Option("--detailed-exitcode", help="With --dry-run: exit 2 when changes are pending (for CI).")
    ] = False,
) -> None:
    """Delete the connector app's service principal; take the catch-all account's admin role away and block
    its sign-in; delete its password from this machine. Its mailbox, archive and hold are kept.

    Catch-all accounts come from the config ([catchall] upn, connector.legacy_catchall) or --account;
    accounts that only look like one are listed, never changed.

    Examples:

    \b
      m365archive legacy cleanup --dry-run --report cleanup.md --plan-out cleanup.json
      m365archive legacy cleanup --plan cleanup.json --yes
    """
    from m365archive.legacy import CleanupOptions

    cli = state(ctx)
    config = cli.load_config()
    env = cli.env()
    options = CleanupOptions(accounts=list(account or []), rotate_password=rotate_password)
    files = (report, plan_out, plan_file, csv)
    result = run(cli, lambda: _cleanup(cli, config, env, options, dry_run, files, yes, detailed_exitcode))
    finish(cli, result)


async def _cleanup(
    cli: CliState,
    config: Any,
    env: Any,
    options: Any,
    dry_run: bool,
    files: tuple[Path | None, Path | None, Path | None, Path | None],
    yes: bool,
    detailed: bool,
) -> Result:
    from m365archive.core import connect
    from m365archive.engine.plan import Plan, PlanFormatError
    from m365archive.legacy import apply_cleanup, build_cleanup_plan, load_fresh
    from m365archive.report import console as console_report
    from m365archive.report import csvout, jsonout, markdown

    report, plan_out, plan_file, csv = files
    saved: Plan | None = None
    if plan_file is not None:
        try:
            saved = Plan.from_dict(json.loads(plan_file.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise CommandError(f"{plan_file}: no such plan file", ExitCode.USAGE) from None
        except (ValueError, PlanFormatError) as exc:
            raise CommandError(f"{plan_file}: {exc}", ExitCode.USAGE) from None
    async with connect(env, config) as session:
        if saved is not None:
            await load_fresh(env, config, session, saved)
            plan = saved
        else:
            plan = await build_cleanup_plan(env, config, session, options)
        if report:
            write_text(report, markdown.render_plan(plan, title="m365archive legacy cleanup plan"))
        if plan_out:
            write_text(plan_out, plan.to_json())
        if csv:
            csvout.write_changes(csv, plan)
        pending = plan.pending
        _show_plan(cli, plan)
        if dry_run or not pending:
            code = ExitCode.CHANGES if (detailed and pending) else ExitCode.OK
            messages = []
            if cli.output is Output.human:
                messages.append(
                    f"Dry run: {len(pending)} removal(s) planned, nothing sent."
                    if pending
                    else "Nothing to clean up: no access of the retired route is left."
                )
                if report:
                    messages.append(f"Report written to {report}")
                if plan_out:
                    messages.append(
                        f"Plan saved to {plan_out}; apply it with `m365archive legacy cleanup --plan {plan_out}`"
                    )
            data = jsonout.plan_document(plan) if cli.output is Output.json else {}
            return Result("legacy cleanup", code, data=data, messages=messages)
        if not confirm_apply(cli, yes, f"Apply {len(pending)} removal(s) to {plan.tenant.get('domain')}?"):
            return Result("legacy cleanup", ExitCode.OK, messages=["Nothing applied."])
        from m365archive.cli.progress import live_progress

        with live_progress(cli):
            result = await apply_cleanup(env, config, session, plan)
    if csv:
        csvout.write_changes(csv, plan, result)
    if cli.output is Output.human:
        console_report.print_apply_result(cli.out, plan, result)
    elif cli.output is Output.markdown:
        cli.out.print(markdown.render_apply_result(plan, result), markup=False, highlight=False, soft_wrap=True)
    code = {"success": ExitCode.OK, "partial": ExitCode.PARTIAL, "interrupted": ExitCode.INTERRUPTED}.get(
        result.status, ExitCode.ERROR
    )
    if any("timed out" in o.detail for o in result.failed) and code is not ExitCode.PARTIAL:
        code = ExitCode.TIMEOUT
    return Result("legacy cleanup", code, data=jsonout.result_document(plan, result))


def _show_plan(cli: CliState, plan: Plan) -> None:
    from m365archive.report import console as console_report
    from m365archive.report import markdown

    if cli.output is Output.human:
        console_report.print_plan(cli.out, plan, verbose=cli.verbose > 0)
    elif cli.output is Output.markdown:
        cli.out.print(
            markdown.render_plan(plan, title="m365archive legacy cleanup plan"),
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
