"""Live progress while applying: a bar with counts and ETA, a spinner line for waits."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from m365archive.cli.common import CliState, Output

if TYPE_CHECKING:
    from m365archive.engine.runner import Event


@contextmanager
def live_progress(cli: CliState, description: str = "applying") -> Iterator[None]:
    if cli.output is not Output.human or not cli.err.is_terminal:

        def quiet(event: Event) -> None:
            if cli.verbose and event.kind in ("wait", "waited") and event.message:
                cli.err.print(f"… {event.message}", markup=False, highlight=False)

        previous = cli.on_event
        cli.on_event = quiet  # type: ignore[method-assign]
        try:
            yield
        finally:
            cli.on_event = previous  # type: ignore[method-assign]
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
        if event.kind in ("start", "progress", "done"):
            progress.update(task, completed=event.done, total=event.total or None, description=description)
        elif event.kind == "wait":
            progress.update(task, description=event.message)
        elif event.kind == "waited":
            progress.console.print(f"  {event.message}", markup=False, highlight=False)
            progress.update(task, description=description)

    previous = cli.on_event
    cli.on_event = update  # type: ignore[method-assign]
    try:
        with progress:
            yield
    finally:
        cli.on_event = previous  # type: ignore[method-assign]
