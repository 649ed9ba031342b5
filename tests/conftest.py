"""Shared fixtures: a running simulated tenant per test, deterministic terminal output."""

from __future__ import annotations

from collections.abc import Iterator

import keyring
import pytest
from keyring.backends import fail

from m365archive.sim.server import SimulatedTenant, simulated_tenant
from tests.keyrings import MemoryKeyring


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
