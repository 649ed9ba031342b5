"""Shared fixtures: a running simulated tenant per test, deterministic terminal output."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from m365archive.sim.server import SimulatedTenant, simulated_tenant


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
