"""Issue 5, Step 4: the partner handoff packet, and the catch-all password never leaking into output."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

import pytest

from m365archive.partners import MESSAGE_PROPERTIES
from m365archive.paths import journal_path
from m365archive.result import ExitCode
from m365archive.sim.scenario import load_scenario
from m365archive.sim.server import SimulatedTenant, simulated_tenant
from m365archive.tenant.clouds import PARTNER_INGESTION_ENDPOINT
from tests.clihelp import EXAMPLE, m365
from tests.keyrings import CATCHALL, TENANT, MemoryKeyring
from tests.test_consent import accept_consent
from tests.test_credentials import add_catchall

SOURCE = "https://learn.microsoft.com/purview/archive-partner-third-party-data"


def test_markdown_packet_has_everything_step_4_hands_over(sim: SimulatedTenant) -> None:
    run = m365(sim.url, "partner-info")
    assert run.code == ExitCode.OK, run.stderr
    text = run.stdout
    assert "2024-12-30" in text and SOURCE in text
    assert f"| Ingestion endpoint | {PARTNER_INGESTION_ENDPOINT} |" in text  # one unwrapped table row
    assert CATCHALL in text and TENANT in text and "absent (not consented)" in text
    for prop in MESSAGE_PROPERTIES:
        assert f"| {prop.name} | {'yes' if prop.mandatory else 'no'} |" in text
    assert "IPM.NOTE.<Source>.<Event>" in text and "x-IngestionCorrelationID" in text
    assert "Partner: Veritas" in text
    assert sim.writes() == []


def test_json_packet_and_consent_state(sim: SimulatedTenant) -> None:
    from m365archive.steps.connector_consent import consent_url
    from m365archive.tenant.session import discover_simulator

    accept_consent(consent_url(discover_simulator(sim.url)))
    sim.state.clock.advance(60)
    run = m365(sim.url, "partner-info", "--output", "json")
    assert run.code == ExitCode.OK, run.stderr
    data = json.loads(run.stdout)["data"]
    assert data["ingestion_endpoint"] == PARTNER_INGESTION_ENDPOINT
    assert data["retirement"] == {"date": "2024-12-30", "source": SOURCE, "summary": data["retirement"]["summary"]}
    assert data["catchall"] == {"userPrincipalName": CATCHALL}
    assert data["connector_consent"]["present"] is True
    assert data["tenant"]["id"] == TENANT and data["message_class_format"] == "IPM.NOTE.<Source>.<Event>"
    assert [p["name"] for p in data["message_properties"] if p["mandatory"]] == ["FROM", "TO", "DATE", "MESSAGECLASS"]
    assert "x-IngestionCorrelationID" in data["ingestion_advice"]


@pytest.mark.parametrize("cloud", ["gcc", "gcc-high", "dod", "china"])
def test_other_clouds_have_no_documented_endpoint_and_take_one_from_the_flag(cloud: str) -> None:
    state = load_scenario("fresh")
    state.cloud = cloud
    with simulated_tenant(state, time_scale=0.001) as sim:
        run = m365(sim.url, "partner-info", "-o", "json")
        data = json.loads(run.stdout)["data"]
        assert data["ingestion_endpoint"] is None and "--ingestion-endpoint" in data["ingestion_endpoint_note"]
        given = m365(sim.url, "partner-info", "--ingestion-endpoint", "https://ingest.example.test/svc")
        assert "| Ingestion endpoint | https://ingest.example.test/svc |" in given.stdout
        assert "none is documented" in given.stdout


def test_include_secret_needs_out_and_confirmation(
    sim: SimulatedTenant, memory_keyring: MemoryKeyring, tmp_path: Path
) -> None:
    out = tmp_path / "handoff.md"
    no_out = m365(sim.url, "partner-info", "--include-secret")
    assert no_out.code == ExitCode.USAGE and "--out" in no_out.stderr
    unconfirmed = m365(sim.url, "partner-info", "--include-secret", "--out", str(out))
    assert unconfirmed.code == ExitCode.USAGE and not out.exists()
    assert "2024-12-30" in unconfirmed.stderr and "Exchange Administrator" in unconfirmed.stderr
    nothing = m365(sim.url, "partner-info", "--include-secret", "--out", str(out), "--yes")
    assert nothing.code == ExitCode.NO_SECRET_STORE and "credentials rotate" in nothing.stderr
    assert not out.exists()


def test_the_password_appears_only_in_the_0600_file(
    sim: SimulatedTenant, memory_keyring: MemoryKeyring, tmp_path: Path
) -> None:
    """Scan everything the product writes: stdout, stderr, reports, plans, CSV, packets, the journal."""
    outputs: list[str] = []
    files: list[Path] = []

    def run(*args: str) -> None:
        result = m365(sim.url, *args)
        assert result.code in (ExitCode.OK, ExitCode.CHANGES, ExitCode.ABSENT), (args, result.stderr)
        outputs.extend([result.stdout, result.stderr])

    def out(name: str) -> str:
        path = tmp_path / name
        files.append(path)
        return str(path)

    run("setup", "--dry-run", "--report", out("plan.md"), "--plan-out", out("plan.json"), "--csv", out("plan.csv"))
    run("-o", "json", "setup", "--dry-run")
    run("setup", "--yes", "--csv", out("applied.csv"))
    first = memory_keyring.current
    assert first and sim.state.user_by_upn(CATCHALL) is not None
    run("credentials", "rotate", "--dry-run", "--report", out("rotate.md"))
    run("-o", "json", "credentials", "rotate", "--dry-run")
    run("credentials", "rotate", "--yes", "--report", out("rotate2.md"))
    run("-o", "json", "credentials", "rotate", "--yes")
    run("credentials", "show")
    run("-o", "json", "credentials", "show")
    current = memory_keyring.current
    assert current and current != first
    user = sim.state.user_by_upn(CATCHALL)
    assert user is not None and user.password == current
    run("partner-info")
    run("partner-info", "-o", "json", "--out", out("packet.json"))
    run("status")
    run("-o", "markdown", "status")
    run("consent", "status")
    run("consent", "revoke", "--dry-run", "--report", out("revoke.md"))
    secret_file = tmp_path / "handoff.md"
    run("partner-info", "--include-secret", "--out", str(secret_file), "--yes")
    secret_json = tmp_path / "handoff.json"
    run("partner-info", "-o", "json", "--include-secret", "--out", str(secret_json), "--yes")

    for path in (secret_file, secret_json):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and current in path.read_text(encoding="utf-8")
    assert json.loads(secret_json.read_text(encoding="utf-8"))["catchall"]["password"] == current
    assert any("mode 0600" in o for o in outputs)
    assert "2024-12-30" in secret_file.read_text(encoding="utf-8")

    db = sqlite3.connect(journal_path())
    try:
        journal = "\n".join(db.iterdump())
    finally:
        db.close()
    assert "PATCH /v1.0/users/" in journal and "credentials-rotated" in journal
    everything = [*outputs, journal, *(p.read_text(encoding="utf-8") for p in files)]
    assert len(files) == 8 and all(p.exists() for p in files)
    for password in (first, current):
        leaks = [text[:80] for text in everything if password in text]
        assert leaks == []


def test_show_secret_and_include_secret_are_the_only_ways_out(
    sim: SimulatedTenant, memory_keyring: MemoryKeyring, tmp_path: Path
) -> None:
    from m365archive import secrets

    secrets.store_secret(TENANT, CATCHALL, "Kept-Secret-123!")
    add_catchall(sim, "Kept-Secret-123!")
    packet = m365(sim.url, "partner-info", "--out", str(tmp_path / "p.md"))
    assert "Kept-Secret-123!" not in packet.stdout + (tmp_path / "p.md").read_text(encoding="utf-8")
    assert stat.S_IMODE((tmp_path / "p.md").stat().st_mode) != 0 and "no secret" in packet.stdout
    assert EXAMPLE.exists()
