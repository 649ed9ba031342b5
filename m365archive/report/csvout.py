"""One CSV row per target and change, for spreadsheets and change-management tools.

Values are presented like every other report. Cells that a spreadsheet would run as a formula
(=, +, -, @ at the start, from a tenant-sourced name) are prefixed with an apostrophe.
"""

from __future__ import annotations

import csv
import os
import re
from typing import IO

from m365archive.engine.plan import Plan
from m365archive.engine.runner import ApplyResult
from m365archive.files import open_private
from m365archive.report import Presenter, outcomes_by_change, setting_value

COLUMNS = ["target", "step", "setting", "before", "after", "action", "side", "outcome", "detail"]
_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")


def safe_cell(value: str) -> str:
    if value and value[0] in "=+-@\t\r" and not _NUMBER.match(value):
        return "'" + value
    return value


def rows(plan: Plan, result: ApplyResult | None = None) -> list[dict[str, str]]:
    p = Presenter(plan)
    outcomes = outcomes_by_change(plan, result) if result is not None else {}
    out = []
    for change in plan.changes:
        view = p.change(change)
        outcome = outcomes.get(change.id)
        row = {
            "target": view.target,
            "step": view.step,
            "setting": view.setting,
            "before": setting_value(view.before),
            "after": setting_value(view.after),
            "action": view.action.value,
            "side": view.side,
            "outcome": outcome.outcome if outcome else ("" if result is None or view.pending else "no-op"),
            "detail": p.string(outcome.detail) if outcome else "",
        }
        out.append({k: safe_cell(v) for k, v in row.items()})
    return out


def write_changes(
    path_or_file: str | os.PathLike[str] | IO[str], plan: Plan, result: ApplyResult | None = None
) -> None:
    """Write the rows to a path (UTF-8, created or replaced) or to an open text file."""
    if isinstance(path_or_file, str | os.PathLike):
        with open_private(path_or_file, newline="") as handle:
            _write(handle, plan, result)
    else:
        _write(path_or_file, plan, result)


def _write(handle: IO[str], plan: Plan, result: ApplyResult | None) -> None:
    writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows(plan, result))


__all__ = ["COLUMNS", "rows", "write_changes"]
