"""`m365archive partners`: Step 1, the partner catalog of the reference page, searchable by data source."""

from __future__ import annotations

from typing import Annotated

import typer

from m365archive.cli.common import CliState, Output, finish, state
from m365archive.result import ExitCode, Result


def register(app: typer.Typer) -> None:
    @app.command("partners")
    def partners(
        ctx: typer.Context,
        source: Annotated[
            str | None,
            typer.Option("--source", "-s", help="Only partners supporting a data source matching TEXT (forgiving)."),
        ] = None,
    ) -> None:
        """List the partners and the third-party data sources each supports.

        The partner chosen in the config (`partner = "..."`) is marked.

        Examples:

        \b
          m365archive partners
          m365archive partners --source bloomberg
        """
        cli = state(ctx)
        finish(cli, _partners(cli, source))


def _chosen(cli: CliState) -> str | None:
    """The configured partner, if a config is there; the catalog works without one."""
    from m365archive.config import ConfigError, load_config
    from m365archive.partners import find_partner

    if not cli.config_path.exists():
        return None
    try:
        name = load_config(cli.config_path).partner
    except ConfigError:
        return None
    found = find_partner(name) if name else None
    return found.name if found else name


def _partners(cli: CliState, source: str | None) -> Result:
    from m365archive.partners import PARTNERS, RETIREMENT, search

    chosen = _chosen(cli)
    everything = [(p, list(p.sources)) for p in PARTNERS]
    matches = search(source) if source and source.strip() else everything
    data = {
        "query": source,
        "chosen": chosen,
        "retirement": {"date": RETIREMENT["date"], "source": RETIREMENT["url"]},
        "partners": [
            {"name": p.name, "website": p.website, "chosen": p.name == chosen, "sources": sources}
            for p, sources in matches
        ],
    }
    messages: list[str] = []
    if cli.output is not Output.json:
        messages.append(
            f"Note: these partners imported through EWS-based partner ingestion, retired on {RETIREMENT['date']} "
            f"({RETIREMENT['url']})."
        )
        md = cli.output is Output.markdown
        for p, sources in matches:
            mark = " (chosen in the config)" if p.name == chosen else ""
            messages.append("")
            messages.append(f"## {p.name}{mark}" if md else f"{p.name}{mark}  {p.website}")
            if md:
                messages.append(p.website)
            messages += [f"- {s}" if md else f"  - {s}" for s in sources]
        if not matches:
            messages.append(f"No partner lists a data source matching {source!r}.")
    return Result("partners", ExitCode.OK, data=data, messages=messages)
