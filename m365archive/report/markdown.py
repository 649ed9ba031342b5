"""The change-ticket report (Markdown): what will change, exactly how, and what won't.

Pure functions returning strings. Every value goes through report.Presenter, so placeholders
read "(known after apply)" / "(sensitive value)" and nothing secret is ever written.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from m365archive.engine.plan import OperationKind, Plan
from m365archive.engine.runner import ApplyResult
from m365archive.report import (
    ACTIONS,
    BAD_OUTCOMES,
    OUTCOMES,
    SEVERITY_ORDER,
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
    ticket,
)
from m365archive.report.ticket import TicketContext


def cell(value: Any) -> str:
    """Table-cell text: pipes escaped, line breaks kept inside the cell."""
    shown = value if isinstance(value, str) else text(value)
    shown = shown.replace("|", "\\|")
    if "\n" in shown or "\r" in shown:
        shown = re.sub(r"\r\n|\r|\n", "<br>", shown)
    return shown or " "


def line(value: str) -> str:
    """Text on one Markdown line (list item, heading): no line breaks to escape out of it."""
    return re.sub(r"\s*[\r\n]+\s*", " ", value).strip()


def fence(body: str, lang: str = "") -> str:
    """A fenced block that the content can't close, whatever backticks a tenant string holds."""
    longest = max((len(m) for m in re.findall(r"`+", body)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{lang}\n{body}\n{ticks}"


def secret_block(heading: str, value: str) -> list[str]:
    """A secret on a line of its own in a fenced block: no Markdown renderer can cut or reformat it
    (in a table cell, a `|` ends the cell; outside code, `_` or `*` become emphasis)."""
    return [
        f"## {line(heading)}",
        "",
        "Copy the line inside the block exactly; nothing around it is part of the value.",
        "",
        fence(value, "text"),
        "",
    ]


def table(headers: Sequence[str], rows: list[list[Any]], align: list[str] | None = None) -> list[str]:
    marks = align or ["---"] * len(headers)
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join(marks) + "|"]
    out += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return out


def _notices(p: Presenter) -> list[str]:
    out: list[str] = []
    for notice in p.notices():
        paragraphs = notice.strip().splitlines() or [""]
        out.append(f"> **⚠ Notice:** {paragraphs[0]}")
        out += [f"> {para}".rstrip() for para in paragraphs[1:]]
        out.append("")
    return out


def _header(p: Presenter, ticket: TicketContext | None = None) -> list[str]:
    rows = [[k, v] for k, v in p.header()]
    if ticket is not None:
        rows = [
            ["Target", ticket.target],
            *rows,
            ["Config file", ticket.config_path or "(unknown)"],
            ["Config SHA-256", ticket.config_sha256 or "(unknown)"],
            ["Applies with", _with_digest(ticket.apply_command, p.plan)],
        ]
    return [*table(["Field", "Value"], rows), ""]


def _with_digest(command: str, plan: Plan) -> str:
    """The apply command with the approved digest: any other plan is refused (exit 12)."""
    command, sep, note = command.partition("  (")
    return f"{command} --expect-digest {plan.digest or plan.seal()}{sep}{note}"


def _cab(plan: Plan, p: Presenter) -> list[str]:
    """Duration, longest waits, roles needed and the risk summary: what the board decides on."""
    out = ["## For the change board", ""]
    out += [f"- **Expected duration:** {ticket.duration_text(plan)}."]
    out += [f"- {line(p.string(r))}" for r in ticket.risk_summary(plan)]
    out += [""]
    waits = ticket.waits(plan)
    if waits:
        out += ["### Longest waits", ""]
        out += table(
            ["Wait", "Up to", "Times"],
            [[p.string(d), ticket.minutes(t), n] for d, t, n in waits],
            ["---", "---:", "---:"],
        )
        out += [""]
    rows = ticket.requirement_rows(plan)
    if rows:
        out += ["### Roles and permissions the operator needs for this plan", ""]
        out += table(
            ["For", "Entra role", "Exchange role group", "Graph (delegated)", "Graph / Exchange (app-only)"], rows
        )
        out += [""]
    return out


def _backout(plan: Plan, p: Presenter, appendix_threshold: int) -> list[str]:
    """Every pending change's undo, in reverse dependency order, with what each step loses."""
    order = ticket.backout_order(plan.pending)
    out = ["## Back-out plan", ""]
    if not order:
        return [*out, "Nothing to back out: the plan changes nothing.", ""]
    out += [
        "Undo in this order (reverse dependency order: each change before what it depended on). Each step says "
        "what undoing it does and loses; a step without a command can't be undone or is done by hand.",
        "",
    ]
    per_setting: dict[tuple[str, str], int] = {}
    for c in order:
        per_setting[(c.step, c.setting)] = per_setting.get((c.step, c.setting), 0) + 1
    shown: set[tuple[str, str]] = set()
    number = 0
    for c in order:
        key = (c.step, c.setting)
        many = per_setting[key] > appendix_threshold
        if many and key in shown:
            continue
        shown.add(key)
        number += 1
        view = p.change(c)
        more = f" and {per_setting[key] - 1} more like it" if many else ""
        out += [f"### {number}. {line(view.setting)} — {line(view.target)}{more}", ""]
        note = view.rollback_note or ("" if view.rollback else "no rollback recorded for this change")
        if note:
            out += [line(note), ""]
        if view.rollback:
            out += [fence(view.rollback, "powershell"), ""]
    return out


def _checks(p: Presenter) -> list[str]:
    """Blocking prerequisites (a failure stops apply before any write, exit 7) apart from advisory
    checks (shown with what to do; the plan goes ahead)."""
    rows = p.check_rows()
    out = ["## Prerequisite checks", ""]
    if not rows:
        return [*out, "No prerequisite checks were recorded.", ""]
    blocking = [r for r in rows if r[3]]
    advisory = [r for r in rows if not r[3]]
    if blocking:
        out += ["Blocking: a failure stops apply before any write (exit 7).", ""]
        out += table(
            ["Check", "Result", "Remedy"], [[n, "pass" if ok else "**FAIL**", d or "—"] for n, ok, d, _ in blocking]
        )
        out += [""]
    if advisory:
        out += ["Advisory: shown with what to do; they don't stop this plan.", ""]
        out += table(
            ["Check", "Result", "Remedy"],
            [[n, "pass" if ok else "not met (advisory)", d or "—"] for n, ok, d, _ in advisory],
        )
        out += [""]
    return out


def _sign_off() -> list[str]:
    return ["## Sign-off", "", *table(["Field", "Value"], [[f, " "] for f in ticket.SIGN_OFF]), ""]


def _findings_table(findings: list[dict[str, str]]) -> list[str]:
    return table(
        ["Severity", "Step", "Target", "Message", "Remedy", "Accepted risk", "Id"],
        [
            [
                f["severity"].upper(),
                f["step"],
                f["target"],
                f["message"],
                f["remedy"] or "—",
                accepted_text(f) or "no",
                f"`{f['id']}`" if "`" not in f["id"] else f["id"],
            ]
            for f in findings
        ],
    )


def _change_rows(changes: Sequence[ChangeView]) -> list[list[Any]]:
    return [[c.target, c.setting, c.before_after(), c.action.value, c.side or "—"] for c in changes]


CHANGE_HEADERS = ["Target", "Setting", "Current → Desired", "Action", "Runs on"]


def _operation_block(c: ChangeView) -> list[str]:
    op = c.operation
    if op is None:
        return ["No operation: this change is made by hand (see the manual steps).", ""]
    out: list[str] = []
    if op.kind == OperationKind.GRAPH or op.display != op.powershell:
        out += [f"Request ({op.kind}):", "", fence(op.display, "http"), ""]
        if op.body is not None:
            out += [fence(pretty_json(op.body), "json"), ""]
    if op.powershell:
        label = "PowerShell:" if op.display != op.powershell else f"Cmdlet ({op.kind}):"
        out += [label, "", fence(op.powershell, "powershell"), ""]
    return out


def _rollback_block(c: ChangeView) -> list[str]:
    """How to undo it: the PowerShell line (fenced, so it is copied whole) and what undoing does."""
    if not c.rollback and not c.rollback_note:
        return []
    out = ["Rollback:" + (f" {line(c.rollback_note)}" if c.rollback_note else ""), ""]
    if c.rollback:
        out += [fence(c.rollback, "powershell"), ""]
    return out


def _exact_operations(steps: list[StepView]) -> list[str]:
    out = ["## Exact operations", ""]
    if not any(s.pending for s in steps):
        return [*out, "None: every setting is already in the desired state.", ""]
    out += ["What apply sends, request by request, in this order of steps.", ""]
    for step in steps:
        pending = step.pending
        if not pending:
            continue
        out += [f"### {step.name}", ""]
        if step.large:
            groups = shape_groups(pending)
            out += [
                f"{len(pending)} changes in {len(groups)} operation shape(s); each shape is shown once with "
                f"an example. Every target is listed in [Appendix: {step.name}](#{_anchor('appendix', step.name)}).",
                "",
            ]
            for shape, count, example in groups:
                out += [
                    f"#### `{line(shape)}` — {count} change(s)",
                    "",
                    f"Example: **{line(example.setting)}** on {line(example.target)}",
                    "",
                ]
                out += _operation_block(example)
                out += _rollback_block(example)
            continue
        for number, c in enumerate(pending, 1):
            out += [f"#### {number}. {c.action.value}: {line(c.setting)} — {line(c.target)}", ""]
            if c.sensitive:
                out += ["*Sensitive: secret values are masked and resolved only when applied.*", ""]
            out += _operation_block(c)
            out += _rollback_block(c)
    return out


def _anchor(*words: str) -> str:
    return re.sub(r"[^a-z0-9_-]", "", "-".join(words).lower().replace(" ", "-"))


def render_plan(
    plan: Plan,
    *,
    title: str = "m365archive change plan",
    appendix_threshold: int = 50,
    ticket: TicketContext | None = None,
) -> str:
    """The change-ticket report: notices, header (with the CAB fields when `ticket` is given), the
    board's summary, checks, warnings, changes per step, exact operations, back-out plan, findings,
    coverage, manual steps, sign-off, and appendices for large steps."""
    p = Presenter(plan)
    steps = p.steps(appendix_threshold)
    out = [f"# {line(title)}", ""]
    out += _notices(p)
    blocked = [c for c in p.checks() if c["result"] == "FAIL"]
    if blocked:
        out += [
            f"> **Not appliable:** {len(blocked)} blocking prerequisite check(s) failed (see "
            "Prerequisite checks); apply refuses this plan before any write.",
            "",
        ]
    out += _header(p, ticket)
    out += _cab(plan, p)

    counts = plan.counts()
    by_severity = findings_by_severity(plan)
    out += ["## Summary", ""]
    out += table([a.value for a in ACTIONS], [[counts[a.value] for a in ACTIONS]], ["---:"] * len(ACTIONS))
    out += [""]
    out += table(
        [*[f"findings: {s.value}" for s in SEVERITY_ORDER], "accepted risks"],
        [[*[by_severity[s.value] for s in SEVERITY_ORDER], by_severity["accepted"]]],
        ["---:"] * (len(SEVERITY_ORDER) + 1),
    )
    out += [""]

    out += _checks(p)

    warnings = p.warnings()
    if warnings:
        out += ["## Warnings: weighty or irreversible actions", ""]
        for warning, targets in warnings:
            shown = ", ".join(line(t) for t in targets[:WARNING_TARGETS_SHOWN])
            more = len(targets) - WARNING_TARGETS_SHOWN
            if more > 0:
                shown += f" and {more} more"
            out += [f"- **{line(warning)}**", f"  Applies to: {shown}"]
        out += [""]

    out += ["## Changes", ""]
    if not steps:
        out += ["The plan holds no changes.", ""]
    for step in steps:
        pending = step.pending
        counts_step = action_counts(step.changes)
        out += [f"### {step.name}", "", ", ".join(f"{n} {a}" for a, n in counts_step.items()) + ".", ""]
        if step.large:
            out += [
                f"{len(pending)} pending changes: summarized by category and setting; every target is in "
                f"[Appendix: {step.name}](#{_anchor('appendix', step.name)}).",
                "",
            ]
            out += table(
                ["Category", "Setting", *[a.value for a in ACTIONS]],
                [[cat, setting, *[n[a.value] for a in ACTIONS]] for cat, setting, n in category_summary(step.changes)],
                ["---", "---", *["---:"] * len(ACTIONS)],
            )
        else:
            out += table(CHANGE_HEADERS, _change_rows(step.changes))
        out += [""]

    out += _exact_operations(steps)
    out += _backout(plan, p, appendix_threshold)

    findings = p.findings()
    many_findings = len(findings) > appendix_threshold
    out += ["## Findings", ""]
    if many_findings:
        out += [
            f"{len(findings)} findings: what this plan will not or cannot change, counted here and listed "
            "one by one in [Appendix: findings](#appendix-findings).",
            "",
        ]
        counted: dict[tuple[str, str, str], int] = {}
        for f in findings:
            key = (f["severity"].upper(), f["step"], f["category"] or "(uncategorized)")
            counted[key] = counted.get(key, 0) + 1
        out += table(
            ["Severity", "Step", "Category", "Count"],
            [[*k, n] for k, n in counted.items()],
            ["---", "---", "---", "---:"],
        )
    elif findings:
        out += ["What this plan will not or cannot change: read each before approving.", ""]
        out += _findings_table(findings)
    else:
        out += ["No findings."]
    out += [""]

    coverage = p.coverage()
    if coverage:
        out += ["## Coverage", ""]
        out += [f"- {line(c)}" for c in coverage]
        out += [""]

    instructions = p.instructions()
    if instructions:
        out += ["## Manual steps", "", "These are not done by apply; do them in this order.", ""]
        out += [f"{n}. {line(i)}" for n, i in enumerate(instructions, 1)]
        out += [""]

    out += _sign_off()

    for step in steps:
        if step.large:
            out += [f"## Appendix: {step.name}", ""]
            out += table(CHANGE_HEADERS, _change_rows(step.changes))
            out += [""]
    if many_findings:
        out += ["## Appendix: findings", ""]
        out += _findings_table(findings)
        out += [""]
    out += [
        "## Appendix: plan digest",
        "",
        f"`{plan.digest or plan.seal()}`",
        "",
        "Apply exactly this plan with `--plan FILE --expect-digest` and this digest: any other plan is refused.",
        "",
    ]
    return "\n".join(out).rstrip() + "\n"


def render_status(plan: Plan, *, title: str = "m365archive status") -> str:
    """Drift report: each setting, desired vs actual, in sync or DRIFT; then the findings."""
    p = Presenter(plan)
    steps = p.steps()
    out = [f"# {line(title)}", ""]
    out += _notices(p)
    out += _header(p)
    drift = len(plan.pending)
    in_sync = len(plan.changes) - drift
    by_severity = findings_by_severity(plan)
    out += ["## Summary", ""]
    out += table(
        ["in sync", "DRIFT", *[f"findings: {s.value}" for s in SEVERITY_ORDER], "accepted risks"],
        [[in_sync, drift, *[by_severity[s.value] for s in SEVERITY_ORDER], by_severity["accepted"]]],
        ["---:"] * (3 + len(SEVERITY_ORDER)),
    )
    out += [""]
    for step in steps:
        out += [f"## {step.name}", ""]
        out += table(
            ["Target", "Setting", "Desired", "Actual", "State"],
            [
                [
                    c.target,
                    c.setting,
                    setting_value(c.after),
                    setting_value(c.before),
                    "**DRIFT**" if c.pending else "in sync",
                ]
                for c in step.changes
            ],
        )
        out += [""]
    findings = p.findings()
    out += ["## Findings", ""]
    out += _findings_table(findings) if findings else ["No findings."]
    out += [""]
    return "\n".join(out).rstrip() + "\n"


def render_apply_result(
    plan: Plan, result: ApplyResult, *, title: str = "m365archive apply result", appendix_threshold: int = 50
) -> str:
    """What apply did: status, counts per outcome, every failure with its reason, then each step."""
    p = Presenter(plan)
    views = {c.id: c for s in p.steps() for c in s.changes}
    outcomes = {cid: p.outcome(o) for cid, o in outcomes_by_change(plan, result).items()}
    out = [f"# {line(title)}", ""]
    out += table(
        ["Field", "Value"],
        [
            ["Status", result.status],
            ["Run id", result.run_id],
            *[[k, v] for k, v in p.header()],
        ],
    )
    out += [""]
    counts = outcome_counts(plan, result)
    out += ["## Summary", ""]
    out += table(OUTCOMES, [[counts[o] for o in OUTCOMES]], ["---:"] * len(OUTCOMES))
    out += [""]

    bad = [(cid, o) for cid, o in outcomes.items() if o.outcome in BAD_OUTCOMES]
    if bad:
        out += ["## Failures", ""]
        out += table(
            ["Step", "Target", "Setting", "Outcome", "Detail", "Request id"],
            [
                [
                    views[cid].step if cid in views else "—",
                    o.target,
                    o.setting,
                    o.outcome.upper(),
                    o.detail or "—",
                    o.request_id or "—",
                ]
                for cid, o in bad
            ],
        )
        out += [""]

    by_step: dict[str, list[tuple[ChangeView | None, Any]]] = {}
    for cid, o in outcomes.items():
        view = views.get(cid)
        by_step.setdefault(view.step if view else "(not in plan)", []).append((view, o))
    out += ["## Outcomes per step", ""]
    for step, rows in by_step.items():
        out += [f"### {step}", ""]
        if len(rows) > appendix_threshold:
            summary: dict[tuple[str, str], int] = {}
            for view, o in rows:
                key = (view.setting if view else o.setting, o.outcome)
                summary[key] = summary.get(key, 0) + 1
            out += [f"{len(rows)} outcomes, counted by setting (failures are listed above).", ""]
            out += table(
                ["Setting", "Outcome", "Count"], [[s, oc, n] for (s, oc), n in summary.items()], ["---", "---", "---:"]
            )
        else:
            out += table(
                ["Target", "Setting", "Action", "Outcome", "Detail"],
                [
                    [o.target, o.setting, view.action.value if view else "—", o.outcome, o.detail or "—"]
                    for view, o in rows
                ],
            )
        out += [""]
    return "\n".join(out).rstrip() + "\n"


__all__ = ["fence", "render_apply_result", "render_plan", "render_status", "secret_block"]
