"""Issues 4 and 6 on the `hybrid` scenario: synced users' archives go on-premises (real pypsrp
over a socket to the simulated /PowerShell endpoint), holds go to Exchange Online."""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from m365archive.app.preflight import tcp_reachable
from m365archive.result import ExitCode
from m365archive.sim.server import SimulatedTenant, simulated_tenant
from tests.clihelp import EXAMPLE, m365

EXAMPLE_HYBRID = EXAMPLE.parent / "hybrid.toml"
# The example asks for Kerberos, what Exchange's /PowerShell accepts; the simulator has no KDC and its
# hybrid scenario accepts NTLM on purpose, so these tests sign in with NTLM.
HYBRID = Path(tempfile.mkdtemp(prefix="m365archive-hybrid-")) / "hybrid-ntlm.toml"
HYBRID.write_text(
    EXAMPLE_HYBRID.read_text(encoding="utf-8").replace('auth = "kerberos"', 'auth = "ntlm"', 1), encoding="utf-8"
)
SYNCED = ["adele.vance", "diego.siciliani", "megan.bowen"]


@pytest.fixture
def hybrid(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimulatedTenant]:
    with simulated_tenant("hybrid", time_scale=0.001) as sim:
        monkeypatch.setenv("M365ARCHIVE_ONPREM_PASSWORD", sim.state.onprem_users["CONTOSO\\exadmin"])
        yield sim


def upn(name: str) -> str:
    return f"{name}@contoso.onmicrosoft.com"


def test_without_onprem_synced_users_need_on_premises_action(hybrid: SimulatedTenant, tmp_path: Path) -> None:
    plan = tmp_path / "p.json"
    assert m365(hybrid.url, "setup", "--dry-run", "--plan-out", str(plan)).code == ExitCode.OK
    doc = json.loads(plan.read_text())
    needs = {f["target"] for f in doc["findings"] if f.get("category") == "needs-on-premises"}
    assert needs == {upn(n) for n in SYNCED}
    for f in doc["findings"]:
        if f.get("category") == "needs-on-premises":
            assert f"Enable-RemoteMailbox -Identity '{f['target']}' -Archive" in f["remedy"]
    archive_targets = {c["target"] for c in doc["changes"] if c["setting"] == "archive" and c["action"] != "no-op"}
    assert upn("records.manager") in archive_targets and not archive_targets & needs
    run = m365(hybrid.url, "setup", "--yes", "--password-file", str(tmp_path / "pw"))
    assert run.code == ExitCode.OK, run.stdout + run.stderr
    for name in SYNCED:
        user = hybrid.state.user_by_upn(upn(name))
        assert user is not None
        mbx = hybrid.state.mailboxes[user.id]
        assert mbx.archive_status == "None" and mbx.litigation_hold_enabled  # hold in the cloud, archive not


def test_with_onprem_setup_converges_through_directory_sync(hybrid: SimulatedTenant, tmp_path: Path) -> None:
    plan = tmp_path / "p.json"
    assert m365(hybrid.url, "setup", "--dry-run", "--plan-out", str(plan), config=HYBRID).code == ExitCode.OK
    doc = json.loads(plan.read_text())
    onprem = {c["target"]: c for c in doc["changes"] if c["side"] == "on-premises Exchange" and c["action"] != "no-op"}
    assert set(onprem) == {upn(n) for n in SYNCED}
    assert onprem[upn("adele.vance")]["operation"]["powershell"] == (
        "Enable-RemoteMailbox -Identity 'adele.vance@contoso.onmicrosoft.com' -Archive"
    )
    assert hybrid.writes() == []

    run = m365(hybrid.url, "setup", "--yes", "--password-file", str(tmp_path / "pw"), config=HYBRID)
    assert run.code == ExitCode.OK, run.stdout + run.stderr
    onprem_writes = [e for e in hybrid.writes() if e["service"] == "onprem"]
    assert onprem_writes, "Enable-RemoteMailbox went over WSMan/PSRP"
    for name in SYNCED:
        user = hybrid.state.user_by_upn(upn(name))
        assert user is not None
        assert hybrid.state.remote_mailboxes[user.id].archive_state == "HostedProvisioned"
        mbx = hybrid.state.mailboxes[user.id]
        assert mbx.archive_status == "Active", "directory sync carried the archive to Exchange Online"
        assert mbx.litigation_hold_enabled
    cloud = hybrid.state.user_by_upn(upn("records.manager"))
    assert cloud is not None and hybrid.state.mailboxes[cloud.id].archive_status == "Active"

    hybrid.log.clear()
    again = m365(hybrid.url, "setup", "--dry-run", "--detailed-exitcode", config=HYBRID)
    assert again.code == ExitCode.OK, again.stdout
    assert hybrid.writes() == []


