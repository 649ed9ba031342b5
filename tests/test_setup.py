"""Issue 3 acceptance: `m365archive setup` and `status` for the catch-all mailbox, on the simulator."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from m365archive.result import ExitCode
from m365archive.sim.server import SimulatedTenant, simulated_tenant
from tests.clihelp import EXAMPLE, m365

CATCHALL = "thirdpartydata@contoso.onmicrosoft.com"


def catchall_mailbox(sim: SimulatedTenant):  # type: ignore[no-untyped-def]
    user = sim.state.user_by_upn(CATCHALL)
    assert user is not None
    return sim.state.mailboxes[user.id]


def test_fresh_dry_run_sends_only_reads_and_reports_every_change(sim: SimulatedTenant, tmp_path: Path) -> None:
    report = tmp_path / "r.md"
    plan_json = tmp_path / "plan.json"
    run = m365(sim.url, "setup", "--dry-run", "--report", str(report), "--plan-out", str(plan_json))
    assert run.code == ExitCode.OK, run.stderr
    assert sim.writes() == []
    text = report.read_text(encoding="utf-8")
    assert "2024-12-30" in text.split("\n## ")[0]  # the retirement notice sits at the top
    plan = json.loads(plan_json.read_text(encoding="utf-8"))
    pending = [c for c in plan["changes"] if c["action"] != "no-op"]
    assert len(pending) >= 15
    for change in pending:
        assert change["operation"]["display"].split(" -")[0].split(" /")[0] in text
    for setting in (
        "HiddenFromAddressListsEnabled",
        "Litigation Hold",
        "AuditEnabled",  # a new mailbox reads False; its action sets stay on Microsoft's defaults
        "AutoExpandingArchiveEnabled",
        "directory role",
        "licence",
        "FullAccess for compliance.officer@contoso.onmicrosoft.com",
    ):
        assert setting in text
    assert "POST /v1.0/users" in text and "Enable-Mailbox -Identity 'thirdpartydata@contoso.onmicrosoft.com'" in text
    assert "(known after apply)" in text
    for warning in (
        "can't be turned off",
        "Litigation Hold preserves",
        "Exchange Administrator role",
        "leaves the organization",
        "Communication compliance",
    ):
        assert warning in text, warning


def test_fresh_converges_then_plans_nothing_and_status_tracks_drift(sim: SimulatedTenant, tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    applied = m365(sim.url, "setup", "--yes", "--password-file", str(pw))
    assert applied.code == ExitCode.OK, applied.stdout + applied.stderr
    mbx = catchall_mailbox(sim)
    assert mbx.hidden_from_address_lists and mbx.archive_status == "Active" and mbx.auto_expanding_archive
    assert mbx.litigation_hold_enabled and mbx.litigation_hold_duration == "Unlimited"
    assert any(
        p.user == "compliance.officer@contoso.onmicrosoft.com" and "FullAccess" in p.access_rights
        for p in sim.state.permissions
        if p.mailbox_guid == mbx.guid
    )
    user = sim.state.user_by_upn(CATCHALL)
    assert user is not None and user.usage_location == "US" and user.assigned_licenses
    assert any(
        a.principal_id == user.id and a.role_definition_id == "29232cdf-9323-42fd-ade2-1d097af3e4de"
        for a in sim.state.role_assignments.values()
    )

    sim.log.clear()
    again = m365(sim.url, "setup", "--dry-run", "--detailed-exitcode")
    assert again.code == ExitCode.OK, again.stdout
    assert "No changes" in again.stdout
    assert sim.writes() == []
    assert m365(sim.url, "status").code == ExitCode.OK

    with sim.state.lock:
        mbx.litigation_hold_enabled = False
    drift = m365(sim.url, "status")
    assert drift.code == ExitCode.CHANGES
    assert "Litigation Hold" in drift.stdout and "DRIFT" in drift.stdout
    as_json = json.loads(m365(sim.url, "--output", "json", "status").stdout)
    assert as_json["exit_code"] == 2 and as_json["command"] == "status"


def test_a_stale_saved_plan_is_refused_and_nothing_is_sent(sim: SimulatedTenant, tmp_path: Path) -> None:
    plan_json = tmp_path / "plan.json"
    assert m365(sim.url, "setup", "--dry-run", "--plan-out", str(plan_json)).code == ExitCode.OK
    officer = sim.state.user_by_upn("compliance.officer@contoso.onmicrosoft.com")
    assert officer is not None
    with sim.state.lock:  # someone creates the catch-all by hand meanwhile
        from m365archive.sim.state import User

        sim.state.add_user(
            User(
                id="11111111-2222-3333-4444-555555555555",
                user_principal_name=CATCHALL,
                display_name="made by hand",
                usage_location="US",
            )
        )
    sim.log.clear()
    run = m365(sim.url, "setup", "--plan", str(plan_json), "--yes", "--password-file", str(tmp_path / "pw"))
    assert run.code == ExitCode.STALE_PLAN
    assert "stale" in run.stderr.lower()
    assert sim.writes() == []


def test_a_saved_plan_is_applied_exactly(sim: SimulatedTenant, tmp_path: Path) -> None:
    plan_json = tmp_path / "plan.json"
    assert m365(sim.url, "setup", "--dry-run", "--plan-out", str(plan_json)).code == ExitCode.OK
    planned = [c for c in json.loads(plan_json.read_text())["changes"] if c["action"] != "no-op"]
    run = m365(sim.url, "setup", "--plan", str(plan_json), "--yes", "--password-file", str(tmp_path / "pw"))
    assert run.code == ExitCode.OK, run.stdout + run.stderr
    exchange_sent = [c for e in sim.writes() for c in (e.get("cmdlets") or [e.get("cmdlet")]) if c]
    planned_cmdlets = [c["operation"]["request"]["cmdlet"] for c in planned if "cmdlet" in c["operation"]["request"]]
    assert sorted(exchange_sent) == sorted(planned_cmdlets)


def test_half_configured_plans_only_what_is_missing(tmp_path: Path) -> None:
    with simulated_tenant("half-configured", time_scale=0.001) as sim:
        plan_json = tmp_path / "plan.json"
        assert m365(sim.url, "setup", "--dry-run", "--plan-out", str(plan_json)).code == ExitCode.OK
        changes = json.loads(plan_json.read_text())["changes"]
        pending = {(c["step"], c["setting"]) for c in changes if c["action"] != "no-op"}
        assert ("catchall_account", "directory role") in pending
        assert ("catchall_mailbox", "Litigation Hold") in pending
        assert ("catchall_mailbox", "AutoExpandingArchiveEnabled") in pending
        for done in (
            "user account",
            "licence",
            "HiddenFromAddressListsEnabled",
            "archive mailbox",
            "FullAccess for compliance.officer@contoso.onmicrosoft.com",
        ):
            assert all(s != done for _, s in pending), done
        run = m365(sim.url, "setup", "--yes", "--password-file", str(tmp_path / "pw"))
        assert run.code == ExitCode.OK, run.stdout + run.stderr
        graph_writes = [e for e in sim.writes() if e["service"] == "graph"]
        assert [e["path"] for e in graph_writes] == ["/v1.0/roleManagement/directory/roleAssignments"]
        assert not any(e["path"] == "/v1.0/users" for e in sim.writes())


def test_no_seats_is_a_clear_error_before_any_write(tmp_path: Path) -> None:
    with simulated_tenant("no-seats", time_scale=0.001) as sim:
        run = m365(sim.url, "setup", "--yes", "--password-file", str(tmp_path / "pw"))
        assert run.code == ExitCode.PREREQUISITE
        assert "no free seat" in run.stderr
        assert len(run.stderr.strip().splitlines()) == 1
        assert sim.writes() == []


def test_a_503_after_the_user_was_created_still_leaves_one_user(tmp_path: Path) -> None:
    with simulated_tenant(
        "fresh",
        time_scale=0.001,
        fault_rate=1.0,
        fault_kinds=("503",),
        fault_methods=("POST /v1.0/users",),
        fault_limit=1,
    ) as sim:
        run = m365(sim.url, "setup", "--yes", "--password-file", str(tmp_path / "pw"))
        assert run.code == ExitCode.OK, run.stdout + run.stderr
        posts = [e for e in sim.requests if e["method"] == "POST" and e["path"] == "/v1.0/users"]
        assert len(posts) >= 2  # the SDK retried a POST that had taken effect
        assert sum(1 for u in sim.state.users.values() if u.user_principal_name == CATCHALL) == 1


def test_a_create_whose_every_retry_failed_is_recovered_by_looking(tmp_path: Path) -> None:
    with simulated_tenant(
        "fresh",
        time_scale=0.001,
        fault_rate=1.0,
        fault_kinds=("503",),
        fault_methods=("POST /v1.0/users",),
        fault_limit=10,
    ) as sim:
        run = m365(sim.url, "setup", "--yes", "--password-file", str(tmp_path / "pw"))
        assert run.code == ExitCode.OK, run.stdout + run.stderr
        assert sum(1 for u in sim.state.users.values() if u.user_principal_name == CATCHALL) == 1


def test_the_password_never_appears_in_any_output(sim: SimulatedTenant, tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"
    with simulated_tenant("fresh", time_scale=0.001, request_log=log) as logged:
        pw_file = tmp_path / "pw"
        report = tmp_path / "r.md"
        plan_json = tmp_path / "plan.json"
        outputs = [
            m365(logged.url, "setup", "--dry-run", "--report", str(report), "--plan-out", str(plan_json)),
            m365(logged.url, "setup", "--yes", "--password-file", str(pw_file)),
            m365(logged.url, "--output", "json", "status"),
            m365(logged.url, "--output", "markdown", "setup", "--dry-run"),
        ]
        password = pw_file.read_text(encoding="utf-8").strip()
        user = logged.state.user_by_upn(CATCHALL)
        assert user is not None and user.password == password  # the tenant did get it
    assert len(password) >= 16
    haystacks = [o.stdout + o.stderr for o in outputs]
    haystacks += [report.read_text(), plan_json.read_text(), log.read_text()]
    journal = Path(__import__("os").environ["M365ARCHIVE_HOME"]) / "journal.sqlite3"
    db = sqlite3.connect(journal)
    haystacks.append(
        json.dumps(
            [list(r) for t in ("runs", "changes", "events") for r in db.execute(f"SELECT * FROM {t}")], default=str
        )
    )
    db.close()
    for text in haystacks:
        assert password not in text


@pytest.mark.parametrize("flag", ["--dry-run", "--yes"])
def test_bad_config_sends_no_request(sim: SimulatedTenant, tmp_path: Path, flag: str) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(EXAMPLE.read_text().replace('cloud = "global"', 'cloud = "mars"'), encoding="utf-8")
    sim.log.clear()
    run = m365(sim.url, "setup", flag, config=bad)
    assert run.code == ExitCode.USAGE
    assert "tenant.cloud" in run.stderr and "Traceback" not in run.stderr
    assert sim.requests == []


def test_a_reviewer_who_does_not_exist_stops_the_plan_before_any_write(sim: SimulatedTenant, tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(EXAMPLE.read_text().replace("compliance.officer@", "nobody.here@"), encoding="utf-8")
    run = m365(sim.url, "setup", "--yes", "--password-file", str(tmp_path / "pw"), config=cfg)
    assert run.code == ExitCode.PREREQUISITE
    assert "nobody.here@contoso.onmicrosoft.com does not exist" in run.stderr
    assert sim.writes() == []


def test_apply_events_reach_the_cli_progress_moves_and_the_mailbox_wait_is_printed(tmp_path: Path) -> None:
    # The Env is built before the progress display starts; the runner must still reach the display.
    with simulated_tenant("fresh", time_scale=0.001, mailbox_provisioning_delay=60.0) as sim:
        run = m365(sim.url, "-v", "setup", "--yes", "--password-file", str(tmp_path / "pw"))
    assert run.code == ExitCode.OK, run.stderr
    counts = [line.split()[-1] for line in run.stderr.splitlines() if line.startswith("… applying ")]
    done = [int(c.split("/")[0]) for c in counts if "/" in c]
    assert len(set(done)) >= 3 and done == sorted(done), counts
    assert done[-1] == int(counts[-1].split("/")[1])  # ends at the total
    assert any(line.startswith("… waiting") and "mailbox" in line for line in run.stderr.splitlines()), run.stderr
