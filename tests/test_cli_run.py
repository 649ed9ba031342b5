"""The CLI's coroutine runner (cli/common.py `run`)."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from m365archive.cli.common import CliState, run


class Costly:
    """Stands for a plan of 100,000 changes: its repr() is hundreds of MB, so nothing may build it."""

    reprs = 0

    def __repr__(self) -> str:
        Costly.reprs += 1
        return "Costly()"


@pytest.fixture
def default_ctrl_c() -> Iterator[None]:
    # asyncio.run installs its own Ctrl-C handler only over Python's default one (as in the CLI)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.mark.usefixtures("default_ctrl_c")
def test_a_commands_result_is_returned_and_never_formatted_with_repr() -> None:
    # asyncio.run, restoring Ctrl-C's handler, formats repr() of its handler, which holds the main task
    # and so repr() of the task's result: the whole plan as text, at the end of every dry run.
    result = Costly()

    async def command() -> Costly:
        return result

    Costly.reprs = 0
    assert run(CliState(), command) is result
    assert Costly.reprs == 0
