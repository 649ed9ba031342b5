"""What every command that changes the tenant shares on the command line: the flags of `setup`,
how the plan is shown and confirmed, live progress, Ctrl-C, and how the pipeline's result is rendered."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from m365archive.cli.common import CliState, Output, confirm_apply
from m365archive.cli.exits import for_pipeline
from m365archive.result import Result

if TYPE_CHECKING:
    from m365archive.app.pipeline import Frontend, PipelineOptions, PipelineResult
    from m365archive.engine.plan import Plan
    from m365archive.engine.runner import Runner
    from m365archive.report.ticket import TicketContext

DryRun = Annotated[bool, typer.Option("--dry-run", help="Plan and report; send no write.")]
Report = Annotated[Path | None, typer.Option("--report", help="Write the change-ticket report (Markdown) here.")]
PlanOut = Annotated[Path | None, typer.Option("--plan-out", help="Save the plan (JSON) to apply later.")]
PlanIn = Annotated[
    Path | None,
    typer.Option("--plan", help="Apply exactly this saved plan (refused if edited or the tenant changed)."),
]
ExpectDigest = Annotated[
    str | None, typer.Option("--expect-digest", metavar="DIGEST", help="With --plan: the approved plan's digest.")
]
Csv = Annotated[Path | None, typer.Option("--csv", help="One row per target and change (CSV).")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking.")]
DetailedExitcode = Annotated[
    bool, typer.Option("--detailed-exitcode", help="With --dry-run: exit 2 when changes are pending (for CI).")
]


def options(
    dry_run: bool,
    report: Path | None,
    plan_out: Path | None,
    plan_file: Path | None,
    csv: Path | None,
    expect_digest: str | None = None,
    *,
    ticket: TicketContext | None = None,
) -> PipelineOptions:
    from m365archive.app.pipeline import PipelineOptions

    return PipelineOptions(
        dry_run=dry_run,
        report=report,
        plan_out=plan_out,
        plan_file=plan_file,
        csv=csv,
        expect_digest=expect_digest,
        ticket=ticket,
    )


def ticket(cli: CliState, command: str, plan_file: Path | None, cloud: str) -> TicketContext:
    """The change ticket's fields only the command line knows: target, config file, the apply command."""
    from m365archive.report.ticket import context_for

    return context_for(
        sim_url=cli.sim_url, cloud=cloud, config_path=cli.config_path, plan_out=plan_file, command=command
    )


def frontend(
    cli: CliState,
    yes: bool,
    question: str,
    *,
    title: str = "",
    verbose: bool = False,
    action: str = "apply",
    hint: str = "add --yes to apply the plan shown above",
) -> Frontend:
    """Show the plan (human or Markdown), ask `question` (refused without a terminal unless --yes),
    show progress while applying, stop gracefully on the first Ctrl-C."""
    from m365archive.app.pipeline import Frontend
    from m365archive.cli.progress import live_progress

    def show(plan: Plan) -> None:
        from m365archive.report import console as console_report
        from m365archive.report import markdown

        if cli.output is Output.human:
            console_report.print_plan(cli.out, plan, verbose=verbose or cli.verbose > 0)
        elif cli.output is Output.markdown:
            doc = markdown.render_plan(plan, title=title) if title else markdown.render_plan(plan)
            cli.print_markdown(doc)

    def confirm(plan: Plan) -> bool:
        asked = question.replace("{count}", str(len(plan.pending))).replace("{domain}", plan.tenant.get("domain", ""))
        return confirm_apply(cli, yes, asked, action=action, hint=hint)

    def say(line: str) -> None:
        if cli.output is not Output.json:
            cli.err.print(line, markup=False, highlight=False)

    return Frontend(
        show_plan=show,
        say=say,
        confirm=confirm,
        applying=lambda: live_progress(cli),
        on_runner=lambda r: stop_on_ctrl_c(cli, r),
    )


def stop_on_ctrl_c(cli: CliState, runner: Runner) -> None:
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


def render(cli: CliState, result: PipelineResult, *, detailed: bool = False, noun: str = "change(s)") -> Result:
    """The pipeline's result as the command's Result: messages (human), the envelope's data (json)."""
    from m365archive.app.pipeline import Outcome
    from m365archive.engine.runner import secrets_not_set
    from m365archive.report import console as console_report
    from m365archive.report import jsonout, markdown

    plan, applied = result.plan, result.applied
    code = for_pipeline(result, detailed=detailed)
    messages: list[str] = []
    data: dict[str, Any] = {}
    if applied is not None:
        if cli.output is Output.human:
            console_report.print_apply_result(cli.out, plan, applied)
        elif cli.output is Output.markdown:
            cli.print_markdown(markdown.render_apply_result(plan, applied))
        if cli.output is Output.json:
            data = {"run_id": applied.run_id, **jsonout.result_document(plan, applied)}
            data["pending_directory_sync"] = applied.pending
            data["passwords_not_set"] = [c.target for c in secrets_not_set(plan, applied)]
        messages = list(result.notes)
    else:
        if result.outcome is Outcome.DECLINED:
            messages = ["Nothing applied."]
        elif result.outcome is Outcome.BLOCKED:
            messages = ["Not appliable: a blocking prerequisite check failed; nothing sent.", *result.notes]
        elif result.outcome is Outcome.NO_CHANGES:
            messages = list(result.notes) or ["No changes: the tenant is in the desired state."]
        else:
            messages = [f"Dry run: {result.pending} {noun} planned, nothing sent.", *result.notes]
        if result.report:
            messages.append(f"Report written to {result.report}")
        if result.plan_out:
            messages.append(
                f"Plan saved to {result.plan_out} (digest {plan.digest or plan.seal()}); apply it with "
                f"`m365archive {result.command} --plan {result.plan_out} --expect-digest {plan.digest}`"
            )
        if cli.output is Output.json:
            cloud = str(plan.tenant.get("cloud") or "global")
            data = jsonout.plan_document(plan, ticket(cli, result.command, result.plan_out, cloud))
    if cli.output is Output.json:
        data.update(result.data)
        messages = []
    return Result(result.command, code, data=data, messages=messages, errors=list(result.errors))
