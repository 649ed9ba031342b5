"""`m365archive mapping check|export`: user mapping files for Purview data connectors."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from m365archive.cli import exits
from m365archive.cli.common import CliState, Output, finish, run, state
from m365archive.errors import CommandError, Reason
from m365archive.result import ExitCode, Result

app = typer.Typer(
    help="User mapping files for Purview data connectors (source identity -> mailbox address).",
    no_args_is_help=True,
    rich_markup_mode=None,
)

if TYPE_CHECKING:
    from m365archive.app.context import Env
    from m365archive.config import Config


class MappingSource(StrEnum):
    bloomberg = "bloomberg"
    whatsapp = "whatsapp"
    email = "email"


SourceOption = Annotated[
    MappingSource,
    typer.Option("--source", help="bloomberg (Bloomberg UUID), whatsapp (E.164 phone number) or email."),
]


@app.command("check")
def check(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The mapping CSV: source identity, mailbox address.")],
    source: SourceOption,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write every row with its status here (CSV, problems first).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=0, help="Problem rows to list.")] = 20,
) -> None:
    """Check a mapping file against the tenant: every row is mapped, unknown mailbox, duplicate identity,
    duplicate mailbox or malformed. Exit 0 when every row's items would be imported, 2 when some would not.

    Example:

    \b
      m365archive mapping check bloomberg-map.csv --source bloomberg --out checked.csv
    """
    cli = state(ctx)
    config = cli.load_config()
    env = cli.env()
    finish(cli, run(cli, lambda: _check(cli, config, env, file, source.value, out, limit)))


async def _check(
    cli: CliState, config: Config, env: Env, file: Path, source: str, out: Path | None, limit: int
) -> Result:
    from m365archive.app.context import connect
    from m365archive.app.mapping import NOT_IMPORTED, MappingError, check_mapping

    async with connect(env, config) as session:
        try:
            report = await check_mapping(session, file, source, out=out, limit=limit, progress=env.progress)
        except MappingError as exc:
            raise CommandError(str(exc), Reason.USAGE) from None
    code = exits.for_mapping(not_imported=report.not_imported)
    messages: list[str] = []
    if cli.output is not Output.json:
        problems = report.problems
        if problems:
            messages.append("Rows whose items would not be imported come first:")
            for p in problems:
                mark = "NOT IMPORTED" if p.status in NOT_IMPORTED else "warning"
                messages.append(f"  line {p.line}: {p.status.value} ({mark}): {p.identity} -> {p.mailbox}: {p.reason}")
            shown = len(problems)
            total = sum(n for k, n in report.counts.items() if k != "mapped")
            if total > shown:
                messages.append(f"  ... and {total - shown:,} more" + (f" (every row is in {out})" if out else ""))
        counts = ", ".join(f"{name} {n:,}" for name, n in report.counts.items())
        messages.append(f"{report.rows:,} rows: {counts}.")
        messages.append(
            f"{report.not_imported:,} row(s) would not be imported."
            if report.not_imported
            else "Every row maps to a user mailbox."
        )
        messages.append(f"Read {report.mailboxes_read:,} user mailboxes in {report.pages_read} page(s).")
        if out:
            messages.append(f"Every row with its status written to {out}")
    return Result("mapping check", code, data=report.to_dict(), messages=messages)


@app.command("export")
def export(
    ctx: typer.Context,
    source: SourceOption,
    out: Annotated[Path, typer.Option("--out", help="The mapping CSV to write.")],
) -> None:
    """Write the mailbox side of a mapping file for the user mailboxes in scope ([users] in the config).

    Fill in the identity column (Bloomberg UUIDs, phone numbers), then check it with `mapping check`.

    Example:

    \b
      m365archive mapping export --source bloomberg --out bloomberg-map.csv
    """
    cli = state(ctx)
    config = cli.load_config()
    env = cli.env()
    finish(cli, run(cli, lambda: _export(config, env, source.value, out)))


async def _export(config: Config, env: Env, source: str, out: Path) -> Result:
    from m365archive.app.context import connect
    from m365archive.app.mapping import export_mapping

    async with connect(env, config) as session:
        rows = await export_mapping(session, config, source, out, progress=env.progress)
    return Result(
        "mapping export",
        ExitCode.OK,
        data={"source": source, "file": str(out), "rows": rows},
        messages=[f"Wrote {rows:,} mailbox row(s) to {out}; fill in the identity column, then `mapping check` it."],
    )
