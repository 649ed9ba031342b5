"""Live progress while applying: a bar with counts and ETA, a spinner line for waits.

Without a terminal (CI logs, pipes) and with -v, the same events are logged as lines instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from m365archive.cli.common import CliState, Output
from m365archive.engine.runner import EventKind

if TYPE_CHECKING:
    from m365archive.engine.runner import Event


@contextmanager
def _sink(cli: CliState, sink: Callable[[Event], None]) -> Iterator[None]:
    previous = cli.event_sink
    cli.event_sink = sink
    try:
        yield
    finally:
        cli.event_sink = previous


@contextmanager
def live_progress(cli: CliState, description: str = "applying") -> Iterator[None]:
    if cli.output is not Output.human or not cli.err.is_terminal or cli.quiet:
        said = [-1]

        def log(event: Event) -> None:
            if not cli.verbose or cli.output is not Output.human:
                return
            if event.kind in (EventKind.WAIT, EventKind.WAITED) and event.message:
                cli.err.print(f"… {event.message}", markup=False, highlight=False)
            elif (
                event.kind in (EventKind.START, EventKind.PROGRESS, EventKind.DONE)
                and event.total
                and event.done != said[0]
            ):
                said[0] = event.done
                cli.err.print(f"… {description} {event.done}/{event.total}", markup=False, highlight=False)

        with _sink(cli, log):
            yield
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=cli.err,
        transient=True,
    )
    task = progress.add_task(description, total=None)

    def update(event: Event) -> None:
        if event.kind in (EventKind.START, EventKind.PROGRESS, EventKind.DONE):
            progress.update(task, completed=event.done, total=event.total or None, description=description)
        elif event.kind is EventKind.WAIT:
            progress.update(task, description=event.message)
        elif event.kind is EventKind.WAITED:
            progress.console.print(f"  {event.message}", markup=False, highlight=False)
            progress.update(task, description=description)

    with _sink(cli, update), progress:
        yield
