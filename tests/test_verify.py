"""Issue 20: `verify` (arrivals per source and mailbox, reads only), its snapshots and `verify --history`,
against the simulator's `arrivals` scenario moved a simulated day at a time."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from m365archive.partners import PURVIEW_CONNECTORS, find_purview_connector
from m365archive.result import ExitCode
from m365archive.sim.exchange.folders import byte_quantified
from m365archive.sim.server import SimulatedTenant, simulated_tenant
from m365archive.sim.state import DAY
from tests.clihelp import EXAMPLE, m365

ARRIVALS = Path(__file__).parents[1] / "examples" / "arrivals.toml"
CATCHALL = "thirdpartydata@contoso.onmicrosoft.com"
UNMAPPED_PER_DAY = 5  # 10 items a day for each of 5 traders, 10% more unmapped
SILENT_SOURCE = "verify/silent-source/ICE Chat"


@pytest.fixture(scope="module")
def days(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`verify -o json` after each of simulated days 1-10, the simulator, and the state directory used."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp, simulated_tenant("arrivals", time_scale=1.0) as sim:
        mp.setenv("M365ARCHIVE_HOME", str(home))
        mp.setenv("NO_COLOR", "1")
        mp.setenv("COLUMNS", "200")
        runs: dict[int, tuple[int, dict[str, Any]]] = {}
        for day in range(1, 11):
            sim.state.clock.advance(DAY)
            run = m365(sim.url, "verify", "-o", "json", config=ARRIVALS)
            runs[day] = (run.code, json.loads(run.stdout))
        yield {"runs": runs, "sim": sim, "home": home}


def _finding(doc: dict[str, Any], ident: str) -> dict[str, Any] | None:
    return next((f for f in doc["data"]["findings"] if f["id"] == ident), None)


def _source(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in doc["data"]["sources"] if s["source"] == name)


def test_the_silent_source_is_named_from_the_right_day(days: dict[str, Any]) -> None:
    # ICE Chat stops on day 5: its last run landed on day 4 (2024-12-14); silent for 3 days from day 7 on.
    for day, (code, doc) in days["runs"].items():
        assert code == ExitCode.FINDINGS, (day, doc["errors"])
        assert doc["data"]["taken_at"].startswith(f"2024-12-{10 + day:02d}")  # the service's clock, not ours
        silent = _finding(doc, SILENT_SOURCE)
        if day < 7:
            assert silent is None, day
            assert not _source(doc, "ICE Chat")["silent"]
        else:
            assert silent is not None and silent["severity"] == "high", day
            assert "since 2024-12-14T00:00:00Z" in silent["message"]
        ice = _source(doc, "ICE Chat")
        assert ice["items"] == 3 * 5 * min(day, 4)  # 3 a day into 5 mailboxes, days 1-4
        bloomberg = _source(doc, "Instant Bloomberg")
        assert not bloomberg["silent"] and bloomberg["items"] == 4 * 5 * day
        assert bloomberg["folder"] == "/InstantBloomberg" and ice["folder"] == "/ICE Chat"
        assert _finding(doc, "verify/silent-source/Instant Bloomberg") is None


def test_unmapped_items_are_counted_in_the_catchall_inbox(days: dict[str, Any]) -> None:
    for day, (_code, doc) in days["runs"].items():
        (inbox,) = doc["data"]["catchall"]
        assert inbox["upn"] == CATCHALL and inbox["items"] == UNMAPPED_PER_DAY * day
        unmapped = _finding(doc, f"verify/unmapped/{CATCHALL}")
        assert unmapped is not None and f"{UNMAPPED_PER_DAY * day} unmapped item(s)" in unmapped["message"]
        # the catch-all is read for its Inbox, never counted as a mailbox that should receive
        assert CATCHALL not in _source(doc, "ICE Chat")["never"]


def test_a_receiving_mailbox_off_hold_is_drift(days: dict[str, Any]) -> None:
    _code, doc = days["runs"][1]
    drift = _finding(doc, "verify/hold-drift/mailboxes")
    assert drift is not None and "johanna.lanier@contoso.onmicrosoft.com" in drift["message"]


def test_verify_sends_only_reads(days: dict[str, Any]) -> None:
    sim: SimulatedTenant = days["sim"]
    assert sim.writes() == []
    cmdlets = [c for e in sim.requests for c in (e.get("cmdlets") or [e.get("cmdlet")]) if c]
    assert set(cmdlets) == {"Get-Mailbox", "Get-MailboxFolderStatistics"}


def test_each_run_keeps_an_owner_only_snapshot(days: dict[str, Any]) -> None:
    files = sorted((Path(days["home"]) / "verify").rglob("*.json"))
    assert len(files) == 10
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)


def test_history_has_one_point_per_run_and_source(
    days: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("M365ARCHIVE_HOME", str(days["home"]))
    csv_file, png = tmp_path / "arrivals.csv", tmp_path / "arrivals.png"
    run = m365(None, "verify", "--history", "--csv", str(csv_file), "--png", str(png), "-o", "json", config=ARRIVALS)
    assert run.code == ExitCode.OK, run.stderr
    points = json.loads(run.stdout)["data"]["points"]
    series = {"Instant Bloomberg", "ICE Chat", f"unmapped in {CATCHALL}"}
    assert len(points) == 10 * len(series)
    assert {p["source"] for p in points} == series
    assert len({(p["taken_at"], p["source"]) for p in points}) == len(points)
    ice = [p for p in points if p["source"] == "ICE Chat"]
    assert [p["new_items"] for p in ice] == [0, 15, 15, 15, 0, 0, 0, 0, 0, 0]

    rows = list(csv.DictReader(io.StringIO(csv_file.read_text())))
    assert len(rows) == len(points) and rows[0].keys() == set(points[0])
    assert [int(r["items"]) for r in rows if r["source"] == f"unmapped in {CATCHALL}"] == [5 * d for d in range(1, 11)]

    from matplotlib.image import imread

    pixels = imread(str(png))  # decodes
    assert pixels.shape[:2] == (500, 1000)
    assert len({tuple(p) for p in pixels.reshape(-1, pixels.shape[2])[::97]}) > 3  # not blank
    assert stat.S_IMODE(png.stat().st_mode) == 0o600


def test_history_draws_the_terminal_chart_and_markdown(days: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("M365ARCHIVE_HOME", str(days["home"]))
    human = m365(None, "verify", "--history", config=ARRIVALS)
    assert human.code == ExitCode.OK, human.stderr
    assert "Items per source" in human.stdout and "┌" in human.stdout and "2024-12-11" in human.stdout
    assert "\x1b[" not in human.stdout  # no colour codes into a pipe
    md = m365(None, "verify", "--history", "--png", "chart.png", "-o", "markdown", config=ARRIVALS)
    assert md.code == ExitCode.OK and "![Items per source](chart.png)" in md.stdout and "| ICE Chat |" in md.stdout
    Path("chart.png").unlink()


def test_history_without_snapshots_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("M365ARCHIVE_HOME", str(tmp_path))
    run = m365(None, "verify", "--history", config=ARRIVALS)
    assert run.code == ExitCode.OK and "No verify snapshots yet" in run.stdout


def test_png_without_matplotlib_is_one_line(
    days: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("M365ARCHIVE_HOME", str(days["home"]))
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # the charts extra is not installed
    run = m365(None, "verify", "--history", "--png", str(tmp_path / "x.png"), config=ARRIVALS)
    assert run.code == ExitCode.USAGE
    assert run.stderr.strip().splitlines()[0] == (
        "error: the PNG chart needs matplotlib: pip install 'm365archive[charts]' (or pipx inject m365archive "
        "matplotlib)"
    )
    assert not (tmp_path / "x.png").exists()


def test_partner_ews_reports_only_what_is_left(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("M365ARCHIVE_HOME", str(tmp_path))
    with simulated_tenant("arrivals", time_scale=1.0) as sim:
        sim.state.clock.advance(3 * DAY)
        run = m365(sim.url, "verify", config=EXAMPLE)  # procedure = "partner-ews", catch-all thirdpartydata@
        cmdlets = [e.get("cmdlets") or [e.get("cmdlet")] for e in sim.requests if e.get("service") == "exchange"]
    assert run.code == ExitCode.FINDINGS, run.stderr
    assert "no arrivals are expected since 2024-12-30" in run.stdout
    assert f"15 unmapped item(s) in the Inbox of {CATCHALL}" in run.stdout
    assert "Instant Bloomberg" not in run.stdout and "ICE Chat" not in run.stdout
    assert [c for batch in cmdlets for c in batch] == ["Get-MailboxFolderStatistics"]  # the catch-all only


def test_exit_0_when_nothing_is_raised_and_accepted_risks_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("M365ARCHIVE_HOME", str(tmp_path))
    config = tmp_path / "m365archive.toml"
    text = ARRIVALS.read_text().replace('legacy_catchall = ["thirdpartydata@contoso.onmicrosoft.com"]', "")
    config.write_text(
        text + '\n[[accepted_risks]]\nid = "verify/hold-drift/mailboxes"\nreason = "kiosk user, CAB-1"\n'
        '\n[[accepted_risks]]\nid = "verify/never-received/Instant Bloomberg"\nreason = "the catch-all"\n'
    )
    with simulated_tenant("arrivals", time_scale=1.0) as sim:
        sim.state.clock.advance(2 * DAY)
        run = m365(sim.url, "verify", "--source", "instant-bloomberg", config=config)
    assert run.code == ExitCode.OK, run.stdout + run.stderr
    assert "accepted: kiosk user, CAB-1" in run.stdout
    assert "Every source checked is arriving as expected." in run.stdout


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--source", "myspace"], "error: verify: 'myspace' is not a known Purview data connector"),
        (["--silent-after", "soon"], "error: --silent-after: 'soon' is not a duration such as 3d, 36h or 2w"),
        (["--csv", "x.csv"], "error: --csv and --png go with --history"),
    ],
)
def test_bad_input_is_one_line_and_exit_4(args: list[str], line: str) -> None:
    run = m365("http://127.0.0.1:9", "verify", *args, config=ARRIVALS)
    assert run.code == ExitCode.USAGE
    assert run.stderr.splitlines()[0].startswith(line)


def test_a_source_without_a_named_folder_is_said_unverifiable() -> None:
    merge1 = find_purview_connector("veritas-merge1")
    assert merge1 is not None and merge1.folder is None and merge1.folder_note
    for connector in PURVIEW_CONNECTORS:  # every connector names its folder with its source, or says why not
        assert (
            connector.folder is not None and connector.folder.source.startswith("https://learn.microsoft.com/")
        ) or (connector.folder is None and connector.folder_note)


def test_folder_sizes_read_as_exchange_writes_them() -> None:
    assert byte_quantified(0) == "0 B (0 bytes)"
    assert byte_quantified(12_800) == "12.5 KB (12,800 bytes)"
    assert byte_quantified(3 * 1024**3) == "3 GB (3,221,225,472 bytes)"


def test_help_loads_no_chart_library() -> None:
    code = (
        "import sys; sys.argv = ['m365archive', 'verify', '--help']\n"
        "from m365archive.cli.main import run\n"
        "try:\n    run()\nexcept SystemExit:\n    pass\n"
        "print('LOADED', sorted(m for m in ('plotext', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ)
    assert "--silent-after" in out.stdout and "LOADED []" in out.stdout


def test_a_catchall_that_is_gone_leaves_nothing_to_check(sim: SimulatedTenant) -> None:
    run = m365(sim.url, "verify", config=EXAMPLE)  # partner-ews on a fresh tenant: no catch-all mailbox
    assert run.code == ExitCode.OK, run.stdout + run.stderr
    assert f"no mailbox {CATCHALL}: no catch-all Inbox left to check" in run.stdout