def test_archives_awaiting_sync_are_pending_not_replanned(hybrid: SimulatedTenant, tmp_path: Path) -> None:
    cfg = tmp_path / "h.toml"
    cfg.write_text(HYBRID.read_text().replace("sync_timeout = 3600", "sync_timeout = 0.01"), encoding="utf-8")
    hybrid.state.knobs.dir_sync_delay = 10_000_000.0  # simulated seconds: sync won't come during this test
    run = m365(hybrid.url, "setup", "--yes", "--password-file", str(tmp_path / "pw"), config=cfg)
    assert run.code == ExitCode.OK, run.stdout + run.stderr
    assert "not yet visible in Exchange Online" in run.stdout
    plan = tmp_path / "p.json"
    assert m365(hybrid.url, "setup", "--dry-run", "--plan-out", str(plan), config=cfg).code == ExitCode.OK
    doc = json.loads(plan.read_text())
    assert not [c for c in doc["changes"] if c["side"] == "on-premises Exchange" and c["action"] != "no-op"]
    pending = {f["target"] for f in doc["findings"] if f.get("category") == "pending-directory-sync"}
    assert pending == {upn(n) for n in SYNCED}


def test_wrong_onprem_password_is_a_clear_auth_error_with_no_cloud_change(
    hybrid: SimulatedTenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("M365ARCHIVE_ONPREM_PASSWORD", "not-the-password")
    run = m365(hybrid.url, "setup", "--yes", "--password-file", str(tmp_path / "pw"), config=HYBRID)
    assert run.code == ExitCode.AUTH, run.stdout + run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) <= 2
    assert hybrid.writes() == []


def test_preflight_onprem_passes_with_real_rights_and_changes_nothing(hybrid: SimulatedTenant) -> None:
    before = {rm.identity: rm.archive_state for rm in hybrid.state.remote_mailboxes.values()}
    run = m365(hybrid.url, "preflight", "--onprem", config=HYBRID)
    assert run.code == ExitCode.OK, run.stdout + run.stderr
    for check in ("connectivity", "authentication", "read remote mailboxes", "enable archives"):
        assert f"PASS  {check}" in run.stdout
    assert {rm.identity: rm.archive_state for rm in hybrid.state.remote_mailboxes.values()} == before


def test_preflight_onprem_wrong_password_and_unreachable(
    hybrid: SimulatedTenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("M365ARCHIVE_ONPREM_PASSWORD", "wrong")
    run = m365(hybrid.url, "preflight", "--onprem", config=HYBRID)
    assert run.code == ExitCode.AUTH
    assert "PASS  connectivity" in run.stdout and "FAIL  authentication" in run.stdout
    doc = json.loads(m365(hybrid.url, "--output", "json", "preflight", "--onprem", config=HYBRID).stdout)
    assert doc["exit_code"] == ExitCode.AUTH and doc["data"]["checks"][1]["ok"] is False
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    verdict = asyncio.run(tcp_reachable("127.0.0.1", closed))
    assert not verdict.ok and f"127.0.0.1:{closed} is not reachable" in verdict.detail


def test_preflight_onprem_needs_an_onprem_table(hybrid: SimulatedTenant) -> None:
    no_onprem = m365(hybrid.url, "preflight", "--onprem")
    assert no_onprem.code == ExitCode.USAGE and "[onprem]" in no_onprem.stderr


@pytest.mark.usefixtures("no_keyring")
def test_without_a_keyring_only_commands_that_use_onprem_need_its_password(
    hybrid: SimulatedTenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("M365ARCHIVE_ONPREM_PASSWORD")
    consent = m365(hybrid.url, "consent", "status", config=HYBRID)
    assert consent.code in (ExitCode.OK, ExitCode.ABSENT), consent.stderr  # never asks for the on-prem password
    preflight = m365(hybrid.url, "preflight", "--onprem", config=HYBRID)
    assert preflight.code == ExitCode.NO_SECRET_STORE, preflight.stdout + preflight.stderr
    assert "there is no keyring on this machine" in preflight.stderr
    assert "set M365ARCHIVE_ONPREM_PASSWORD for this run" in preflight.stderr  # a remedy that exists
    assert "unexpected" not in preflight.stderr
