"""`m365archive status`: desired vs actual for every setting; exit 0 in sync, 2 drift, 13 findings, 1 error."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from m365archive.cli import exits
from m365archive.cli.common import Output, finish, run, state
from m365archive.result import Result

SUMMARY_ABOVE = 1000  # settings: above this, human output shows SUMMARY_ROWS per step unless --limit says
SUMMARY_ROWS = 20


class FailOn(StrEnum):
    high = "high"
    critical = "critical"


def register(app: typer.Typer) -> None:
    @app.command("status")
    def status(
        ctx: typer.Context,
        fail_on: Annotated[
            FailOn | None,
            typer.Option(
                "--fail-on",
                help="Exit 13 if a finding at or above this severity is not an accepted risk.",
            ),
        ] = None,
        drift_only: Annotated[
            bool, typer.Option("--drift-only", help="Only settings that differ (human and JSON output).")
        ] = False,
        limit: Annotated[
            int | None,
            typer.Option(
                "--limit",
                min=0,
                help=f"At most N rows per step (human output; 0: all). Default: all, or {SUMMARY_ROWS} "
                f"above {SUMMARY_ABOVE:,} settings.",
            ),
        ] = None,
    ) -> None:
        """Compare the tenant with m365archive.toml. Exit 0 in sync, 2 drift found, 13 unaccepted findings
        at or above --fail-on, 1 error.

        Example:

        \b
          m365archive status --output markdown > drift.md
          m365archive status --fail-on high
          m365archive status --drift-only --limit 50
        """
        from m365archive.app import setup
        from m365archive.report import console as console_report
        from m365archive.report import jsonout, markdown

        cli = state(ctx)
        config = cli.load_config()
        env = cli.env()
        plan = run(cli, lambda: setup.status(env, config))
        drift = plan.pending
        if cli.output is Output.human:
            if limit is None and len(plan.changes) > SUMMARY_ABOVE:
                limit = SUMMARY_ROWS  # a summary: 87,000 lines help nobody (-o markdown or --limit 0 has all)
            console_report.print_status(cli.out, plan, drift_only=drift_only, limit=limit)
        elif cli.output is Output.markdown:
            cli.print_markdown(markdown.render_status(plan))
        messages = []
        if cli.output is Output.human:
            messages.append(
                f"Drift: {len(drift)} setting(s) differ from the desired state."
                if drift
                else "In sync: every setting matches the desired state."
            )
        blocking = []
        if fail_on is not None:
            from m365archive.engine.plan import Severity
            from m365archive.risks import failing

            blocking = failing(plan, Severity(fail_on.value))
            if blocking:
                messages.append(
                    f"{len(blocking)} finding(s) at or above {fail_on.value} are not accepted risks "
                    "(accept one with [[accepted_risks]] id and reason in the config)."
                )
        data = jsonout.status_document(plan) if cli.output is Output.json else {}
        if drift_only and data:
            data["settings"] = [row for row in data["settings"] if row["state"] == "drift"]
        code = exits.for_status(drift=bool(drift), failing_findings=bool(blocking))
        finish(cli, Result("status", code, data=data, messages=messages))
