"""Issue 14: the approved plan is the applied plan (request log as the witness).

A real plan is saved from the simulator, edited as an attacker would, and applied: each edit is
refused with its exit code and no write reaches the tenant. The untouched plan still applies, and
the same plan interrupted by SIGKILL resumes with `--plan` without resending what was completed.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from m365archive.engine.plan import Plan
from m365archive.result import ExitCode
from m365archive.sim.server import SimulatedTenant, simulated_tenant
from tests.clihelp import EXAMPLE, m365
from tests.test_scale import generated, held, kill_when_held, sent_cmdlets

CATCHALL = "thirdpartydata@contoso.onmicrosoft.com"
GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
Doc = dict[str, Any]


def reseal(doc: Doc) -> Doc:
    """What an attacker who knows the format does after editing: recompute the digest."""
    plan = Plan.from_dict(doc)
    plan.seal()
    return plan.to_dict()


def change(doc: Doc, prefix: str) -> Doc:
    found: Doc = next(c for c in doc["changes"] if c["id"].startswith(prefix) and c["action"] != "no-op")
    return found


def edit(fn: Callable[[Doc], None], *, sealed: bool = True) -> Callable[[Doc], Doc]:
    def apply(doc: Doc) -> Doc:
        fn(doc)
        return reseal(doc) if sealed else doc

    return apply


def _set(target: dict[str, Any], key: str, value: Any) -> None:
    target[key] = value


def _absolute_url(doc: Doc) -> None:
    change(doc, "catchall_account/create-user")["operation"]["request"]["path"] = (
        "https://graph.microsoft.com/v1.0/users"
    )


def _foreign_host(doc: Doc) -> None:
    change(doc, "catchall_account/create-user")["operation"]["request"]["path"] = "//collector.example.net/users"


def _foreign_host_on_conflict(doc: Doc) -> None:
    request = change(doc, "catchall_account/create-user")["operation"]["request"]
    request["on_conflict_get"] = "https://collector.example.net/steal"


def _secret_in_another_field(doc: Doc) -> None:
    body = change(doc, "catchall_account/create-user")["operation"]["request"]["body"]
    body["displayName"] = "${secret:catchall-password}"  # every user can read a display name


def _secret_in_a_cmdlet(doc: Doc) -> None:
    params = change(doc, "catchall_mailbox/hidden")["operation"]["request"]["parameters"]
    params["Identity"] = "${secret:catchall-password}"


def _cycle(doc: Doc) -> None:
    create = change(doc, "catchall_account/create-user")
    create["depends_on"] = [change(doc, "catchall_account/role")["id"]]


def _cmdlet_off_list(doc: Doc) -> None:
    change(doc, "catchall_mailbox/hidden")["operation"]["request"]["cmdlet"] = "Remove-Mailbox"


def _parameter_off_list(doc: Doc) -> None:
    params = change(doc, "catchall_mailbox/hidden")["operation"]["request"]["parameters"]
    params["ForwardingSmtpAddress"] = "smtp:someone@collector.example.net"


def _added(doc: Doc) -> None:
    extra = json.loads(json.dumps(change(doc, "catchall_mailbox/fullaccess")))
    extra["id"] = extra["id"].replace("compliance.officer", "lee.gu")
    extra["operation"]["request"]["parameters"]["User"] = "lee.gu@contoso.onmicrosoft.com"
    doc["changes"].append(extra)


def _retargeted(doc: Doc) -> None:
    body = change(doc, "catchall_account/role")["operation"]["request"]["body"]
    body["roleDefinitionId"] = GLOBAL_ADMIN


def _other_user_full_access(doc: Doc) -> None:
    params = change(doc, "catchall_mailbox/fullaccess")["operation"]["request"]["parameters"]
    params["User"] = "lee.gu@contoso.onmicrosoft.com"


def _reparameterised(doc: Doc) -> None:
    params = change(doc, "catchall_mailbox/litigation-hold")["operation"]["request"]["parameters"]
    params["LitigationHoldDuration"] = "1"


def _dropped(doc: Doc) -> None:
    hold = change(doc, "catchall_mailbox/litigation-hold")
    doc["changes"] = [c for c in doc["changes"] if c is not hold]


def _other_tenant(doc: Doc) -> None:
    doc["tenant"]["id"] = "0b7e4a52-9d1c-4f6e-8a3b-5c2d1e0f9a8b"


TAMPERED: dict[str, tuple[Callable[[Doc], Doc], int]] = {
    "absolute URL": (edit(_absolute_url), ExitCode.USAGE),
    "foreign host": (edit(_foreign_host), ExitCode.USAGE),
    "foreign host to read on conflict": (edit(_foreign_host_on_conflict), ExitCode.USAGE),
    "secret placeholder in another field": (edit(_secret_in_another_field), ExitCode.USAGE),
    "secret placeholder in a cmdlet": (edit(_secret_in_a_cmdlet), ExitCode.USAGE),
    "dependency cycle": (edit(_cycle), ExitCode.USAGE),
    "cmdlet off the allow-list": (edit(_cmdlet_off_list), ExitCode.USAGE),
    "parameter off the allow-list": (edit(_parameter_off_list), ExitCode.USAGE),
    "a change added": (edit(_added), ExitCode.PLAN_MISMATCH),
    "retargeted to Global Administrator": (edit(_retargeted), ExitCode.PLAN_MISMATCH),
    "FullAccess for another user": (edit(_other_user_full_access), ExitCode.PLAN_MISMATCH),
    "hold cut to one day": (edit(_reparameterised), ExitCode.PLAN_MISMATCH),
    "hold dropped": (edit(_dropped), ExitCode.PLAN_MISMATCH),
    "edited without a new digest": (edit(_reparameterised, sealed=False), ExitCode.PLAN_MISMATCH),
    "another tenant": (edit(_other_tenant), ExitCode.STALE_PLAN),
}


@pytest.fixture(scope="module")
def tenant() -> Iterator[SimulatedTenant]:
    with simulated_tenant("fresh", time_scale=0.001) as sim:
        yield sim


@pytest.fixture(scope="module")
def saved(tenant: SimulatedTenant, tmp_path_factory: pytest.TempPathFactory) -> Doc:
    path = tmp_path_factory.mktemp("plan") / "plan.json"
    run = m365(tenant.url, "setup", "--dry-run", "--plan-out", str(path))
    assert run.code == ExitCode.OK, run.stderr
    doc: Doc = json.loads(path.read_text(encoding="utf-8"))
    return doc


def apply_saved(sim: SimulatedTenant, doc: Doc, tmp_path: Path, *extra: str, config: Path = EXAMPLE) -> Any:
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    sim.log.clear()
    return m365(
        sim.url, "setup", "--plan", str(path), "--yes", "--password-file", str(tmp_path / "pw"), *extra, config=config
    )


@pytest.mark.parametrize("name", list(TAMPERED))
def test_a_tampered_plan_is_refused_with_nothing_sent(
    name: str, tenant: SimulatedTenant, saved: Doc, tmp_path: Path
) -> None:
    tamper, code = TAMPERED[name]
    run = apply_saved(tenant, tamper(json.loads(json.dumps(saved))), tmp_path)
    assert run.code == code, run.stdout[-2000:] + run.stderr
    assert tenant.writes() == []
    assert "Traceback" not in run.stderr and run.stderr.startswith("error: ")
    if code == ExitCode.PLAN_MISMATCH:
        assert "tenant changed" not in run.stderr
    if code == ExitCode.USAGE:  # refused before connecting: not even a read
        assert tenant.requests == []


def test_a_plan_made_from_another_config_is_a_mismatch(tenant: SimulatedTenant, saved: Doc, tmp_path: Path) -> None:
    other = tmp_path / "other.toml"
    other.write_text(EXAMPLE.read_text().replace('duration_days = "unlimited"', "duration_days = 2555"), "utf-8")
    run = apply_saved(tenant, saved, tmp_path, config=other)
    assert run.code == ExitCode.PLAN_MISMATCH, run.stderr
    assert "another config" in run.stderr
    assert tenant.writes() == []


def test_the_approved_digest_is_checked(tenant: SimulatedTenant, saved: Doc, tmp_path: Path) -> None:
    other = "sha256:" + "0" * 64
    run = apply_saved(tenant, saved, tmp_path, "--expect-digest", other)
    assert run.code == ExitCode.PLAN_MISMATCH and "not the approved" in run.stderr
    assert tenant.writes() == []


def test_a_version_1_plan_is_refused_with_the_re_plan_line(tenant: SimulatedTenant, saved: Doc, tmp_path: Path) -> None:
    old = {k: v for k, v in saved.items() if k not in ("digest", "config_digest", "selection", "appliable")}
    run = apply_saved(tenant, {**old, "format_version": "1"}, tmp_path)
    assert run.code == ExitCode.USAGE
    assert run.stderr.count("\n") == 1 and "make a new plan" in run.stderr
    assert tenant.requests == []


def plan_on(sim: SimulatedTenant, tmp_path: Path) -> Doc:
    path = tmp_path / "plan.json"
    assert m365(sim.url, "setup", "--dry-run", "--plan-out", str(path)).code == ExitCode.OK
    doc: Doc = json.loads(path.read_text(encoding="utf-8"))
    return doc


def test_a_tenant_changed_since_is_stale(tmp_path: Path) -> None:
    with simulated_tenant("fresh", time_scale=0.001) as sim:
        saved = plan_on(sim, tmp_path)
        with sim.state.lock:  # someone creates the catch-all by hand meanwhile
            from m365archive.sim.state import User

            sim.state.add_user(User(id="11111111-2222-3333-4444-555555555555", user_principal_name=CATCHALL,
                                    display_name="made by hand", usage_location="US"))  # fmt: skip
        run = apply_saved(sim, saved, tmp_path)
        assert run.code == ExitCode.STALE_PLAN, run.stderr
        assert "tenant changed" in run.stderr
        assert sim.writes() == []


def test_the_untouched_plan_applies_exactly_and_says_its_digest(tmp_path: Path) -> None:
    with simulated_tenant("fresh", time_scale=0.001) as sim:
        saved = plan_on(sim, tmp_path)
        run = apply_saved(sim, saved, tmp_path, "--expect-digest", saved["digest"][:19])
        assert run.code == ExitCode.OK, run.stdout[-2000:] + run.stderr
        assert f"Plan digest: {saved['digest']}" in run.stderr
        planned = [c for c in saved["changes"] if c["action"] != "no-op"]
        sent = [c for e in sim.writes() for c in (e.get("cmdlets") or [e.get("cmdlet")]) if c]
        assert sorted(sent) == sorted(
            c["operation"]["request"]["cmdlet"] for c in planned if "cmdlet" in c["operation"]["request"]
        )
        again = apply_saved(sim, saved, tmp_path)  # applied: the journal records it all as done
        assert again.code == ExitCode.OK, again.stderr
        assert sim.writes() == []


def test_the_report_shows_the_digest(tenant: SimulatedTenant, tmp_path: Path) -> None:
    report, plan = tmp_path / "r.md", tmp_path / "p.json"
    assert m365(tenant.url, "setup", "--dry-run", "--report", str(report), "--plan-out", str(plan)).code == 0
    digest = json.loads(plan.read_text())["digest"]
    text = report.read_text()
    header, appendix = text.split("## Summary")[0], text.split("## Appendix: plan digest")[1]
    assert f"| Plan digest | {digest.removeprefix('sha256:')[:12]} (full digest in the appendix) |" in header
    assert f"--expect-digest {digest} |" in header  # the ticket's apply command
    assert f"`{digest}`" in appendix


# -- interrupted and resumed ---------------------------------------------------------------------------

OLD_SCHEMA = """
CREATE TABLE runs (run_id TEXT PRIMARY KEY, plan_id TEXT, kind TEXT, tenant TEXT, operator TEXT,
    started REAL, finished REAL, status TEXT, tool_version TEXT);
