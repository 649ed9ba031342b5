"""`m365archive show PLAN.json`: render a saved plan offline (no tenant, no sign-in)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from m365archive.cli.common import Output, call, finish, state, write_text
from m365archive.result import ExitCode, Result


def register(app: typer.Typer) -> None:
    @app.command("show")
    def show(
        ctx: typer.Context,
        plan_file: Annotated[Path, typer.Argument(metavar="PLAN.json", help="A plan saved with --plan-out.")],
        report: Annotated[
            Path | None, typer.Option("--report", help="Also write the change-ticket report (Markdown) here.")
        ] = None,
    ) -> None:
        """Render a saved plan without a tenant or sign-in (human, -o json or -o markdown). A plan of an
        older format or malformed is refused (exit 4), an edited one (digest mismatch) exit 12.

        Examples:

        \b
          m365archive show plan.json
          m365archive show plan.json -o markdown > plan.md
          m365archive show plan.json --report ticket.md -o json
        """
        from m365archive.app import saved
        from m365archive.report import console as console_report
        from m365archive.report import jsonout, markdown
        from m365archive.report.ticket import context_for

        cli = state(ctx)
        found = call(cli, lambda: saved.show(plan_file))
        plan = found.plan
        cloud = str(plan.tenant.get("cloud") or "global")
        ticket = context_for(
            sim_url=cli.sim_url, cloud=cloud, config_path=cli.config_path, plan_out=plan_file, command=found.command
        )

        def document() -> str:
            if found.report_title:
                return markdown.render_plan(plan, title=found.report_title, ticket=ticket)
            return markdown.render_plan(plan, ticket=ticket)

        messages: list[str] = []
        if report is not None:
            call(cli, lambda: write_text(report, document()))
        data: dict[str, Any] = {}
        if cli.output is Output.human:
            console_report.print_plan(cli.out, plan, verbose=cli.verbose > 0)
            messages.append(f"Plan {plan_file}: {len(plan.pending)} change(s) pending, digest {plan.digest}.")
            if report is not None:
                messages.append(f"Report written to {report}")
        elif cli.output is Output.markdown:
            cli.print_markdown(document())
        else:
            data = jsonout.plan_document(plan, ticket)
            if report is not None:
                data["report_file"] = str(report)
        finish(cli, Result("show", ExitCode.OK, data=data, messages=messages))
