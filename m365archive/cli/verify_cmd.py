"""`m365archive verify`: is third-party data arriving per source and mailbox (reads only); `--history` offline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from m365archive.cli import exits
from m365archive.cli.common import CliState, Output, call, fail, finish, print_table, run, state, write_text
from m365archive.result import ExitCode, Result


def register(app: typer.Typer) -> None:
    @app.command("verify")
    def verify(
        ctx: typer.Context,
        source: Annotated[
            list[str] | None,
            typer.Option(
                "--source", metavar="NAME", help="A connector to check (repeatable; default: [verify] sources)."
            ),
        ] = None,
        silent_after: Annotated[
            str | None,
            typer.Option(
                "--silent-after", metavar="DURATION", help="Silent after this long: 3d, 36h, 2w (default 3d)."
            ),
        ] = None,
        history: Annotated[
            bool, typer.Option("--history", help="Arrivals over time from the saved snapshots (offline).")
        ] = False,
        csv_file: Annotated[
            Path | None, typer.Option("--csv", metavar="FILE", help="With --history: the series as CSV.")
        ] = None,
        png: Annotated[
            Path | None,
            typer.Option("--png", metavar="FILE", help="With --history: the chart as a PNG (the `charts` extra)."),
        ] = None,
    ) -> None:
        """Check that third-party data arrives: per source, the folder its connector imports into, read in every
        mailbox in scope (reads only). Each run is kept as a snapshot for --history. Exit 0, or 13 when a finding is
        raised (a silent source, mailboxes silent or never reached, hold or archive drift, unmapped items arriving).

        Examples:

        \b
          m365archive verify
          m365archive verify --source instant-bloomberg --source ice-chat --silent-after 2d
          m365archive verify -o markdown > arrivals.md
          m365archive verify --history
          m365archive verify --history --csv arrivals.csv --png arrivals.png -o markdown > history.md
        """
        cli = state(ctx)
        if history:
            _history(cli, csv_file, png)
        if csv_file is not None or png is not None:
            fail(cli, "--csv and --png go with --history", ExitCode.USAGE)
        from m365archive.app import snapshots
        from m365archive.app import verify as use_case
        from m365archive.report import arrivals

        config = cli.load_config()
        env = cli.env()
        result = run(cli, lambda: use_case.verify(env, config, sources=source or None, silent_after=silent_after))
        saved = call(cli, lambda: snapshots.save(config.tenant.id, result))
        failing = result.failing
        data: dict[str, Any] = {}
        messages: list[str] = []
        if cli.output is Output.json:
            data = {**result.to_dict(), "snapshot": str(saved)}
        elif cli.output is Output.markdown:
            cli.print_markdown(arrivals.markdown(result))
        else:
            for note in result.notes:
                cli.out.print(note, markup=False, highlight=False)
            rows = arrivals.source_rows(result)
            if rows:
                print_table(cli, arrivals.SOURCE_HEADERS, rows)
            for f in result.findings:
                mark = " (accepted: " + f.accepted + ")" if f.accepted else ""
                messages.append(f"{f.severity.value}: {f.message}{mark}")
                if f.remedy and not f.accepted:
                    messages.append(f"  remedy: {f.remedy}")
            messages.append(
                f"{len(failing)} finding(s) raised." if failing else "Every source checked is arriving as expected."
            )
        code = exits.for_verify(failing_findings=bool(failing))
        finish(cli, Result("verify", code, data=data, messages=messages))


def _history(cli: CliState, csv_file: Path | None, png: Path | None) -> None:
    from m365archive.app import snapshots
    from m365archive.report import arrivals

    config = cli.load_config()
    docs, notes = call(cli, lambda: snapshots.load(config.tenant.id))
    points = snapshots.series(docs)
    messages = list(notes)
    if csv_file is not None:
        call(cli, lambda: write_text(csv_file, arrivals.history_csv(points)))
        messages.append(f"CSV written to {csv_file}")
    if png is not None:
        _write_png(cli, points, png)
        messages.append(f"PNG written to {png}")
    data: dict[str, Any] = {}
    if not points:
        messages.insert(0, "No verify snapshots yet for this tenant: run `m365archive verify` first.")
    if cli.output is Output.json:
        data = {"runs": len(docs), "points": [p.to_dict() for p in points]}
    elif cli.output is Output.markdown and points:
        cli.print_markdown(arrivals.history_markdown(points, str(png) if png else None))
    elif cli.output is Output.human and points:
        from rich.text import Text

        width = max(40, min(cli.out.width if cli.out.is_terminal else 100, 160))
        color = cli.out.is_terminal and not cli.out.no_color
        cli.out.print(Text.from_ansi(arrivals.terminal_chart(points, width=width, height=20, color=color)))
        print_table(
            cli,
            ["Taken at", "Source", "Items", "New", "Receiving"],
            [[p.taken_at, p.source, f"{p.items:,}", f"{p.new_items:,}", f"{p.receiving:,}"] for p in points],
        )
    finish(cli, Result("verify", ExitCode.OK, data=data, messages=messages))


def _write_png(cli: CliState, points: Any, path: Path) -> None:
    from m365archive.files import write_error, write_private_bytes
    from m365archive.report import arrivals

    try:
        data = arrivals.png_chart(points)
        write_private_bytes(path, data)
    except arrivals.ChartsMissing as exc:
        fail(cli, str(exc), ExitCode.USAGE)
    except OSError as exc:
        fail(cli, write_error(path, exc), ExitCode.USAGE)
