"""JSON report documents and the versioned envelope every `--output json` command prints.

These are *report* forms: every value presented (placeholders in words, secrets masked).
A saved plan, the one `setup --plan` applies, is Plan.to_json(), written by the CLI.
"""

from __future__ import annotations

from typing import Any

from m365archive.engine.plan import Plan
from m365archive.engine.runner import ApplyResult
from m365archive.report import (
    Presenter,
    findings_by_severity,
    outcome_counts,
    outcomes_by_change,
)
from m365archive.report import ticket as tickets
from m365archive.report.ticket import TicketContext

FORMAT_VERSION = "1"
ENVELOPE_KEYS = ("format_version", "command", "status", "exit_code", "data", "messages", "errors")


def _base(plan: Plan, p: Presenter, report: str) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "kind": "report",
        "report": report,
        "plan_kind": plan.kind,
        "plan_format_version": plan.format_version,
        "plan_id": plan.plan_id,
        "created": plan.created,
        "tool_version": plan.tool_version,
        "procedure": p.string(plan.procedure),
        "tenant": p.value(plan.tenant),
        "operator": p.string(plan.operator),
        "fingerprint": plan.fingerprint,
        "digest": plan.digest or plan.seal(),
        "notices": p.notices(),
    }


def plan_document(plan: Plan, ticket: TicketContext | None = None) -> dict[str, Any]:
    """The change-ticket report as data: the same content as markdown.render_plan."""
    p = Presenter(plan)
    doc = _base(plan, p, "plan")
    doc.update(
        {
            "ticket": ticket.to_dict() if ticket else None,
            "board": {
                "expected_duration": tickets.duration_text(plan),
                "waits": [{"wait": p.string(d), "up_to_seconds": t, "times": n} for d, t, n in tickets.waits(plan)],
                "risk": [p.string(r) for r in tickets.risk_summary(plan)],
                "permissions": [
                    dict(
                        zip(
                            ("for", "entra_roles", "exchange_role_groups", "graph_delegated", "app_only"),
                            row,
                            strict=True,
                        )
                    )
                    for row in tickets.requirement_rows(plan)
                ],
            },
            "backout": [
                {
                    "change_id": v.id,
                    "step": v.step,
                    "target": v.target,
                    "setting": v.setting,
                    "rollback": v.rollback or None,
                    "rollback_note": v.rollback_note,
                }
                for v in (p.change(c) for c in tickets.backout_order(plan.pending))
            ],
            "sign_off": dict.fromkeys(tickets.SIGN_OFF, ""),
            "summary": {"changes": plan.counts(), "pending": len(plan.pending), "findings": findings_by_severity(plan)},
            "checks": [{k: c[k] for k in ("id", "title", "blocking", "passed", "remedy")} for c in p.checks()],
            "warnings": [{"warning": w, "targets": t} for w, t in p.warnings()],
            "changes": [p.change(c).to_dict() for c in plan.changes],
            "findings": p.findings(),
            "coverage": p.coverage(),
            "instructions": p.instructions(),
        }
    )
    return doc


def status_document(plan: Plan) -> dict[str, Any]:
    """Drift as data: each setting desired vs actual, in sync or drift; then the findings."""
    p = Presenter(plan)
    doc = _base(plan, p, "status")
    settings = []
    for change in plan.changes:
        view = p.change(change)
        settings.append(
            {
                "id": view.id,
                "step": view.step,
                "target": view.target,
                "setting": view.setting,
                "desired": view.after,
                "actual": view.before,
                "state": "drift" if view.pending else "in-sync",
                "side": view.side,
                "category": view.category,
            }
        )
    drift = len(plan.pending)
    doc.update(
        {
            "summary": {"in_sync": len(plan.changes) - drift, "drift": drift, "findings": findings_by_severity(plan)},
            "settings": settings,
            "findings": p.findings(),
        }
    )
    return doc


def result_document(plan: Plan, result: ApplyResult) -> dict[str, Any]:
    """What apply did, change by change (pending changes the run never reached are "not run")."""
    p = Presenter(plan)
    changes = {c.id: c for c in plan.changes}
    outcomes = []
    for change_id, raw in outcomes_by_change(plan, result).items():
        outcome = p.outcome(raw)
        change = changes.get(change_id)
        outcomes.append(
            {
                "change_id": outcome.change_id,
                "step": change.step if change else "",
                "target": outcome.target,
                "setting": outcome.setting,
                "action": change.action.value if change else "",
                "side": change.side if change else "",
                "outcome": outcome.outcome,
                "detail": outcome.detail,
                "request_id": outcome.request_id,
            }
        )
    doc = _base(plan, p, "apply-result")
    doc.update(
        {
            "run_id": result.run_id,
            "status": result.status,
            "interrupted": result.interrupted,
            "summary": outcome_counts(plan, result),
            "outcomes": outcomes,
        }
    )
    return doc


def envelope(
    command: str, status: str, exit_code: int, data: dict[str, Any], messages: list[str], errors: list[str]
) -> dict[str, Any]:
    """The versioned contract of `--output json` (keys pinned by a test; add, never rename)."""
    return {
        "format_version": FORMAT_VERSION,
        "command": command,
        "status": status,
        "exit_code": int(exit_code),
        "data": data,
        "messages": list(messages),
        "errors": list(errors),
    }


__all__ = ["ENVELOPE_KEYS", "FORMAT_VERSION", "envelope", "plan_document", "result_document", "status_document"]
