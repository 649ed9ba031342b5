"""Compact human output with rich tables, for the terminal.

Tenant-sourced strings are always wrapped in `Text` (markup off): a display name like
"[bold]Legal" is printed as typed, never interpreted. Large steps are summarized as in the
Markdown report; `verbose` adds the exact operations.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from m365archive.engine.plan import Plan
from m365archive.engine.runner import ApplyResult, OutcomeKind, RunStatus
from m365archive.report import (
    ACTIONS,
    BAD_OUTCOMES,
    OUTCOMES,
    WARNING_TARGETS_SHOWN,
    ChangeView,
    Presenter,
    StepView,
    accepted_text,
    action_counts,
    category_summary,
    findings_by_severity,
    outcome_counts,
    outcomes_by_change,
    pretty_json,
    setting_value,
    shape_groups,
    text,
)

SEVERITY_STYLE = {"critical": "bold red", "high": "red", "warning": "yellow", "info": "cyan"}
ACTION_STYLE = {"create": "green", "update": "yellow", "delete": "red", "no-op": "dim"}
OUTCOME_STYLE = {
    OutcomeKind.OK: "green",
    OutcomeKind.RESUMED: "green",
    OutcomeKind.FAILED: "bold red",
    OutcomeKind.INTERRUPTED: "yellow",
    OutcomeKind.SKIPPED: "red",
    OutcomeKind.NOT_RUN: "yellow",
}


def _t(value: object, style: str = "") -> Text:
    return Text(value if isinstance(value, str) else text(value), style=style)


def _notices(console: Console, p: Presenter) -> None:
    for notice in p.notices():
        console.print(Panel(Text(notice), title="Notice", title_align="left", border_style="yellow"))


def _header(console: Console, p: Presenter) -> None:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for key, value in p.header():
        grid.add_row(Text(key), Text(value))
    console.print(grid)


def _checks(console: Console, p: Presenter) -> None:
    checks = p.checks()
    if not checks:
        return
    table = Table(title=Text("Prerequisite checks"), title_justify="left", show_lines=False)
    table.add_column("Check", overflow="fold")
    table.add_column("Result", overflow="fold")
    table.add_column("Remedy", overflow="fold")
    styles = {"pass": "green", "FAIL": "bold red", "advisory": "yellow"}
    for c in checks:
        table.add_row(Text(c["title"]), Text(c["result"], style=styles[c["result"]]), Text(c["remedy"] or "—"))
    console.print(table)


def _findings(console: Console, p: Presenter) -> None:
    findings = p.findings()
    if not findings:
        return
    table = Table(title=Text("Findings (not changed by this plan)"), title_justify="left")
    for column in ("Severity", "Step", "Target", "Message", "Remedy"):
        table.add_column(column, overflow="fold")
    for f in findings:
        accepted = accepted_text(f)
        table.add_row(
            Text(
                f["severity"].upper() + (" (accepted)" if accepted else ""), style=SEVERITY_STYLE.get(f["severity"], "")
            ),
            Text(f["step"]),
            Text(f["target"]),
            Text(f["message"] + (f"\n{accepted}" if accepted else "")),
            Text(f["remedy"] or "—"),
        )
    console.print(table)


def _step_table(step: StepView, changes: Sequence[ChangeView], title: str) -> Table:
    """One row per change; when every row has the same target, it is named once, in the title."""
    one_target = len({c.target for c in changes}) == 1
    if one_target:
        title = f"{title}: {changes[0].target}"
    table = Table(title=Text(title), title_justify="left")
    columns = ["Setting", "Current → Desired", "Action", "Runs on"]
    for column in columns if one_target else ["Target", *columns]:
        table.add_column(column, overflow="fold")
    for c in changes:
        row = [
            _t(c.setting),
            _t(c.before_after()),
            Text(c.action.value, style=ACTION_STYLE.get(c.action.value, "")),
            _t(c.side or "—"),
        ]
        table.add_row(*row if one_target else [_t(c.target), *row])
    return table


def _summary_table(step: StepView, title: str) -> Table:
    table = Table(title=Text(title), title_justify="left")
    table.add_column("Category", overflow="fold")
    table.add_column("Setting", overflow="fold")
    for action in ACTIONS:
        table.add_column(action.value, justify="right", no_wrap=True)
    for category, setting, counts in category_summary(step.changes):
        table.add_row(_t(category), _t(setting), *[Text(str(counts[a.value])) for a in ACTIONS])
    return table


def _operation(console: Console, c: ChangeView, heading: str) -> None:
    console.print(Text(heading, style="bold"))
    op = c.operation
    if op is None:
        console.print(Text("  no operation: made by hand (see the manual steps)"))
        return
    console.print(Text("  " + op.display))
    if op.body is not None:
        console.print(Text("\n".join("    " + row for row in pretty_json(op.body).splitlines())))
    if op.powershell and op.powershell != op.display:
        console.print(Text("  PowerShell: " + op.powershell))
    if c.rollback:
        console.print(Text("  Rollback: " + c.rollback, style="dim"))
    if c.rollback_note:
        console.print(Text(("    " if c.rollback else "  Rollback: ") + c.rollback_note, style="dim"))


def print_plan(console: Console, plan: Plan, *, verbose: bool = False, appendix_threshold: int = 50) -> None:
    """Notices first, then header, checks, changes per step (pending only unless verbose),
    warnings, findings, coverage and manual steps; verbose adds the exact operations."""
    p = Presenter(plan)
    steps = p.steps(appendix_threshold)
    _notices(console, p)
    _header(console, p)
    _checks(console, p)
    for step in steps:
        counts = action_counts(step.changes)
        summary = ", ".join(f"{n} {a}" for a, n in counts.items() if n)
        if step.large:
            console.print(_summary_table(step, f"{step.name} ({summary}; summarized)"))
            continue
        shown = step.changes if verbose else step.pending
        if shown:
            console.print(_step_table(step, shown, f"{step.name} ({summary})"))
        else:
            console.print(Text(f"{step.name}: {summary}: nothing to change", style="dim"))
    warnings = p.warnings()
    if warnings:
        console.print(Text("Warnings", style="bold yellow"))
        for warning, targets in warnings:
            shown_targets = ", ".join(targets[:WARNING_TARGETS_SHOWN])
            more = len(targets) - WARNING_TARGETS_SHOWN
            if more > 0:
                shown_targets += f" and {more} more"
            console.print(
                Text.assemble(Text("  ! ", style="yellow"), Text(warning), Text(f" ({shown_targets})", style="dim"))
            )
    if verbose:
        for step in steps:
            pending = step.pending
            if not pending:
                continue
            console.print(Text(f"Exact operations: {step.name}", style="bold underline"))
            if step.large:
                for shape, count, example in shape_groups(pending):
                    _operation(console, example, f"{shape} × {count} (example: {example.target})")
            else:
                for c in pending:
                    _operation(console, c, f"{c.action.value}: {c.setting} — {c.target}")
    _findings(console, p)
    coverage = p.coverage()
    if coverage:
        console.print(Text("Coverage", style="bold"))
        for item in coverage:
            console.print(Text("  - " + item))
    instructions = p.instructions()
    if instructions:
        console.print(Text("Manual steps (not done by apply)", style="bold"))
        for number, item in enumerate(instructions, 1):
            console.print(Text(f"  {number}. {item}"))
    counts = plan.counts()
    by_severity = findings_by_severity(plan)
    findings_text = ", ".join(f"{n} {s}" for s, n in by_severity.items() if n) or "none"
    console.print(
        Text(
            f"Plan: {counts['create']} to create, {counts['update']} to update, {counts['delete']} to delete, "
            f"{counts['no-op']} unchanged. Findings: {findings_text}.",
            style="bold",
        )
    )


def print_status(
    console: Console,
    plan: Plan,
    *,
    appendix_threshold: int = 50,
    drift_only: bool = False,
    limit: int | None = None,
) -> None:
    """Drift: settings that differ, and in-sync counts per step. `drift_only` leaves out in-sync rows;
    `limit` shows at most that many rows per step and says how many more there are."""
    p = Presenter(plan)
    _notices(console, p)
    _header(console, p)
    for step in p.steps():
        drift = step.pending
        in_sync = len(step.changes) - len(drift)
        title = f"{step.name}: {in_sync} in sync, {len(drift)} DRIFT"
        rows = step.changes if len(step.changes) <= appendix_threshold and not drift_only else drift
        if not rows:
            console.print(Text(title, style="green"))
            continue
        shown = rows if not limit else rows[:limit]
        table = Table(title=Text(title), title_justify="left")
        for column in ("Target", "Setting", "Desired", "Actual", "State"):
            table.add_column(column, overflow="fold")
        for c in shown:
            state = Text("DRIFT", style="bold red") if c.pending else Text("in sync", style="green")
            table.add_row(_t(c.target), _t(c.setting), _t(setting_value(c.after)), _t(setting_value(c.before)), state)
        console.print(table)
        if len(shown) < len(rows):
            console.print(Text(f"  … and {len(rows) - len(shown):,} more (--limit 0 shows every row)"))
    _findings(console, p)
    drift_total = len(plan.pending)
    by_severity = findings_by_severity(plan)
    findings_text = ", ".join(f"{n} {s}" for s, n in by_severity.items() if n) or "none"
    console.print(
        Text(
            f"Status: {len(plan.changes) - drift_total} in sync, {drift_total} DRIFT. Findings: {findings_text}.",
            style="bold",
        )
    )


def print_apply_result(console: Console, plan: Plan, result: ApplyResult) -> None:
    """Counts per outcome, then each failure (failed, skipped, not run) with its reason."""
    p = Presenter(plan)
    steps = {c.id: c.step for c in plan.changes}
    outcomes = {cid: p.outcome(o) for cid, o in outcomes_by_change(plan, result).items()}
    bad = [(cid, o) for cid, o in outcomes.items() if o.outcome in BAD_OUTCOMES]
    if bad:
        table = Table(title=Text("Not applied"), title_justify="left")
        for column in ("Step", "Target", "Setting", "Outcome", "Detail"):
            table.add_column(column, overflow="fold")
        for cid, o in bad:
            table.add_row(
                _t(steps.get(cid, "—")),
                _t(o.target),
                _t(o.setting),
                Text(o.outcome, style=OUTCOME_STYLE.get(o.outcome, "")),
                _t(o.detail or "—"),
            )
        console.print(table)
    counts = outcome_counts(plan, result)
    summary = ", ".join(f"{counts[o]} {o}" for o in OUTCOMES if counts[o])
    style = {RunStatus.SUCCESS: "bold green", RunStatus.PARTIAL: "bold yellow"}.get(result.status, "bold red")
    console.print(Text(f"Apply {result.status}: {summary or 'nothing to do'} (run {result.run_id}).", style=style))


__all__ = ["print_apply_result", "print_plan", "print_status"]
