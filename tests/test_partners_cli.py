"""Issue 5, Step 1: `m365archive partners` lists the reference page's partners, searchable by source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from m365archive.partners import PARTNERS
from m365archive.result import ExitCode
from tests.clihelp import EXAMPLE, m365

BLOOMBERG = {"Bloomberg Chat", "Bloomberg Mail", "Instant Bloomberg", "Bloomberg Data Streams"}


def test_lists_every_partner_with_its_sources_and_the_retirement(tmp_path: Path) -> None:
    run = m365(None, "partners", config=tmp_path / "absent.toml")  # no config needed
    assert run.code == ExitCode.OK, run.stderr
    for partner in PARTNERS:
        assert partner.name in run.stdout
        assert all(f"  - {source}" in run.stdout for source in partner.sources)
    assert "2024-12-30" in run.stdout and "chosen" not in run.stdout


@pytest.mark.parametrize("query", ["bloomberg", "BLOOMBERG", " Bloomberg "])
def test_source_search_is_case_insensitive_and_forgiving(query: str) -> None:
    run = m365(None, "-o", "json", "partners", "--source", query)
    assert run.code == ExitCode.OK, run.stderr
    data = json.loads(run.stdout)["data"]
    found = {source for p in data["partners"] for source in p["sources"]}
    assert found >= BLOOMBERG
    assert all("bloomberg" in source.lower() for source in found)


def test_the_partner_chosen_in_the_config_is_marked() -> None:
    run = m365(None, "partners", "--source", "bloomberg", config=EXAMPLE)  # partner = "Veritas"
    assert "Veritas (chosen in the config)" in run.stdout
    data = json.loads(m365(None, "-o", "json", "partners", config=EXAMPLE).stdout)["data"]
    assert data["chosen"] == "Veritas"
    assert [p["name"] for p in data["partners"] if p["chosen"]] == ["Veritas"]


def test_no_match_says_so() -> None:
    run = m365(None, "partners", "--source", "carrier pigeon")
    assert run.code == ExitCode.OK and "No partner lists a data source matching 'carrier pigeon'" in run.stdout


def test_markdown_output() -> None:
    run = m365(None, "-o", "markdown", "partners", "--source", "twitter")
    assert "## ArchiveSocial" in run.stdout and "- Twitter" in run.stdout
