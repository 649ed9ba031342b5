"""Shared fixtures: a running simulated tenant per test, deterministic terminal output."""

from __future__ import annotations

import weakref
from collections.abc import Iterator

import keyring
import pytest
from keyring.backends import fail

from m365archive.sim import server
from m365archive.sim.server import SimulatedTenant, simulated_tenant
from tests.keyrings import MemoryKeyring
from tests.requestlog import check

_LIVE: weakref.WeakSet[SimulatedTenant] = weakref.WeakSet()  # simulators that may outlive a test (module scope)
server.ON_START.append(_LIVE.add)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "naive_requests: the test sends requests the real service would refuse, on purpose (no log check)"
    )


@pytest.fixture(autouse=True)
def _request_log_check(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test, every request the product sent to a simulator during it passes tests/requestlog.py.

    Per test and in the test's own process (works under pytest-xdist): simulators started during the test are
    held until it ends; longer-lived ones are read from where their log stood when the test began."""
    started: list[SimulatedTenant] = []

    offsets = {id(sim): (sim, len(sim.log.entries)) for sim in list(_LIVE)}
    server.ON_START.append(started.append)
    try:
        yield
    finally:
        server.ON_START.remove(started.append)
    if request.node.get_closest_marker("naive_requests"):
        return
    problems: list[str] = []
    for sim, offset in [*offsets.values(), *((s, 0) for s in started)]:
        problems += check(list(sim.log.entries[offset:]))
    if problems:
        pytest.fail("request-log check:\n  " + "\n  ".join(dict.fromkeys(problems)), pytrace=False)


@pytest.fixture(autouse=True)
def _deterministic_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("M365ARCHIVE_HOME", str(tmp_path_factory.mktemp("home")))
    monkeypatch.delenv("M365ARCHIVE_SIM", raising=False)


@pytest.fixture
def sim() -> Iterator[SimulatedTenant]:
    """The `fresh` scenario with delays scaled down 1000x."""
    with simulated_tenant("fresh", time_scale=0.001) as tenant:
        yield tenant


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    """An in-memory keyring backend for the test, the previous one restored after."""
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


@pytest.fixture
def no_keyring() -> Iterator[None]:
    """keyring's fail backend: a machine without a secret store."""
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        keyring.set_keyring(previous)
