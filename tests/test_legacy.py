"""Issue 7: `m365archive legacy cleanup` removes what the retired route left and keeps its data."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from m365archive.result import ExitCode
from m365archive.sim.server import SimulatedTenant, simulated_tenant
from m365archive.sim.state import CONNECTOR_APP_ID, EXCHANGE_ADMIN_ROLE_TEMPLATE, Mailbox
from tests.clihelp import EXAMPLE, m365
from tests.keyrings import MemoryKeyring

TENANT = "6f1c2a4e-3b5d-4c7e-9f10-2a3b4c5d6e7f"
CATCHALL = "thirdpartydata@contoso.onmicrosoft.com"
LOOKALIKE = "bloomberg.archive@contoso.onmicrosoft.com"
REVIEWER = "compliance.officer@contoso.onmicrosoft.com"


@pytest.fixture
def leftovers() -> Iterator[SimulatedTenant]:
    with simulated_tenant("legacy-leftovers", time_scale=0.001) as tenant:
        yield tenant


def purview_config(tmp_path: Path, accounts: list[str] | None = None) -> Path:
    path = tmp_path / "m365archive.toml"
    names = ", ".join(f'"{a}"' for a in (accounts if accounts is not None else [CATCHALL]))
    path.write_text(
        f'procedure = "purview-connector"\n\n[tenant]\nid = "{TENANT}"\n\n[connector]\nlegacy_catchall = [{names}]\n',
        encoding="utf-8",
    )
    return path


def mailbox(sim: SimulatedTenant, upn: str) -> Mailbox:
    user = sim.state.user_by_upn(upn)
    assert user is not None
    return sim.state.mailboxes[user.id]


def is_exchange_admin(sim: SimulatedTenant, upn: str) -> bool:
    user = sim.state.user_by_upn(upn)
    assert user is not None
    return any(
        a.principal_id == user.id and a.role_definition_id == EXCHANGE_ADMIN_ROLE_TEMPLATE
        for a in sim.state.role_assignments.values()
    )


def test_dry_run_reads_only_and_reports_every_removal_and_every_kept_object(
    leftovers: SimulatedTenant, tmp_path: Path, memory_keyring: MemoryKeyring
) -> None:
    memory_keyring.set_password("m365archive", f"{TENANT}/{CATCHALL}", "the partner knows this")
    report = tmp_path / "cleanup.md"
    run = m365(
        leftovers.url, "legacy", "cleanup", "--dry-run", "--report", str(report), config=purview_config(tmp_path)
    )
    assert run.code == ExitCode.OK, run.stdout + run.stderr
    assert leftovers.writes() == []
    assert "5 removal(s) planned" in run.stdout
    text = report.read_text(encoding="utf-8")
    assert "retired on 2024-12-30" in text.split("\n## ")[0]
    # Every removal, with the exact request.
    sp = leftovers.state.sp_by_app_id(CONNECTOR_APP_ID)
    assert sp is not None
    assert f"DELETE /v1.0/servicePrincipals/{sp.id}" in text
    assert "EWS.AccessAsUser.All" in text and "1 application permission(s)" in text
    user = leftovers.state.user_by_upn(CATCHALL)
    assert user is not None
    assert f"/members/{user.id}/$ref" in text and "$ref?$id=" not in text  # the documented form
    assert '"accountEnabled": false' in text
    # sessions and refresh tokens issued with the partner's password are revoked after sign-in is blocked
    assert f"POST /v1.0/users/{user.id}/revokeSignInSessions" in text
    assert f"Revoke-MgUserSignInSession -UserId '{user.id}'" in text
    assert text.index('"accountEnabled": false') < text.index("revokeSignInSessions")
    assert "password kept in this machine's keyring" in text
    # Every object kept.
    for kept in ("kept: mailbox (UserMailbox, hidden from address lists)", "kept: archive (on, auto-expanding)"):
        assert kept in text
    assert "kept: Litigation Hold (on, Unlimited)" in text
    assert "kept: the items the connector imported stay in their mailboxes" in text
    assert f"kept for review: {REVIEWER} has FullAccess" in text
    # A discovered look-alike is listed, never acted on.
    assert f"--account {LOOKALIKE}" in text
    assert "exchange.admin@contoso.onmicrosoft.com" not in text  # a real admin: visible mailbox, no hold
    assert "the partner knows this" not in text


def test_apply_converges_keeps_the_data_and_a_second_run_plans_nothing(
    leftovers: SimulatedTenant, tmp_path: Path, memory_keyring: MemoryKeyring
) -> None:
    memory_keyring.set_password("m365archive", f"{TENANT}/{CATCHALL}", "the partner knows this")
    config = purview_config(tmp_path)
    before = mailbox(leftovers, CATCHALL)
    hold = (before.litigation_hold_enabled, before.litigation_hold_duration, before.litigation_hold_date)
    archive = (before.archive_status, before.archive_guid, before.auto_expanding_archive)
    permissions = [(p.user, list(p.access_rights)) for p in leftovers.state.permissions]

    applied = m365(leftovers.url, "legacy", "cleanup", "--yes", config=config)
    assert applied.code == ExitCode.OK, applied.stdout + applied.stderr
    state = leftovers.state
    assert state.sp_by_app_id(CONNECTOR_APP_ID, include_unreplicated=True) is None
    assert not state.oauth2_grants and not state.app_role_assignments
    assert not is_exchange_admin(leftovers, CATCHALL)
    catchall = state.user_by_upn(CATCHALL)
    assert catchall is not None and catchall.account_enabled is False and catchall.assigned_licenses
    assert memory_keyring.items == {}
    # The data is untouched.
    after = mailbox(leftovers, CATCHALL)
    assert (after.litigation_hold_enabled, after.litigation_hold_duration, after.litigation_hold_date) == hold
    assert (after.archive_status, after.archive_guid, after.auto_expanding_archive) == archive
    assert after.hidden_from_address_lists
    assert [(p.user, list(p.access_rights)) for p in state.permissions] == permissions
    # The look-alike was not confirmed, so nothing happened to it.
    assert is_exchange_admin(leftovers, LOOKALIKE)
    lookalike = state.user_by_upn(LOOKALIKE)
    assert lookalike is not None and lookalike.account_enabled

    leftovers.log.clear()
    again = m365(leftovers.url, "legacy", "cleanup", "--dry-run", "--detailed-exitcode", config=config)
    assert again.code == ExitCode.OK, again.stdout
    assert "Nothing to clean up" in again.stdout
    assert leftovers.writes() == []


def test_keyring_deletion_is_a_journaled_change_sent_after_the_account_changes(
    leftovers: SimulatedTenant, tmp_path: Path, memory_keyring: MemoryKeyring
) -> None:
    memory_keyring.set_password("m365archive", f"{TENANT}/{CATCHALL}", "x")
    applied = m365(leftovers.url, "legacy", "cleanup", "--yes", config=purview_config(tmp_path))
    assert applied.code == ExitCode.OK, applied.stdout + applied.stderr
    assert memory_keyring.get_password("m365archive", f"{TENANT}/{CATCHALL}") is None
    from m365archive.paths import journal_path

    with sqlite3.connect(journal_path()) as db:
        changes = db.execute("SELECT change_id, outcome, operation FROM changes ORDER BY rowid").fetchall()
    assert len(changes) == 5 and all(outcome == "ok" for _, outcome, _ in changes)
    user = leftovers.state.user_by_upn(CATCHALL)
    assert user is not None and user.sign_in_sessions_valid_from is not None  # sessions revoked
    assert changes[-1][0] == f"legacy_cleanup/keyring/{CATCHALL}"  # after the role and sign-in changes
    assert "on this machine" in changes[-1][2]


def test_the_keyring_change_is_resumed_like_any_change(
    leftovers: SimulatedTenant, tmp_path: Path, memory_keyring: MemoryKeyring
) -> None:
    import asyncio

    from m365archive.app.context import Env, connect
    from m365archive.app.legacy import CleanupOptions, LegacyCleanup
    from m365archive.app.pipeline import apply_plan
    from m365archive.config import load_config

    memory_keyring.set_password("m365archive", f"{TENANT}/{CATCHALL}", "x")
    config = load_config(purview_config(tmp_path))
    env = Env(sim_url=leftovers.url)
    procedure = LegacyCleanup(env, config, CleanupOptions())

    async def plan_and_apply() -> tuple[list[str], list[str]]:
        async with connect(env, config) as session:
            plan = await procedure.plan(session)
            first = await apply_plan(env, session, plan, procedure.secrets(plan), procedure=procedure)
            second = await apply_plan(env, session, plan, procedure.secrets(plan), procedure=procedure)
        keyring = f"legacy_cleanup/keyring/{CATCHALL}"
        return (
            [o.outcome for o in first.outcomes if o.change_id == keyring],
            [o.outcome for o in second.outcomes if o.change_id == keyring],
        )

    first, second = asyncio.run(plan_and_apply())
    assert first == ["ok"]
    memory_keyring.set_password("m365archive", f"{TENANT}/{CATCHALL}", "put back by hand")
    assert second == ["resumed"]  # the same plan again: journaled as done, not sent twice
    assert memory_keyring.get_password("m365archive", f"{TENANT}/{CATCHALL}") == "put back by hand"


def test_account_flag_confirms_a_discovered_candidate_and_rotation_replaces_blocking(
    leftovers: SimulatedTenant, tmp_path: Path
) -> None:
    config = purview_config(tmp_path, accounts=[])
    state = leftovers.state
    lookalike = state.user_by_upn(LOOKALIKE)
    assert lookalike is not None
    old_password = lookalike.password
    dry = m365(leftovers.url, "legacy", "cleanup", "--dry-run", config=config)
    assert dry.code == ExitCode.OK
    assert "1 removal(s) planned" in dry.stdout  # only the service principal: candidates are not acted on
    applied = m365(
        leftovers.url, "legacy", "cleanup", "--yes", "--account", LOOKALIKE, "--rotate-password", config=config
    )
    assert applied.code == ExitCode.OK, applied.stdout + applied.stderr
    assert not is_exchange_admin(leftovers, LOOKALIKE)
    assert lookalike.account_enabled  # rotated, not blocked
    assert lookalike.password and lookalike.password != old_password
    assert lookalike.password not in applied.stdout
    assert is_exchange_admin(leftovers, CATCHALL)  # not confirmed this time
    leftovers.log.clear()
    again = m365(
        leftovers.url, "legacy", "cleanup", "--dry-run", "--account", LOOKALIKE, "--rotate-password", config=config
    )
    assert again.code == ExitCode.OK
    assert "Nothing to clean up" in again.stdout
    assert leftovers.writes() == []


def test_saved_plan_is_applied_exactly_or_refused_when_stale(leftovers: SimulatedTenant, tmp_path: Path) -> None:
    config = purview_config(tmp_path)
    plan_file = tmp_path / "cleanup.json"
    dry = m365(leftovers.url, "legacy", "cleanup", "--dry-run", "--plan-out", str(plan_file), config=config)
    assert dry.code == ExitCode.OK
    assert json.loads(plan_file.read_text(encoding="utf-8"))["kind"] == "legacy-cleanup"

    user = leftovers.state.user_by_upn(CATCHALL)
    assert user is not None
    with leftovers.state.lock:
        user.account_enabled = False  # someone blocked it by hand since the plan was made
    stale = m365(leftovers.url, "legacy", "cleanup", "--plan", str(plan_file), "--yes", config=config)
    assert stale.code == ExitCode.STALE_PLAN
    assert leftovers.writes() == []

    with leftovers.state.lock:
        user.account_enabled = True
    exact = m365(leftovers.url, "legacy", "cleanup", "--plan", str(plan_file), "--yes", config=config)
    assert exact.code == ExitCode.OK, exact.stdout + exact.stderr
    assert not is_exchange_admin(leftovers, CATCHALL) and user.account_enabled is False

    setup_plan = tmp_path / "setup.json"
    assert m365(leftovers.url, "setup", "--dry-run", "--plan-out", str(setup_plan), config=config).code == 0
    wrong = m365(leftovers.url, "legacy", "cleanup", "--plan", str(setup_plan), "--yes", config=config)
    assert wrong.code == ExitCode.USAGE


def test_status_of_an_old_procedure_tenant_shows_the_leftovers(leftovers: SimulatedTenant) -> None:
    run = m365(leftovers.url, "--output", "json", "status", config=EXAMPLE)
    assert run.code in (ExitCode.OK, ExitCode.CHANGES), run.stderr
    findings = json.loads(run.stdout)["data"]["findings"]
    mine = {(f["category"], f["severity"]) for f in findings if f["step"] == "legacy_leftovers"}
    assert ("legacy-catchall", "critical") in mine
    assert ("legacy-candidate", "warning") in mine
    # The connector's service principal is reported once (by the connector_consent step).
    assert any(f["step"] == "connector_consent" and "retired" in f["message"] for f in findings)
    assert leftovers.writes() == []


def test_status_shows_a_catchall_password_this_machines_keyring_still_holds(
    leftovers: SimulatedTenant, memory_keyring: MemoryKeyring
) -> None:
    def keyring_findings() -> set[tuple[str, str]]:
        run = m365(leftovers.url, "--output", "json", "status", config=EXAMPLE)
        assert run.code in (ExitCode.OK, ExitCode.CHANGES), run.stderr
        findings = json.loads(run.stdout)["data"]["findings"]
        return {(f["target"], f["severity"]) for f in findings if f["category"] == "legacy-keyring"}

    assert keyring_findings() == set()
    memory_keyring.set_password("m365archive", f"{TENANT}/{CATCHALL}", "the partner knows this")
    assert keyring_findings() == {(CATCHALL, "info")}
    assert leftovers.writes() == []
