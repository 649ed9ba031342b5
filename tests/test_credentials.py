"""Issue 5: the catch-all password in the keyring, `credentials show|rotate`, and no keyring at all."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from m365archive import secrets
from m365archive.app.credentials import PENDING_SUFFIX, PasswordStore
from m365archive.engine.journal import Journal
from m365archive.paths import journal_path
from m365archive.result import ExitCode
from m365archive.sim.server import SimulatedTenant
from tests.clihelp import m365
from tests.keyrings import MemoryKeyring

TENANT = "6f1c2a4e-3b5d-4c7e-9f10-2a3b4c5d6e7f"
CATCHALL = "thirdpartydata@contoso.onmicrosoft.com"


def add_catchall(sim: SimulatedTenant, password: str) -> None:
    """The catch-all account as `setup` leaves it (only the user matters to rotation), seeded as a scenario."""
    from m365archive.sim.state import User, new_id

    with sim.state.lock:
        sim.state.add_user(
            User(
                id=new_id(),
                user_principal_name=CATCHALL,
                display_name="Third-party data",
                mail_nickname="thirdpartydata",
                usage_location="US",
                password=password,
            )
        )


def sim_password(sim: SimulatedTenant) -> str | None:
    user = sim.state.user_by_upn(CATCHALL)
    assert user is not None
    return user.password


# --- no keyring --------------------------------------------------------------------------------


@pytest.mark.usefixtures("no_keyring")
@pytest.mark.parametrize(
    "args",
    [
        ("credentials", "rotate", "--yes"),
        ("credentials", "show"),
        ("credentials", "show", "--show-secret"),
        ("partner-info", "--include-secret", "--out", "OUT", "--yes"),
        ("setup", "--yes"),
    ],
)
def test_without_a_keyring_commands_that_need_the_secret_say_what_to_do_and_write_nothing(
    sim: SimulatedTenant, tmp_path: Path, args: tuple[str, ...]
) -> None:
    out = tmp_path / "packet.md"
    run = m365(sim.url, *[str(out) if a == "OUT" else a for a in args])
    assert run.code == ExitCode.NO_SECRET_STORE, run.stdout + run.stderr
    assert "no keyring backend" in run.stderr
    assert "keyrings.alt" in run.stderr and "--password-file" in run.stderr and "0600" in run.stderr
    assert sim.writes() == []
    assert not out.exists()


@pytest.mark.usefixtures("no_keyring")
def test_without_a_keyring_json_output_carries_the_documented_code(sim: SimulatedTenant) -> None:
    import json

    run = m365(sim.url, "-o", "json", "credentials", "rotate", "--yes")
    assert run.code == ExitCode.NO_SECRET_STORE
    doc = json.loads(run.stdout)
    assert doc["exit_code"] == 10 and doc["status"] == "error" and "keyring" in doc["errors"][0]
    assert sim.writes() == []


# --- show ----------------------------------------------------------------------------------------


def test_show_names_the_keyring_entry_and_prints_the_secret_only_when_asked(
    sim: SimulatedTenant, memory_keyring: MemoryKeyring
) -> None:
    secrets.store_secret(TENANT, CATCHALL, "Kept-Secret-123!")
    plain = m365(sim.url, "credentials", "show")
    assert plain.code == ExitCode.OK, plain.stderr
    assert "Kept-Secret-123!" not in plain.stdout + plain.stderr
    assert "keyring service 'm365archive'" in plain.stdout
    assert f"'{TENANT}/{CATCHALL}'" in plain.stdout and "Password: stored" in plain.stdout
    shown = m365(sim.url, "credentials", "show", "--show-secret")
    assert shown.code == ExitCode.OK and "Kept-Secret-123!" in shown.stdout
    assert sim.writes() == []


# --- rotate --------------------------------------------------------------------------------------


def test_rotate_resets_through_graph_then_keeps_the_new_password_and_journals_it(
    sim: SimulatedTenant, memory_keyring: MemoryKeyring, tmp_path: Path
) -> None:
    secrets.store_secret(TENANT, CATCHALL, "Old-Password-123!")
    add_catchall(sim, "Old-Password-123!")
    report = tmp_path / "rotate.md"
    dry = m365(sim.url, "credentials", "rotate", "--dry-run", "--report", str(report))
    assert dry.code == ExitCode.OK, dry.stderr
    assert sim.writes() == [] and memory_keyring.pending is None
    assert "PATCH /v1.0/users/" in report.read_text(encoding="utf-8")

    refused = m365(sim.url, "credentials", "rotate")  # not a terminal, no --yes
    assert refused.code == ExitCode.USAGE and sim.writes() == []

    run = m365(sim.url, "credentials", "rotate", "--yes")
    assert run.code == ExitCode.OK, run.stdout + run.stderr
    new = memory_keyring.current
    assert new and new != "Old-Password-123!" and sim_password(sim) == new
    assert memory_keyring.pending is None
    assert new not in run.stdout + run.stderr + report.read_text(encoding="utf-8")
    patches = [w for w in sim.writes() if w["method"] == "PATCH"]
    assert len(patches) == 1 and patches[0]["path"].startswith("/v1.0/users/")
    journal = Journal(journal_path())
    try:
        rows = [r for r in journal.rows() if r["setting"] == "password"]
        assert rows and rows[-1]["outcome"] == "ok" and rows[-1]["operation"].startswith("PATCH /v1.0/users/")
        assert any(e["kind"] == "credentials-rotated" for e in journal.rows("events"))
    finally:
        journal.close()


def test_a_crash_between_graph_and_the_keyring_is_finished_by_the_next_rotate(
    sim: SimulatedTenant, memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets.store_secret(TENANT, CATCHALL, "Old-Password-123!")
    add_catchall(sim, "Old-Password-123!")

    def crash(self: PasswordStore, value: str) -> None:
        raise KeyboardInterrupt  # the process dies after Graph accepted the new password

    with monkeypatch.context() as patch:
        patch.setattr(PasswordStore, "promote", crash)
        interrupted = m365(sim.url, "credentials", "rotate", "--yes")
    assert interrupted.code == ExitCode.INTERRUPTED
    live = sim_password(sim)
    assert live is not None and live != "Old-Password-123!" and memory_keyring.pending == live  # nothing lost
    assert memory_keyring.current == "Old-Password-123!"

    show = m365(sim.url, "credentials", "show")
    assert "rotation was interrupted" in show.stdout and live not in show.stdout

    finished = m365(sim.url, "credentials", "rotate", "--yes")
    assert finished.code == ExitCode.OK, finished.stderr
    assert "interrupted rotation" in finished.stdout
    assert memory_keyring.current == live == sim_password(sim)  # the same value was sent again
    assert memory_keyring.pending is None


def test_a_pending_password_graph_refuses_is_dropped_and_the_old_one_kept(
    sim: SimulatedTenant, memory_keyring: MemoryKeyring
) -> None:
    secrets.store_secret(TENANT, CATCHALL, "Old-Password-123!")
    secrets.store_secret(TENANT, CATCHALL + PENDING_SUFFIX, "weak")
    add_catchall(sim, "Old-Password-123!")
    run = m365(sim.url, "credentials", "rotate", "--yes")
    assert run.code == ExitCode.ERROR and "not reset" in run.stderr
    assert memory_keyring.pending is None and memory_keyring.current == "Old-Password-123!"
    assert sim_password(sim) == "Old-Password-123!"
    again = m365(sim.url, "credentials", "rotate", "--yes")
    assert again.code == ExitCode.OK and sim_password(sim) == memory_keyring.current != "Old-Password-123!"


def test_rotate_without_the_account_is_a_prerequisite_error(
    sim: SimulatedTenant, memory_keyring: MemoryKeyring
) -> None:
    run = m365(sim.url, "credentials", "rotate", "--yes")
    assert run.code == ExitCode.PREREQUISITE and "m365archive setup" in run.stderr
    assert sim.writes() == [] and memory_keyring.pending is None


@pytest.mark.usefixtures("no_keyring")
def test_rotate_with_a_password_file_checks_its_mode_and_replaces_it(sim: SimulatedTenant, tmp_path: Path) -> None:
    pw = tmp_path / "catchall.pw"
    pw.write_text("Old-Password-123!\n", encoding="utf-8")
    os.chmod(pw, 0o644)
    add_catchall(sim, "Old-Password-123!")
    loose = m365(sim.url, "credentials", "rotate", "--yes", "--password-file", str(pw))
    assert loose.code == ExitCode.USAGE and "chmod 600" in loose.stderr
    assert sim.writes() == []

    os.chmod(pw, 0o600)
    run = m365(sim.url, "credentials", "rotate", "--yes", "--password-file", str(pw))
    assert run.code == ExitCode.OK, run.stderr
    new = pw.read_text(encoding="utf-8").strip()
    assert new != "Old-Password-123!" and sim_password(sim) == new
    assert stat.S_IMODE(pw.stat().st_mode) == 0o600
    assert not (tmp_path / "catchall.pw.pending").exists()
    assert new not in run.stdout + run.stderr


def test_rotate_saved_plan_is_refused_when_stale_and_applied_exactly_when_fresh(
    sim: SimulatedTenant, memory_keyring: MemoryKeyring, tmp_path: Path
) -> None:
    secrets.store_secret(TENANT, CATCHALL, "Old-Password-123!")
    add_catchall(sim, "Old-Password-123!")
    plan_file = tmp_path / "rotate.json"
    dry = m365(sim.url, "credentials", "rotate", "--dry-run", "--detailed-exitcode", "--plan-out", str(plan_file))
    assert dry.code == ExitCode.CHANGES, dry.stdout + dry.stderr
    assert "Old-Password-123!" not in plan_file.read_text(encoding="utf-8")

    add_catchall(sim, "Other-Password-456!")  # the account was deleted and made again since the plan
    stale = m365(sim.url, "credentials", "rotate", "--plan", str(plan_file), "--yes")
    assert stale.code == ExitCode.STALE_PLAN, stale.stdout + stale.stderr
    assert sim.writes() == [] and memory_keyring.pending is None and memory_keyring.current == "Old-Password-123!"

    fresh = m365(sim.url, "credentials", "rotate", "--dry-run", "--plan-out", str(plan_file))
    assert fresh.code == ExitCode.OK
    applied = m365(sim.url, "credentials", "rotate", "--plan", str(plan_file), "--yes")
    assert applied.code == ExitCode.OK, applied.stdout + applied.stderr
    assert sim_password(sim) == memory_keyring.current != "Old-Password-123!"
    assert [w["method"] for w in sim.writes()] == ["PATCH"]
