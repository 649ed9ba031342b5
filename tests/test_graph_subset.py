"""The project's Graph subset (tests/specs/graph-v1.0-subset.json) is what the generator makes from Microsoft's
CSDL. The CSDL lives in shared/specs beside the repository: without it this test is skipped, except in CI
(CI=true), where a missing spec fails the run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.specs import graph_subset

METADATA = graph_subset.DEFAULT_METADATA


def _metadata() -> Path:
    if not METADATA.is_file():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{METADATA} is missing: CI must have shared/specs beside the checkout")
        pytest.skip(f"{METADATA} not found (shared/specs beside the checkout)")
    return METADATA


def test_the_committed_subset_is_what_the_generator_makes() -> None:
    assert graph_subset.main(["--metadata", str(_metadata()), "--check"]) == 0


def test_paths_resolve_through_the_csdl_and_an_invented_one_does_not() -> None:
    csdl = graph_subset.Csdl(_metadata())
    assert graph_subset.resolve(csdl, "/users/{user-id}/assignLicense") == "microsoft.graph.user"
    assert graph_subset.resolve(csdl, "/groups/{group-id}/members/graph.user") == "microsoft.graph.user"
    for invented in ("/users/{user-id}/archiveMailbox", "/servicePrincipals(appName='{x}')", "/users/graph.group"):
        with pytest.raises(KeyError):
            graph_subset.resolve(csdl, invented)


def test_the_check_fails_when_the_committed_file_is_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "subset.json"
    stale.write_text("{}\n", encoding="utf-8")
    monkeypatch.setattr(graph_subset, "OUTPUT", stale)
    assert graph_subset.main(["--metadata", str(_metadata()), "--check"]) == 1
