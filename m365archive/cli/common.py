"""What every command module shares: global options, config loading, output, exit codes.

The only place that knows about terminals and exit codes. Heavy modules (msgraph-sdk,
azure-identity, pydantic) are imported inside commands so that `--help` stays fast.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from m365archive.cli.exits import for_error
from m365archive.errors import CommandError, Reason
from m365archive.result import ExitCode, Result

if TYPE_CHECKING:
    from m365archive.app.context import Env
    from m365archive.config import Config
    from m365archive.engine.runner import Event

T = TypeVar("T")
DEFAULT_CONFIG = "m365archive.toml"
PIPE_WIDTH = 10_000  # columns for output to a pipe or file: in effect, never wrap
CONFIG_ENV = "M365ARCHIVE_CONFIG"


class Output(StrEnum):
    human = "human"
    json = "json"
    markdown = "markdown"


@dataclass
class CliState:
    output: Output = Output.human
    config_path: Path = Path(DEFAULT_CONFIG)
    debug: bool = False
    verbose: int = 0
    sim_url: str | None = None
    command: str = ""  # e.g. "consent status": set when a command starts, named in the JSON envelope
    quiet: bool = False
    query: str | None = None  # JMESPath over the JSON envelope (--query)
    markdown_printed: bool = False  # a command printed its Markdown document (finish() adds no heading)
    out: Console = field(default_factory=lambda: _console(stderr=False))
    # Error lines never wrap: one line per problem, whatever the terminal's width (scripts grep them).
    err: Console = field(default_factory=lambda: _console(stderr=True))
    # Where apply events go right now: swapped by cli/progress.py while applying. The Env holds the
    # bound `on_event` below, which looks this up on every event, so a later swap still reaches it.
    event_sink: Callable[[Event], None] = field(default=lambda event: None, repr=False)

    @classmethod
    def create(
        cls,
        *,
        output: Output,
        config_path: Path,
        debug: bool,
        verbose: int,
        sim_url: str | None,
        quiet: bool,
        no_color: bool,
        query: str | None,
    ) -> CliState:
        """The state the global options describe (main.py's callback)."""
        cli = cls(output=output, config_path=config_path, debug=debug, verbose=0 if quiet else verbose)
        cli.sim_url, cli.quiet = sim_url, quiet
        # -q silences human output only: a JSON or Markdown document is what was asked for.
        cli.out = _console(stderr=False, no_color=no_color, quiet=quiet and output is Output.human)
        cli.err = _console(stderr=True, no_color=no_color)
        if query is not None:
            import jmespath
            from jmespath.exceptions import JMESPathError

            if output is Output.markdown:
                fail(
                    cli,
                    "--query selects from the JSON envelope; it can't be used with --output markdown",
                    ExitCode.USAGE,
                )
            try:
                jmespath.compile(query)
            except JMESPathError as exc:
                fail(cli, f"--query {query!r} is not a JMESPath expression: {exc}".splitlines()[0], ExitCode.USAGE)
            cli.output, cli.query = Output.json, query
        return cli

    def load_config(self) -> Config:
        from m365archive.config import ConfigError, load_config

        try:
            return load_config(self.config_path)
        except ConfigError as exc:
            if self.output is Output.json:
                emit_json(self, Result(command=self.command, exit_code=ExitCode.USAGE, errors=exc.lines))
            else:
                for line in exc.lines:
                    self.err.print(f"error: {line}", markup=False, highlight=False)
            raise typer.Exit(ExitCode.USAGE) from None

    def env(self, **kwargs: Any) -> Env:
        from m365archive.app.context import Env

        return Env.from_environment(self.sim_url, progress=self.progress, on_event=self.on_event, **kwargs)

    def progress(self, message: str) -> None:
        if self.verbose and not self.quiet and self.output is Output.human:
            self.err.print(f"… {message}", markup=False, highlight=False)

    def print_markdown(self, document: str) -> None:
        """A Markdown document on stdout, never wrapped (a wrapped table is no table)."""
        self.markdown_printed = True
        self.out.print(document, markup=False, highlight=False, soft_wrap=True)

    def on_event(self, event: Event) -> None:
        """Forward to the current sink (a live progress display while applying, see cli/progress.py)."""
        self.event_sink(event)


def _console(*, stderr: bool, no_color: bool = False, quiet: bool = False) -> Console:
    console = Console(
        stderr=stderr,
        highlight=False,
        soft_wrap=stderr,
        no_color=True if no_color else None,  # None: rich honours the NO_COLOR variable
        quiet=quiet,
    )
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        # A pipe or a file: no terminal width to fit, so don't wrap (rich would assume 80 columns).
        console.width = PIPE_WIDTH
    return console


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    if not isinstance(obj, CliState):
        obj = CliState()
        ctx.find_root().obj = obj
    obj.command = " ".join(ctx.command_path.split()[1:])
    return obj


def run(cli: CliState, coro_factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine; turn known failures into one clear line and a documented exit code."""
    import asyncio

    box: list[T] = []

    async def main() -> None:
        # The result leaves through `box`, not as the main task's result: when asyncio.run puts Ctrl-C's
        # handler back, CPython's signal module formats repr() of the handler it replaces (a partial
        # holding the main task), and a finished task's repr holds repr() of its result, built in full
        # before reprlib shortens it: the whole plan as text, twice (94 MB at 20,000 mailboxes).
        box.append(await coro_factory())

    call(cli, lambda: asyncio.run(main()))
    return box[0]


def call(cli: CliState, fn: Callable[[], T]) -> T:
    """Call a use case; turn known failures into one clear line and a documented exit code."""
    try:
        return fn()
    except CommandError as exc:
        fail(cli, exc.message, for_error(exc), exc.hint)
    except KeyboardInterrupt:
        cli.err.print("interrupted", markup=False)
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    except typer.Exit:
        raise
    except Exception as exc:
        if cli.debug:
            raise
        fail(
            cli,
            f"unexpected {type(exc).__name__}: {exc}".splitlines()[0],
            ExitCode.ERROR,
            "rerun with --debug for the traceback",
        )


def fail(cli: CliState, message: str, code: ExitCode, hint: str = "") -> NoReturn:
    if cli.output is Output.json:
        emit_json(
            cli,
            Result(command=cli.command, exit_code=code, errors=[message], messages=[hint] if hint else []),
        )
    else:
        cli.err.print(f"error: {message}", markup=False, highlight=False)
        if hint:
            cli.err.print(f"hint: {hint}", markup=False, highlight=False)
    raise typer.Exit(int(code))


def emit_json(cli: CliState, result: Result) -> None:
    from m365archive.report.jsonout import envelope

    doc: Any = envelope(
        result.command, result.status, int(result.exit_code), result.data, result.messages, result.errors
    )
    if cli.query is not None and result.status != "error":  # an error's envelope is shown whole
        import jmespath

        doc = jmespath.search(cli.query, json.loads(json.dumps(doc, default=str)))
    cli.out.print(json.dumps(doc, indent=2, default=str), markup=False, highlight=False, soft_wrap=True)


def markdown_messages(result: Result, *, heading: bool) -> str:
    """A command's messages as Markdown: under a heading naming the command unless a document came
    first; a plain line is its own paragraph, list items and table rows stay together."""
    lines = [f"# m365archive {result.command}", ""] if heading else [""]
    for message in result.messages:
        lines.append(message)
        if message.strip() and not message.lstrip().startswith(("- ", "|", "#", ">")):
            lines.append("")
    if heading and not result.messages:
        lines.append(f"Status: {result.status} (exit {int(result.exit_code)}).")
    return "\n".join(lines).rstrip("\n")


def finish(cli: CliState, result: Result) -> NoReturn:
    """Emit the result's messages (human) or envelope (json), then exit with its code."""
    if cli.output is Output.json:
        emit_json(cli, result)
    elif cli.output is Output.markdown:
        if result.messages or not cli.markdown_printed:
            cli.print_markdown(markdown_messages(result, heading=not cli.markdown_printed))
        for error in result.errors:
            cli.err.print(f"error: {error}", markup=False, highlight=False)
    else:
        for message in result.messages:
            cli.out.print(message, markup=False, highlight=False)
        for error in result.errors:
            cli.err.print(f"error: {error}", markup=False, highlight=False)
    raise typer.Exit(int(result.exit_code))


def confirm_apply(
    cli: CliState,
    yes: bool,
    question: str,
    *,
    action: str = "apply",
    hint: str = "add --yes to apply the plan shown above",
    json_output: bool | None = None,
) -> bool:
    """True to go ahead: --yes, or the operator said yes. A session nobody can answer (no terminal, or
    JSON output read by a program) is refused with exit 4 rather than left waiting."""
    if yes:
        return True
    if json_output is None:
        json_output = cli.output is Output.json
    if not cli.err.is_terminal or json_output:
        raise CommandError(
            f"refusing to {action} without confirmation in a non-interactive session", Reason.USAGE, hint
        )
    return typer.confirm(question, default=False)


def write_text(path: Path, text: str) -> None:
    """Write an output file owner-only (m365archive.files); an unwritable path is a usage error."""
    from m365archive.files import write_private

    try:
        write_private(path, text)
    except OSError as exc:
        raise CommandError(output_error(path, exc), Reason.USAGE) from None


def output_error(path: Path, exc: OSError) -> str:
    from m365archive.files import write_error

    return write_error(path, exc)


def print_table(cli: CliState, headers: list[str], rows: list[list[str]]) -> None:
    """A plain table on stdout (no box; tenant strings are never read as markup)."""
    from rich.table import Table
    from rich.text import Text

    grid = Table(*headers, box=None, pad_edge=False)
    for row in rows:
        grid.add_row(*(Text(value) for value in row))
    cli.out.print(grid)
