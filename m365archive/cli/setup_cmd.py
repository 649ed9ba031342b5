"""`m365archive setup`: plan, show, confirm, apply exactly, show the result."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from m365archive.cli.common import CliState, Output, confirm_apply, finish, run, state, write_text
from m365archive.cli.progress import live_progress
from m365archive.result import CommandError, ExitCode, Result

if TYPE_CHECKING:
    from m365archive.engine.plan import Plan


def register(app: typer.Typer) -> None:
    @app.command("setup")
    def setup(
        ctx: typer.Context,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan and report; send no write.")] = False,
        report: Annotated[Path | None, typer.Option(help="Write the change-ticket report (Markdown) here.")] = None,
        plan_out: Annotated[
            Path | None, typer.Option("--plan-out", help="Save the plan (JSON) to apply later.")
        ] = None,
        plan_file: Annotated[
            Path | None,
            typer.Option("--plan", help="Apply exactly this saved plan (refused if the tenant changed)."),
        ] = None,
        csv: Annotated[Path | None, typer.Option("--csv", help="One row per target and change (CSV).")] = None,
        yes: Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking.")] = False,
        detailed_exitcode: Annotated[
            bool,
            typer.Option("--detailed-exitcode", help="With --dry-run: exit 2 when changes are pending (for CI)."),
        ] = False,
        password_file: Annotated[
            Path | None,
            typer.Option(
                "--password-file",
                help="Keep the catch-all password in this 0600 file instead of the keyring.",
            ),
        ] = None,
    ) -> None:
        """Bring the tenant to the desired state in m365archive.toml.

        Examples:

        \b
          m365archive setup --dry-run --report plan.md --plan-out plan.json
          m365archive setup --plan plan.json --yes
        """
        cli = state(ctx)
        config = cli.load_config()
        env = cli.env(password_file=password_file)
        result = run(
            cli,
            lambda: _setup(cli, config, env, dry_run, report, plan_out, plan_file, csv, yes, detailed_exitcode),
        )
        finish(cli, result)


async def _setup(
    cli: CliState,
    config: Any,
    env: Any,
    dry_run: bool,
    report: Path | None,
    plan_out: Path | None,
    plan_file: Path | None,
    csv: Path | None,
    yes: bool,
    detailed: bool,
) -> Result:
    from m365archive.core import apply_plan, build_plan, check_fresh, connect
    from m365archive.engine.plan import Plan, PlanFormatError
    from m365archive.report import console as console_report
    from m365archive.report import csvout, jsonout, markdown

    saved: Plan | None = None
    if plan_file is not None:
        try:
            saved = Plan.from_dict(json.loads(plan_file.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise CommandError(f"{plan_file}: no such plan file", ExitCode.USAGE) from None
        except (ValueError, PlanFormatError) as exc:
            raise CommandError(f"{plan_file}: {exc}", ExitCode.USAGE) from None
    async with connect(env, config, max_concurrency=config.users.max_concurrency) as session:
        if saved is not None:
            await check_fresh(env, config, session, saved)
            plan = saved
        else:
            plan = await build_plan(env, config, session)
        if report:
            write_text(report, markdown.render_plan(plan))
        if plan_out:
            write_text(plan_out, plan.to_json())
        if csv:
            csvout.write_changes(csv, plan)
        pending = plan.pending
        if dry_run or not pending:
            _show_plan(cli, plan)
            code = ExitCode.CHANGES if (detailed and pending) else ExitCode.OK
            messages = []
            if cli.output is Output.human:
                if not pending:
                    messages.append("No changes: the tenant is in the desired state.")
                else:
                    messages.append(f"Dry run: {len(pending)} change(s) planned, nothing sent.")
                if report:
                    messages.append(f"Report written to {report}")
                if plan_out:
                    messages.append(f"Plan saved to {plan_out}; apply it with `m365archive setup --plan {plan_out}`")
            data = jsonout.plan_document(plan) if cli.output is Output.json else {}
            return Result("setup", code, data=data, messages=messages)
        _show_plan(cli, plan)
        if not confirm_apply(cli, yes, f"Apply {len(pending)} change(s) to {plan.tenant.get('domain')}?"):
            return Result("setup", ExitCode.OK, messages=["Nothing applied."])
        with live_progress(cli):
            result = await apply_plan(env, config, session, plan, runner_hook=lambda r: _stop_on_ctrl_c(cli, r))
        if csv:
            csvout.write_changes(csv, plan, result)
        if cli.output is Output.human:
            console_report.print_apply_result(cli.out, plan, result)
        elif cli.output is Output.markdown:
            cli.out.print(markdown.render_apply_result(plan, result), markup=False, highlight=False, soft_wrap=True)
        messages = []
        if result.pending:
            messages.append(
                f"{len(result.pending)} archive(s) enabled on-premises are not yet visible in Exchange "
                "Online (directory sync runs every 30 minutes by default); `m365archive status` "
                "shows them until they arrive: "
                + ", ".join(result.pending[:10])
                + (" ..." if len(result.pending) > 10 else "")
            )
        code = {"success": ExitCode.OK, "partial": ExitCode.PARTIAL, "interrupted": ExitCode.INTERRUPTED}.get(
            result.status, ExitCode.ERROR
        )
        if any("timed out" in o.detail for o in result.failed) and code is not ExitCode.PARTIAL:
            code = ExitCode.TIMEOUT
        data = {}
        if cli.output is Output.json:
            data = jsonout.result_document(plan, result)
            data["pending_directory_sync"] = result.pending
        return Result("setup", code, data=data, messages=messages)


def _stop_on_ctrl_c(cli: CliState, runner: Any) -> None:
    """First Ctrl-C: finish the requests in flight, journal them, stop. Second: stop now."""
    import asyncio
    import contextlib
    import signal

    loop = asyncio.get_running_loop()

    def first() -> None:
        runner.stop_requested = True
        cli.err.print("stopping after the requests in flight (Ctrl-C again to stop now)…", markup=False)
        loop.remove_signal_handler(signal.SIGINT)

    with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread, or no signals here
        loop.add_signal_handler(signal.SIGINT, first)


def _show_plan(cli: CliState, plan: Plan) -> None:
    from m365archive.report import console as console_report
    from m365archive.report import markdown

    if cli.output is Output.human:
        console_report.print_plan(cli.out, plan, verbose=cli.verbose > 0)
    elif cli.output is Output.markdown:
        cli.out.print(markdown.render_plan(plan), markup=False, highlight=False, soft_wrap=True)
