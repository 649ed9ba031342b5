"""`show`: a saved plan, read and validated offline (no tenant, no sign-in).

The same loading and validation as `--plan` in the pipeline (pipeline.load_saved_plan): an older
format, a malformed file or anything this tool never builds is refused (exit 4), an edited plan
(its digest does not match its contents) is refused (exit 12).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from m365archive.app.consent import ConsentRevoke
from m365archive.app.credentials import CredentialsRotate
from m365archive.app.legacy import LegacyCleanup
from m365archive.app.pipeline import Procedure, load_saved_plan
from m365archive.app.setup import Setup
from m365archive.engine.plan import Plan

PROCEDURES: tuple[type[Procedure], ...] = (Setup, LegacyCleanup, ConsentRevoke, CredentialsRotate)


@dataclass(frozen=True)
class SavedPlan:
    plan: Plan
    path: Path
    command: str  # the command that applies it ("setup", "legacy cleanup", ...)
    report_title: str  # the Markdown report's title ("" = the renderer's default)


def show(path: Path) -> SavedPlan:
    """Load a saved plan for rendering; refused as `--plan FILE` would refuse it."""
    plan = load_saved_plan(path)
    procedure = next((p for p in PROCEDURES if p.kind == plan.kind), Setup)
    return SavedPlan(plan, path, procedure.command, procedure.report_title)
