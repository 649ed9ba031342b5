"""Renderers for plans, drift and apply results: Markdown, console, JSON, CSV.

Every renderer reads a Plan through one `Presenter`, so they all show the same thing:
placeholders in words (engine.plan.present), secrets masked, large steps summarized.
This package knows nothing of Microsoft beyond presenting a Change's fields, and never
imports typer, msgraph or azure.
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from m365archive.engine.plan import (
    REF,
    SECRET,
    SENSITIVE,
    Action,
    Change,
    Finding,
    Plan,
    Severity,
    present,
    setting_text,
    short_digest,
)
from m365archive.engine.runner import ApplyResult, ChangeOutcome, OutcomeKind

NONE_TEXT = "(none)"
SEVERITY_ORDER = [Severity.CRITICAL, Severity.HIGH, Severity.WARNING, Severity.INFO]
ACTIONS = [Action.CREATE, Action.UPDATE, Action.DELETE, Action.NOOP]
OUTCOMES: list[str] = [
    OutcomeKind.OK,
    OutcomeKind.RESUMED,
    OutcomeKind.FAILED,
    OutcomeKind.INTERRUPTED,
    OutcomeKind.SKIPPED,
    OutcomeKind.NOT_RUN,
]
BAD_OUTCOMES = (OutcomeKind.FAILED, OutcomeKind.INTERRUPTED, OutcomeKind.SKIPPED, OutcomeKind.NOT_RUN)
WARNING_TARGETS_SHOWN = 10

# Key names whose values are credentials whatever they hold (compared lower-cased, without separators).
_SECRET_KEY = re.compile(r"password|passwd|passphrase|pwd|secret|credential|token|privatekey|apikey")
# In a sensitive change's text lines: `Password=...`, `"password": "..."`, `-Password ...`.
_SECRET_ASSIGNMENT = re.compile(
    r"(?i)(\b\w*(?:password|passwd|secret|credential|pwd)\w*[\"']?\s*[=:]\s*)"
    r"(\"[^\"]*\"|'[^']*'|[^\s;},]+)"
)
_SECRET_PARAMETER = re.compile(r"(?i)(-\w*(?:password|secret|credential)\w*\s+)(\"[^\"]*\"|'[^']*'|[^\s-]\S*)")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_MIN_SECRET_LENGTH = 4  # shorter literals would scrub ordinary words out of the report


def is_secret_key(key: object) -> bool:
    return _is_secret_key(str(key))


@functools.lru_cache(maxsize=4096)  # a plan has few distinct keys and many changes
def _is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(re.sub(r"[^a-z]", "", key.lower())))


def accepted_text(finding: dict[str, str]) -> str:
    """ "accepted by the procedure: <reason>" / "accepted in the config: <reason>", or ""."""
    if not finding.get("accepted"):
        return ""
    by = "the procedure" if finding.get("accepted_by") == "procedure" else "the config"
    return f"accepted by {by}: {finding['accepted']}"


def setting_value(value: Any) -> str:
    """A change's before/after value in the one vocabulary of every step's rows (on/off, "(none)")."""
    if isinstance(value, list | tuple):
        return ", ".join(setting_value(v) for v in value) if value else "(empty)"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {setting_value(v)}" for k, v in value.items()) if value else "(empty)"
    return setting_text(value)


def text(value: Any) -> str:
    """One line of plain text for an already presented value (no escaping)."""
    if value is None:
        return NONE_TEXT
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ", ".join(text(v) for v in value) if value else "(empty)"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {text(v)}" for k, v in value.items()) if value else "(empty)"
    return str(value)


@dataclass
class OperationView:
    kind: str
    display: str
    powershell: str
    request: dict[str, Any]
    shape: str

    @property
    def body(self) -> Any:
        return self.request.get("body")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "display": self.display, "powershell": self.powershell, "request": self.request}


@dataclass
class ChangeView:
    """A Change as every renderer shows it: presented, masked, ready to print."""

    id: str
    step: str
    target: str
    setting: str
    action: Action
    before: Any
    after: Any
    side: str
    category: str
    sensitive: bool
    make_operation: Callable[[], OperationView | None] = field(repr=False, compare=False)
    warnings: list[str] = field(default_factory=list)
    rollback: str = ""
    depends_on: list[str] = field(default_factory=list)
    rollback_note: str = ""

    @functools.cached_property
    def operation(self) -> OperationView | None:
        """Presented when first shown: a 100,000-mailbox plan summarizes most operations, so they are
        never built."""
        return self.make_operation()

    @property
    def pending(self) -> bool:
        return self.action is not Action.NOOP

    def before_after(self) -> str:
        if not self.pending:
            return setting_value(self.after)
        return f"{setting_value(self.before)} → {setting_value(self.after)}"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "step": self.step,
            "target": self.target,
            "setting": self.setting,
            "action": self.action.value,
            "before": self.before,
            "after": self.after,
            "side": self.side,
            "category": self.category,
            "sensitive": self.sensitive,
            "operation": self.operation.to_dict() if self.operation else None,
            "warnings": self.warnings,
            "rollback": self.rollback,
            "rollback_note": self.rollback_note,
            "depends_on": self.depends_on,
        }
        return data


@dataclass
class StepView:
    name: str
    changes: Sequence[ChangeView]
    large: bool

    @property
    def pending(self) -> list[ChangeView]:
        return [c for c in self.changes if c.pending]


class ChangeViews(Sequence[ChangeView]):
    """A step's changes, presented as they are iterated and then let go: a 100,000-mailbox step is
    summarized in a few passes without holding 100,000 views at once."""

    def __init__(self, changes: list[Change], present: Callable[[Change], ChangeView]) -> None:
        self._changes = changes
        self._present = present

    def __len__(self) -> int:
        return len(self._changes)

    @overload
    def __getitem__(self, index: int) -> ChangeView: ...

    @overload
    def __getitem__(self, index: slice) -> list[ChangeView]: ...

    def __getitem__(self, index: int | slice) -> ChangeView | list[ChangeView]:
        if isinstance(index, slice):
            return [self._present(c) for c in self._changes[index]]
        return self._present(self._changes[index])

    def __iter__(self) -> Iterator[ChangeView]:
        return (self._present(c) for c in self._changes)


class Presenter:
    """Turns a Plan's values into what reports may show.

    `${ref:...}` and `${secret:...}` become words through engine.plan.present(), also inside
    longer strings. Values under credential-like keys are masked in every change. Literal
    secrets found under such keys (a step bug, but never a leak) are scrubbed from every string of
    the report, and a sensitive change's text lines lose anything that looks like an assignment to
    a password.
    """

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        literals: set[str] = set()
        for change in plan.changes:
            for value in (change.before, change.after, change.operation.request if change.operation else None):
                _collect_secret_literals(value, False, literals)
        keep = sorted((s for s in literals if len(s) >= _MIN_SECRET_LENGTH), key=len, reverse=True)
        self._scrub = re.compile("|".join(re.escape(s) for s in keep)) if keep else None

    # Values -----------------------------------------------------------------------------------

    def string(self, value: str, *, sensitive: bool = False) -> str:
        shown = value
        if "${" in shown:
            shown = SECRET.sub(lambda m: str(present(m.group(0))), shown)
            shown = REF.sub(lambda m: str(present(m.group(0))), shown)
        if self._scrub is not None:
            shown = self._scrub.sub(SENSITIVE, shown)
        if sensitive:
            shown = _SECRET_ASSIGNMENT.sub(_mask_assignment, shown)
            shown = _SECRET_PARAMETER.sub(_mask_assignment, shown)
        return shown

    def value(self, value: Any, *, sensitive: bool = False, under_secret: bool = False) -> Any:
        if isinstance(value, dict):
            return {
                str(k): self.value(v, sensitive=sensitive, under_secret=under_secret or is_secret_key(k))
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.value(v, sensitive=sensitive, under_secret=under_secret) for v in value]
        if under_secret and value is not None and not isinstance(value, bool):
            return SENSITIVE
        if isinstance(value, str):
            return self.string(value, sensitive=sensitive)
        return value

    def text(self, value: Any) -> str:
        return text(self.value(value))

    # Changes ----------------------------------------------------------------------------------

    def change(self, change: Change) -> ChangeView:
        s = change.sensitive
        op = change.operation

        def make_operation() -> OperationView | None:
            if op is None:
                return None
            return OperationView(
                kind=op.kind,
                display=self.string(op.display, sensitive=s),
                # PowerShell lines hold secrets only as `$password` variables (m365archive.powershell); the
                # assignment masks below would cut a quoted literal in two, so they are not applied here.
                powershell=self.string(op.powershell),
                request=self.value(op.request, sensitive=s),
                shape=operation_shape(op.kind, op.request, op.display),
            )

        return ChangeView(
            id=self.string(change.id),
            step=change.step,
            target=self.string(change.target),
            setting=self.string(change.setting),
            action=change.action,
            before=self.value(change.before, sensitive=s),
            after=self.value(change.after, sensitive=s),
            side=change.side,
            category=change.category,
            sensitive=s,
            make_operation=make_operation,
            warnings=[self.string(w, sensitive=s) for w in change.warnings],
            rollback=self.string(change.rollback or ""),
            depends_on=[self.string(d) for d in change.depends_on],
            rollback_note=self.string(change.rollback_note or "", sensitive=s),
        )

    def steps(self, appendix_threshold: int | None = None) -> list[StepView]:
        """Changes grouped by step, steps in the order they first appear in the plan."""
        grouped: dict[str, list[Change]] = {}
        for change in self.plan.changes:
            grouped.setdefault(change.step, []).append(change)
        views = []
        for name, changes in grouped.items():
            pending = sum(1 for c in changes if c.action is not Action.NOOP)
            large = appendix_threshold is not None and pending > appendix_threshold
            seq: Sequence[ChangeView] = (
                ChangeViews(changes, self.change) if large else [self.change(c) for c in changes]
            )
            views.append(StepView(name, seq, large))
        return views

    def finding(self, finding: Finding) -> dict[str, str]:
        return {
            "step": finding.step,
            "target": self.string(finding.target),
            "severity": finding.severity.value,
            "message": self.string(finding.message),
            "remedy": self.string(finding.remedy),
            "category": finding.category,
            "id": self.string(finding.id),
            "accepted": self.string(finding.accepted),
            "accepted_by": finding.accepted_by,
        }

    def findings(self) -> list[dict[str, str]]:
        """Most severe first; plan order within a severity."""
        ordered = sorted(self.plan.findings, key=lambda f: SEVERITY_ORDER.index(f.severity))
        return [self.finding(f) for f in ordered]

    def header(self) -> list[tuple[str, str]]:
        p = self.plan
        tenant = p.tenant
        tenant_text = tenant.get("id", "") or "(unknown)"
        if tenant.get("domain"):
            tenant_text += f" ({tenant['domain']})"
        return [
            ("Tenant", self.string(tenant_text)),
            ("Cloud", self.string(tenant.get("cloud", "") or "(unknown)")),
            ("Procedure", self.string(p.procedure)),
            ("Operator", self.string(p.operator or "(unknown)")),
            ("Created", p.created),
            ("Tool version", p.tool_version or "(unknown)"),
            ("Plan id", p.plan_id),
            ("Plan digest", short_digest(p.digest or p.seal()) + " (full digest in the appendix)"),
            ("Fingerprint", p.fingerprint or "(none)"),
        ]

    def notices(self) -> list[str]:
        return [self.string(n) for n in self.plan.notices]

    def instructions(self) -> list[str]:
        return [self.string(i) for i in self.plan.instructions]

    def coverage(self) -> list[str]:
        return [self.string(c) for c in self.plan.coverage]

    def checks(self) -> list[dict[str, Any]]:
        """Each check with its verdict: "pass", "FAIL" (blocking: nothing is applied) or "advisory"."""
        return [
            {
                "id": c.id,
                "title": self.string(c.title),
                "blocking": c.blocking,
                "passed": c.passed,
                "result": "pass" if c.passed else ("FAIL" if c.blocking else "advisory"),
                "remedy": self.string(c.remedy) if not c.passed else "",
            }
            for c in self.plan.checks
        ]

    def check_rows(self) -> list[tuple[str, bool, str, bool]]:
        """(title, passed, remedy when it failed, blocking) for each check."""
        return [(c["title"], c["passed"], c["remedy"], c["blocking"]) for c in self.checks()]

    def warnings(self) -> list[tuple[str, list[str]]]:
        """Each distinct warning of a pending change once, with the targets it applies to."""
        targets: dict[str, dict[str, None]] = {}  # dicts as ordered sets: 300,000 targets stay linear
        for change in self.plan.pending:
            for warning in change.warnings:
                shown = self.string(warning, sensitive=change.sensitive)
                targets.setdefault(shown, {})[self.string(change.target)] = None
        return [(warning, list(listed)) for warning, listed in targets.items()]

    def outcome(self, outcome: ChangeOutcome) -> ChangeOutcome:
        return ChangeOutcome(
            change_id=self.string(outcome.change_id),
            target=self.string(outcome.target),
            setting=self.string(outcome.setting),
            outcome=outcome.outcome,
            detail=self.string(outcome.detail),
            request_id=outcome.request_id,
        )


def _mask_assignment(match: re.Match[str]) -> str:
    value = match.group(2).strip("'\"")
    # `$password` is a variable the admin supplies, not a value: nothing to mask.
    if value == SENSITIVE or value.startswith(("<", "(", "@{", "$")):
        return match.group(0)
    return match.group(1) + SENSITIVE


def _collect_secret_literals(value: Any, under_secret: bool, found: set[str]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _collect_secret_literals(v, under_secret or is_secret_key(k), found)
    elif isinstance(value, list | tuple):
        for v in value:
            _collect_secret_literals(v, under_secret, found)
    elif under_secret and isinstance(value, str) and not SECRET.fullmatch(value) and not REF.fullmatch(value):
        found.add(value)


def operation_shape(kind: str, request: dict[str, Any], display: str = "") -> str:
    """What an operation does, without whom it does it to: cmdlet and parameter names, or the
    Graph method, path template and body keys. Thousands of changes share a handful of shapes."""
    if "cmdlet" in request:
        params = request.get("parameters") or {}
        return " ".join([str(request["cmdlet"]), *(f"-{name}" for name in params)])
    if "method" in request:
        segments = [_template_segment(s) for s in str(request.get("path", "")).split("/")]
        shape = f"{request['method']} {'/'.join(segments)}"
        body = request.get("body")
        if isinstance(body, dict) and body:
            shape += " {" + ", ".join(str(k) for k in body) + "}"
        return shape
    return f"{kind}: {display.split(' ')[0] if display else '(operation)'}"


def _template_segment(segment: str) -> str:
    if "@" in segment or _GUID.match(segment) or REF.search(segment) or SECRET.search(segment):
        return "{id}"
    return segment


def action_counts(changes: Iterable[ChangeView]) -> dict[str, int]:
    counts = {a.value: 0 for a in ACTIONS}
    for change in changes:
        counts[change.action.value] += 1
    return counts


def category_summary(changes: Iterable[ChangeView]) -> list[tuple[str, str, dict[str, int]]]:
    """(category, setting) -> counts per action, in first-seen order."""
    rows: dict[tuple[str, str], dict[str, int]] = {}
    for change in changes:
        key = (change.category or "(uncategorized)", change.setting)
        counts = rows.setdefault(key, {a.value: 0 for a in ACTIONS})
        counts[change.action.value] += 1
    return [(category, setting, counts) for (category, setting), counts in rows.items()]


def shape_groups(changes: Iterable[ChangeView]) -> list[tuple[str, int, ChangeView]]:
    """Pending changes by operation shape: (shape, count, first example), in first-seen order."""
    groups: dict[str, list[Any]] = {}
    for change in changes:
        if not change.pending or change.operation is None:
            continue
        entry = groups.setdefault(change.operation.shape, [0, change])
        entry[0] += 1
    return [(shape, int(entry[0]), entry[1]) for shape, entry in groups.items()]


def findings_by_severity(plan: Plan) -> dict[str, int]:
    """Open findings per severity, and how many more are accepted risks (shown, not counted above)."""
    counts = Counter(f.severity for f in plan.findings if not f.accepted)
    return {
        **{s.value: counts.get(s, 0) for s in SEVERITY_ORDER},
        "accepted": sum(1 for f in plan.findings if f.accepted),
    }


def outcomes_by_change(plan: Plan, result: ApplyResult) -> dict[str, ChangeOutcome]:
    """The last outcome of each change; pending changes the run never reached are "not run"."""
    by_id = {o.change_id: o for o in result.outcomes}
    for change in plan.pending:
        if change.id not in by_id:
            by_id[change.id] = ChangeOutcome(
                change.id, change.target, change.setting, OutcomeKind.NOT_RUN, "the run stopped before this change"
            )
    return by_id


def outcome_counts(plan: Plan, result: ApplyResult) -> dict[str, int]:
    counts = dict.fromkeys(OUTCOMES, 0)
    for outcome in outcomes_by_change(plan, result).values():
        counts[outcome.outcome] = counts.get(outcome.outcome, 0) + 1
    return counts


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


__all__ = [
    "BAD_OUTCOMES",
    "SENSITIVE",
    "ChangeView",
    "OperationView",
    "Presenter",
    "StepView",
    "accepted_text",
    "action_counts",
    "category_summary",
    "findings_by_severity",
    "is_secret_key",
    "operation_shape",
    "outcome_counts",
    "outcomes_by_change",
    "shape_groups",
    "text",
]
