"""`m365archive history` and `history show RUN`: past runs from the journal, offline."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from m365archive.cli.common import Output, call, finish, print_table, state
from m365archive.engine.runner import RunStatus
from m365archive.result import ExitCode, Result

if TYPE_CHECKING:
    from m365archive.app.history import RunDetail, RunSummary

app = typer.Typer(
    help="Past runs from the journal (offline): `history` lists them, `history show RUN` shows one.",
    invoke_without_command=True,
    rich_markup_mode=None,
)

COUNT_ORDER = ("ok", "resumed", "failed", "skipped", "interrupted", "sending")


def counts_text(counts: dict[str, int]) -> str:
    """ "3 ok, 1 failed": the outcomes in a fixed order (`sending`: sent, never confirmed)."""
    keys = [k for k in COUNT_ORDER if counts.get(k)] + sorted(k for k in counts if k not in COUNT_ORDER)
    return ", ".join(f"{counts[k]} {k}" for k in keys) or "no changes"


def _row(run: RunSummary) -> list[str]:
    return [
        run.started,
        run.run_id[:8],
        run.command,
        run.operator,
        run.digest_short,
        counts_text(run.counts),
        run.status,
    ]


HEADERS = ["Started (UTC)", "Run", "Command", "Operator", "Plan digest", "Changes", "Status"]


@app.callback()
def history(
    ctx: typer.Context,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most N runs (newest first).")] = None,
) -> None:
    """List past runs, newest first: time, command, operator, plan digest, changes by outcome, status
    (success, partial, error, interrupted, crashed, running).

    Examples:

    \b
      m365archive history
      m365archive history --limit 5 -o json
      m365archive history show 3f2a9c1e
    """
    if ctx.invoked_subcommand is not None:
        return
    from m365archive.app import history as use_case

    cli = state(ctx)
    env = cli.env()
    runs = call(cli, lambda: use_case.runs(env, limit))
    data: dict[str, Any] = {}
    messages: list[str] = []
    if cli.output is Output.json:
        data = {"runs": [r.to_dict() for r in runs]}
    elif not runs:
        messages = ["No runs in the journal yet."]
    elif cli.output is Output.markdown:
        from m365archive.report.markdown import table

        cli.print_markdown("\n".join(["# m365archive history", "", *table(HEADERS, [_row(r) for r in runs])]))
    else:
        print_table(cli, HEADERS, [_row(r) for r in runs])
        for run in runs:
            if run.detail and run.status in (RunStatus.INTERRUPTED, RunStatus.CRASHED, RunStatus.ERROR):
                messages.append(f"{run.run_id[:8]} {run.status}: {run.detail}")
    finish(cli, Result("history", ExitCode.OK, data=data, messages=messages))


@app.command("show")
def show(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(metavar="RUN", help="A run id from `history` (or its first characters).")],
) -> None:
    """One run: what ran, with which plan, and each change it sent with its outcome and request id.

    Examples:

    \b
      m365archive history show 3f2a9c1e
      m365archive history show 3f2a9c1e -o markdown > run.md
    """
    from m365archive.app import history as use_case

    cli = state(ctx)
    env = cli.env()
    detail = call(cli, lambda: use_case.run(env, run_id))
    data: dict[str, Any] = {}
    if cli.output is Output.json:
        data = {"run": detail.run.to_dict(), "changes": [c.to_dict() for c in detail.changes]}
    elif cli.output is Output.markdown:
        cli.print_markdown(_markdown(detail))
    else:
        for name, value in _header(detail):
            cli.out.print(f"{name}: {value}", markup=False, highlight=False)
        cli.out.print()
        print_table(cli, CHANGE_HEADERS, [_change_row(c) for c in detail.changes])
    finish(cli, Result("history show", ExitCode.OK, data=data))


CHANGE_HEADERS = ["Change", "Target", "Setting", "Action", "Outcome", "Request id", "Detail"]


def _change_row(c: Any) -> list[str]:
    return [c.change_id, c.target, c.setting, c.action, c.outcome, c.request_id, c.detail]


def _header(detail: RunDetail) -> list[tuple[str, str]]:
    run = detail.run
    rows = [
        ("Run", run.run_id),
        ("Command", run.command),
        ("Status", run.status),
        ("Started (UTC)", run.started),
        ("Finished (UTC)", run.finished or "-"),
        ("Operator", run.operator),
        ("Tenant", run.tenant),
        ("Plan", run.plan_id),
        ("Plan digest", run.plan_digest or "-"),
        ("Changes", counts_text(run.counts)),
        ("Tool version", run.tool_version),
    ]
    if run.detail:
        rows.append(("Detail", run.detail))
    return rows


def _markdown(detail: RunDetail) -> str:
    from m365archive.report.markdown import cell, table

    lines = [f"# m365archive run {detail.run.run_id}", ""]
    lines += [f"- **{name}:** {cell(value)}" for name, value in _header(detail)]
    lines += ["", "## Changes", ""]
    lines += table(CHANGE_HEADERS, [_change_row(c) for c in detail.changes]) if detail.changes else ["None."]
    return "\n".join(lines)
