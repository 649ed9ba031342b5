"""`m365archive steps`: the configured procedure as a checklist, with the command that moves each step forward."""

from __future__ import annotations

from typing import Any

import typer

from m365archive.cli.common import CliState, Output, finish, run, state
from m365archive.result import Result


def register(app: typer.Typer) -> None:
    @app.command("steps")
    def steps(ctx: typer.Context) -> None:
        """Where the tenant stands in the configured procedure (reads only): for partner-ews Microsoft's five
        steps, for purview-connector its preparation and the clean-up; each with its state (done, partly done,
        not started, not applicable, retired, manual), what is left and the command for the next part.

        Examples:

        \b
          m365archive steps
          m365archive steps -o markdown > procedure.md
          m365archive steps --query "data.items[?state!='done'].next_command"
        """
        from m365archive.app.checklist import checklist

        cli = state(ctx)
        config = cli.load_config()
        env = cli.env()
        doc = run(cli, lambda: checklist(env, config)).to_dict()
        if cli.output is Output.json:
            finish(cli, Result("steps", data=doc))
        if cli.output is Output.markdown:
            cli.print_markdown(markdown(doc))
        else:
            human(cli, doc)
        finish(cli, Result("steps"))


def human(cli: CliState, doc: dict[str, Any]) -> None:
    tenant = doc["tenant"]
    cli.out.print(f"Procedure {doc['procedure']}, tenant {tenant.get('domain') or tenant.get('id')}", markup=False)
    for notice in doc["notices"]:
        cli.out.print(f"! {notice}", markup=False)
    width = max(len(i["state"]) for i in doc["items"]) + 2
    for item in doc["items"]:
        cli.out.print("", markup=False)
        cli.out.print(f"{'[' + item['state'] + ']':<{width + 2}} {item['title']}", markup=False)
        pad = " " * (width + 3)
        cli.out.print(f"{pad}{item['left']}", markup=False)
        if item["next_command"]:
            cli.out.print(f"{pad}next: {item['next_command']}", markup=False)


def markdown(doc: dict[str, Any]) -> str:
    from m365archive.report.markdown import line, table

    tenant = doc["tenant"]
    out = ["# m365archive steps", "", f"Procedure `{doc['procedure']}`, tenant {tenant.get('domain', '')} "
           f"({tenant.get('id', '')}).", ""]  # fmt: skip
    for notice in doc["notices"]:
        out += [f"> **⚠ Notice:** {line(notice)}", ""]
    rows = [
        [i["title"], i["state"], i["left"], f"`{i['next_command']}`" if i["next_command"] else ""] for i in doc["items"]
    ]
    out += table(["Step", "State", "What is left", "Next command"], rows)
    return "\n".join(out)