CREATE TABLE changes (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT, plan_id TEXT, change_id TEXT,
    tenant TEXT, target TEXT, setting TEXT, action TEXT, operation TEXT,
    outcome TEXT, request_id TEXT, detail TEXT, outputs TEXT, at REAL);
CREATE INDEX changes_plan ON changes(plan_id, change_id, outcome);
CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT, kind TEXT, detail TEXT, at REAL);
INSERT INTO runs VALUES ('old-run', 'old-plan', 'setup', 't', 'me', 1.0, NULL, 'running', '0.1.0');
INSERT INTO changes (run_id, plan_id, change_id, outcome, outputs) VALUES ('old-run', 'old-plan', 'x', 'ok', '{}');
"""


@pytest.mark.slow
def test_a_plan_killed_halfway_resumes_with_plan_and_resends_nothing_completed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with sqlite3.connect(home / "journal.sqlite3") as old:  # written by the previous version
        old.executescript(OLD_SCHEMA)
    config = tmp_path / "m365archive.toml"
    config.write_text(EXAMPLE.read_text().replace("compliance.officer@", "admin@"), encoding="utf-8")
    state = generated(300, exchange_latency_ms=(10.0, 30.0), exchange_rate=120.0, exchange_burst=10)
    with simulated_tenant(state) as sim:
        plan = tmp_path / "plan.json"
        assert m365(sim.url, "setup", "--dry-run", "--plan-out", str(plan), config=config).code == 0
        env = {**os.environ, "M365ARCHIVE_HOME": str(home), "NO_COLOR": "1"}
        cmd = [sys.executable, "-m", "m365archive", "--sim", sim.url, "--config", str(config),
               "setup", "--plan", str(plan), "--yes", "--password-file", str(tmp_path / "pw")]  # fmt: skip
        kill_when_held(sim, cmd, env, 100)
        cut = len(sim.requests)
        done_before = held(sim)
        assert 100 <= len(done_before) < 290

        monkeypatch.setenv("M365ARCHIVE_HOME", str(home))  # the in-process run below uses the same journal
        resumed = m365(sim.url, "setup", "--plan", str(plan), "--yes", "--password-file", str(tmp_path / "pw"),
                       config=config)  # fmt: skip
        assert resumed.code == ExitCode.OK, resumed.stdout[-3000:] + resumed.stderr
        assert "Resuming plan" in resumed.stderr
        resent = [(c, i) for c, i in sent_cmdlets(sim.requests[cut:]) if i in done_before and c == "Set-Mailbox"]
        assert resent == [], resent[:5]
        converged = m365(sim.url, "setup", "--dry-run", "--detailed-exitcode", config=config)
        assert converged.code == ExitCode.OK, converged.stdout[-2000:]
    with sqlite3.connect(home / "journal.sqlite3") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] >= 1
        runs = dict(db.execute("SELECT run_id, status FROM runs").fetchall())
        assert runs.pop("old-run") == "interrupted"  # migrated, kept, and no longer `running`
        assert sorted(runs.values()) == ["interrupted", "success"]
        digests = {row[0] for row in db.execute("SELECT plan_digest FROM runs WHERE run_id != 'old-run'")}
        assert digests == {json.loads(plan.read_text())["digest"]}
        assert db.execute("SELECT count(*) FROM changes WHERE change_id='x'").fetchone()[0] == 1


def test_a_legacy_cleanup_plan_is_bound_the_same_way(tmp_path: Path) -> None:
    from tests.test_legacy import purview_config

    config = purview_config(tmp_path)
    with simulated_tenant("legacy-leftovers", time_scale=0.001) as sim:
        path = tmp_path / "cleanup.json"
        assert m365(sim.url, "legacy", "cleanup", "--dry-run", "--plan-out", str(path), config=config).code == 0
        doc = json.loads(path.read_text(encoding="utf-8"))
        sign_in = change(doc, "legacy_cleanup/sign-in")["operation"]["request"]
        sign_in["body"]["accountEnabled"] = True  # leave the handed-over sign-in working
        edited = tmp_path / "edited.json"
        edited.write_text(json.dumps(reseal(doc)), encoding="utf-8")
        refused = m365(sim.url, "legacy", "cleanup", "--plan", str(edited), "--yes", config=config)
        assert refused.code == ExitCode.PLAN_MISMATCH and "tenant changed" not in refused.stderr
        assert sim.writes() == []
        digest = json.loads(path.read_text(encoding="utf-8"))["digest"]
        approved = m365(sim.url, "legacy", "cleanup", "--plan", str(path), "--expect-digest", digest, "--yes",
                        config=config)  # fmt: skip
        assert approved.code == ExitCode.OK, approved.stdout[-2000:] + approved.stderr
        assert f"Plan digest: {digest}" in approved.stderr


def test_a_credentials_rotate_plan_retargeted_to_another_user_is_refused(
    sim: SimulatedTenant, memory_keyring: Any, tmp_path: Path
) -> None:
    from m365archive import secrets
    from tests.test_credentials import TENANT, add_catchall

    secrets.store_secret(TENANT, CATCHALL, "Old-Password-123!")
    add_catchall(sim, "Old-Password-123!")
    path = tmp_path / "rotate.json"
    assert m365(sim.url, "credentials", "rotate", "--dry-run", "--plan-out", str(path)).code == ExitCode.OK
    doc = json.loads(path.read_text(encoding="utf-8"))
    officer = sim.state.user_by_upn("compliance.officer@contoso.onmicrosoft.com")
    assert officer is not None
    change(doc, "catchall_account/password")["operation"]["request"]["path"] = f"/users/{officer.id}"
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(reseal(doc)), encoding="utf-8")
    refused = m365(sim.url, "credentials", "rotate", "--plan", str(edited), "--yes")
    assert refused.code == ExitCode.PLAN_MISMATCH, refused.stdout + refused.stderr
    assert sim.writes() == [] and memory_keyring.current == "Old-Password-123!"
    digest = json.loads(path.read_text(encoding="utf-8"))["digest"]
    applied = m365(sim.url, "credentials", "rotate", "--plan", str(path), "--expect-digest", digest, "--yes")
    assert applied.code == ExitCode.OK, applied.stdout + applied.stderr
    assert [w["method"] for w in sim.writes()] == ["PATCH"]
