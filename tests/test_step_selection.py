"""Issue 21: `setup --step NAME` plans only the chosen steps, with explicit dependencies; a staged rollout
(`--limit N`, `--limit P%`, `--only`) of user mailboxes; the selection is part of the saved plan."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from m365archive.result import ExitCode
from m365archive.sim.server import SimulatedTenant, simulated_tenant
from tests.clihelp import EXAMPLE, m365
from tests.test_scale import config as scale_config
from tests.test_scale import generated, sent_cmdlets

CATCHALL = "thirdpartydata@contoso.onmicrosoft.com"


@pytest.fixture
def half() -> Iterator[SimulatedTenant]:
    with simulated_tenant("half-configured", time_scale=0.001) as tenant:
        yield tenant


def exchange_identities(entries: list[dict[str, Any]]) -> set[str]:
    return {identity for _, identity in sent_cmdlets(entries)}


def mailbox_state(sim: SimulatedTenant) -> dict[str, tuple[Any, ...]]:
    with sim.state.lock:
        return {
            sim.state.users[m.user_id].user_principal_name: (m.archive_status, m.litigation_hold_enabled)
            for m in sim.state.mailboxes.values()
        }


def test_the_catchall_steps_on_fresh_change_only_the_catchall(sim: SimulatedTenant, tmp_path: Path) -> None:
    before = mailbox_state(sim)
    run = m365(sim.url, "setup", "--step", "catchall-account", "--step", "catchall-mailbox", "--yes",
               "--password-file", str(tmp_path / "pw"))  # fmt: skip
    assert run.code == ExitCode.OK, run.stdout + run.stderr
    assert exchange_identities(sim.requests) == {CATCHALL}
    user = sim.state.user_by_upn(CATCHALL)
    assert user is not None
    for entry in sim.writes():
        if entry.get("service") == "graph":  # the user, its licence and its role: nothing about anyone else
            text = json.dumps(entry.get("body") or {}) + entry["path"]
            assert user.id in text or CATCHALL in text, entry["path"]
    after = mailbox_state(sim)
    assert {upn: s for upn, s in after.items() if upn != CATCHALL} == before  # no user mailbox touched
    status = json.loads(m365(sim.url, "-o", "json", "status").stdout)["data"]
    drift_steps = {row["step"] for row in status["settings"] if row["state"] == "drift"}
    assert drift_steps == {"user_mailboxes"}


def test_a_step_whose_prerequisite_has_not_run_refuses_and_sends_nothing(sim: SimulatedTenant) -> None:
    run = m365(sim.url, "setup", "--step", "catchall-mailbox", "--yes")
    assert run.code == ExitCode.PREREQUISITE, run.stdout + run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs step catchall-account first" in lines[0], run.stderr
    assert "--step catchall-account" in lines[0]
    assert sim.writes() == []
    dry = m365(sim.url, "setup", "--step", "catchall-mailbox", "--dry-run")
    assert dry.code == ExitCode.PREREQUISITE and sim.writes() == []


def test_a_prerequisite_step_with_nothing_the_chosen_step_waits_for_lets_it_run(
    half: SimulatedTenant, tmp_path: Path
) -> None:
    # half-configured: the catch-all exists and is licensed, but lacks its role; the mailbox step needs neither.
    run = m365(half.url, "setup", "--step", "catchall-mailbox", "--yes", "--password-file", str(tmp_path / "pw"))
    assert run.code == ExitCode.OK, run.stdout + run.stderr
    assert all(e.get("service") != "graph" for e in half.writes())  # the account step (role) is not applied
    assert exchange_identities(half.requests) == {CATCHALL}
    status = json.loads(m365(half.url, "-o", "json", "status").stdout)["data"]
    drift_steps = {row["step"] for row in status["settings"] if row["state"] == "drift"}
    assert "catchall_mailbox" not in drift_steps and "catchall_account" in drift_steps


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--step", "catchall"], "not a step of procedure partner-ews"),
        (["--step", "catchall-account", "--limit", "10"], "add `--step user-mailboxes`"),
        (["--limit", "0"], "is not a number of mailboxes"),
        (["--limit", "150%"], "is not a number of mailboxes"),
        (["--only", "adele.vance"], "is not a user principal name"),
        (["--plan", "x.json", "--step", "user-mailboxes"], "replays its own selection"),
    ],
)
def test_selection_flags_that_do_not_fit_are_one_line_and_exit_4(
    sim: SimulatedTenant, args: list[str], says: str
) -> None:
    run = m365(sim.url, "setup", "--dry-run", *args)
    assert run.code == ExitCode.USAGE, run.stdout + run.stderr
    assert says in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert sim.requests == [] or sim.writes() == []


def test_only_targets_named_mailboxes_and_refuses_one_not_in_scope(sim: SimulatedTenant, tmp_path: Path) -> None:
    run = m365(sim.url, "setup", "--step", "user-mailboxes", "--only", "Adele.Vance@contoso.onmicrosoft.com",
               "--yes")  # fmt: skip
    assert run.code == ExitCode.OK, run.stdout + run.stderr
    assert exchange_identities(sim.requests) == {"adele.vance@contoso.onmicrosoft.com"}
    sim.log.clear()
    wrong = m365(sim.url, "setup", "--step", "user-mailboxes", "--only", "nobody@contoso.onmicrosoft.com", "--yes")
    assert wrong.code == ExitCode.USAGE and "nobody@contoso.onmicrosoft.com" in wrong.stderr
    assert sim.writes() == []


def mailboxes_changed(entries: list[dict[str, Any]]) -> list[str]:
    return sorted(exchange_identities(entries), key=str.lower)


@pytest.mark.slow
def test_staged_rollout_on_1000_users_and_a_saved_limited_plan(tmp_path: Path) -> None:
    cfg = scale_config(tmp_path)
    with simulated_tenant(generated(1000)) as sim:
        first = m365(sim.url, "setup", "--step", "user-mailboxes", "--limit", "100", "--yes", config=cfg)
        assert first.code == ExitCode.OK, first.stdout[-2000:] + first.stderr
        stage1 = mailboxes_changed(sim.requests)
        assert len(stage1) == 100

        cut = len(sim.requests)
        plan = tmp_path / "stage2.json"
        dry = m365(sim.url, "setup", "--step", "user-mailboxes", "--limit", "10%", "--dry-run",
                   "--plan-out", str(plan), config=cfg)  # fmt: skip
        assert dry.code == ExitCode.OK, dry.stderr
        saved = json.loads(plan.read_text(encoding="utf-8"))
        assert saved["selection"]["limit"] == "10%" and len(saved["selection"]["mailboxes"]) == 100
        assert any("Partial plan" in n and "remain after it" in n for n in saved["notices"])
        applied = m365(sim.url, "setup", "--plan", str(plan), "--expect-digest", saved["digest"], "--yes",
                       config=cfg)  # fmt: skip
        assert applied.code == ExitCode.OK, applied.stdout[-2000:] + applied.stderr
        stage2 = mailboxes_changed(sim.requests[cut:])
        assert stage2 == sorted(saved["selection"]["mailboxes"], key=str.lower)
        assert len(stage2) == 100 and not set(stage1) & set(stage2)
        assert max(stage1, key=str.lower).lower() < min(stage2, key=str.lower).lower()  # the next 100 in order

        cut = len(sim.requests)
        rest = m365(sim.url, "setup", "--step", "user-mailboxes", "--yes", config=cfg)
        assert rest.code == ExitCode.OK, rest.stdout[-2000:] + rest.stderr
        stage3 = mailboxes_changed(sim.requests[cut:])
        assert not set(stage3) & (set(stage1) | set(stage2))
        user_mailboxes = [m for m in sim.state.mailboxes.values() if m.recipient_type_details == "UserMailbox"]
        assert len(stage1) + len(stage2) + len(stage3) == len(user_mailboxes)
        assert all(m.archive_status == "Active" for m in user_mailboxes)


def test_a_saved_limited_plan_applied_again_resumes_only_its_own_mailboxes(
    sim: SimulatedTenant, tmp_path: Path
) -> None:
    plan = tmp_path / "stage.json"
    dry = m365(sim.url, "setup", "--step", "user-mailboxes", "--limit", "2", "--dry-run", "--plan-out", str(plan))
    assert dry.code == ExitCode.OK, dry.stderr
    chosen = json.loads(plan.read_text(encoding="utf-8"))["selection"]["mailboxes"]
    assert chosen == ["adele.vance@contoso.onmicrosoft.com", "compliance.officer@contoso.onmicrosoft.com"]
    assert m365(sim.url, "setup", "--plan", str(plan), "--yes").code == ExitCode.OK
    assert exchange_identities(sim.requests) == set(chosen)
    sim.log.clear()
    # The other mailboxes still need changes; replaying the plan's own mailboxes, it has nothing left to send.
    again = m365(sim.url, "setup", "--plan", str(plan), "--yes")
    assert again.code == ExitCode.OK, again.stdout + again.stderr
    assert "Resuming plan" in again.stderr and sim.writes() == []


def test_retention_policy_holds_in_stages_and_a_catchall_planned_alone_joins_the_policy(
    sim: SimulatedTenant, tmp_path: Path
) -> None:
    cfg = tmp_path / "m365archive.toml"
    cfg.write_text(
        EXAMPLE.read_text().replace('kind = "litigation"', 'kind = "retention-policy"\nretention_policy = "TPD"'),
        encoding="utf-8",
    )
    run = m365(sim.url, "setup", "--step", "user-mailboxes", "--limit", "2", "--yes", config=cfg)
    assert run.code == ExitCode.OK, run.stdout + run.stderr
    policy = sim.state.retention_policies["TPD"]
    assert sorted(policy.exchange_locations) == ["adele.vance@contoso.onmicrosoft.com",
                                                 "compliance.officer@contoso.onmicrosoft.com"]  # fmt: skip
    sim.state.clock.advance(3600.0)  # the policy's distribution completes
    alone = m365(sim.url, "setup", "--step", "catchall-account", "--step", "catchall-mailbox", "--yes",
                 "--password-file", str(tmp_path / "pw"), config=cfg)  # fmt: skip
    assert alone.code == ExitCode.OK, alone.stdout + alone.stderr
    assert CATCHALL in [u.lower() for u in sim.state.retention_policies["TPD"].exchange_locations]
