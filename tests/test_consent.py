"""Issue 5, Step 5: `consent grant|status|revoke` against the simulated tenant's consent page and Graph."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest

from m365archive.engine.journal import Journal
from m365archive.paths import journal_path
from m365archive.result import ExitCode
from m365archive.sim.server import SimulatedTenant
from m365archive.steps.connector_consent import consent_url
from m365archive.tenant.clouds import CLOUDS
from m365archive.tenant.session import discover_simulator, endpoints_for_cloud
from m365archive.wellknown import CONNECTOR_APP_ID
from tests.clihelp import EXAMPLE, m365

GRANT = ("consent", "grant", "--no-browser", "--timeout", "30")
SP_PATH = re.compile(r"/v1\.0/servicePrincipals")


class _Form(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = a.get("action", "")
        elif tag == "input" and a.get("type") == "hidden":
            self.fields[a["name"]] = a.get("value", "")


def accept_consent(url: str) -> httpx.Response:
    """What the global administrator does in the browser: open the page, press Accept (a form POST)."""
    page = httpx.get(url)
    assert page.status_code == 200, page.text
    form = _Form()
    form.feed(page.text)
    assert form.action, "the consent page has no form"
    response = httpx.post(urljoin(url, form.action), data={**form.fields, "action": "accept"})
    assert response.status_code in (302, 303), response.text
    return response


def connector_present(sim: SimulatedTenant) -> bool:
    return sim.state.sp_by_app_id(CONNECTOR_APP_ID, include_unreplicated=True) is not None


def sp_requests(sim: SimulatedTenant) -> list[dict[str, object]]:
    return [r for r in sim.requests if SP_PATH.match(str(r.get("path", "")))]


# --- the URL ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CLOUDS))
def test_consent_url_for_every_cloud_uses_its_login_host(name: str) -> None:
    cloud = CLOUDS[name]
    url = consent_url(endpoints_for_cloud(name, "contoso.onmicrosoft.com", None), state="s1")
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert parts.scheme == "https" and parts.hostname == cloud.authority_host
    assert parts.path == "/contoso.onmicrosoft.com/oauth2/authorize"  # the known tenant, not `common`
    assert query["client_id"] == [CONNECTOR_APP_ID]
    assert query["prompt"] == ["admin_consent"] and query["response_type"] == ["code"]
    # the reference page's redirect URI in every cloud: none is invented for the national clouds
    assert query["redirect_uri"] == ["https://portal.azure.com/"] and query["state"] == ["s1"]


def test_with_the_simulator_the_url_uses_its_login_base(sim: SimulatedTenant) -> None:
    url = consent_url(discover_simulator(sim.url))
    assert url.startswith(f"{sim.url}/{sim.state.tenant_id}/oauth2/authorize?")


# --- grant, status, revoke -------------------------------------------------------------------------


def test_status_of_an_absent_connector_exits_3(sim: SimulatedTenant) -> None:
    run = m365(sim.url, "consent", "status")
    assert run.code == ExitCode.ABSENT
    assert "absent" in run.stdout and sim.writes() == []


def test_grant_status_revoke_round_trip(sim: SimulatedTenant, tmp_path: Path) -> None:
    sim.state.knobs.sp_replication_delay = 800.0  # 0.8 s real: polling must see it absent first
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", "COLUMNS": "200"}
    proc = subprocess.Popen(
        [*(sys.executable, "-m", "m365archive", "--config", str(EXAMPLE), "--sim", sim.url), *GRANT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        printed = proc.stdout.readline().strip()
        assert printed.startswith(f"{sim.url}/{sim.state.tenant_id}/oauth2/authorize?"), printed
        assert f"client_id={CONNECTOR_APP_ID}" in printed and "prompt=admin_consent" in printed
        accept_consent(printed)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == ExitCode.OK, stdout + stderr
    assert stderr.index("2024-12-30") < stderr.index("global administrator")  # the retirement comes first
    assert "waiting for consent" in stderr
    assert "Consent given" in stdout and "EWS.AccessAsUser.All" in stdout
    statuses = [r["status"] for r in sp_requests(sim) if r["method"] == "GET"]
    assert 404 in statuses and statuses[-1] == 200  # it replicated while the command polled

    status = m365(sim.url, "consent", "status")
    assert status.code == ExitCode.OK, status.stderr
    assert "present" in status.stdout and "EWS.AccessAsUser.All" in status.stdout
    assert "appRoleAssignments): 1" in status.stdout and "2024-12-30" in status.stdout
    sp = sim.state.sp_by_app_id(CONNECTOR_APP_ID)
    assert sp is not None and sp.id in status.stdout

    report = tmp_path / "revoke.md"
    before, writes = len(sim.requests), len(sim.writes())  # the consent page's POST is a write
    dry = m365(sim.url, "consent", "revoke", "--dry-run", "--report", str(report))
    assert dry.code == ExitCode.OK, dry.stderr
    assert not [r for r in sim.requests[before:] if r["method"] == "DELETE"] and len(sim.writes()) == writes
    text = report.read_text(encoding="utf-8")
    assert f"DELETE /v1.0/servicePrincipals/{sp.id}" in text and "2024-12-30" in text
    assert connector_present(sim)

    unconfirmed = m365(sim.url, "consent", "revoke")
    assert unconfirmed.code == ExitCode.USAGE and connector_present(sim)

    revoked = m365(sim.url, "consent", "revoke", "--yes")
    assert revoked.code == ExitCode.OK, revoked.stdout + revoked.stderr
    assert "revoked" in revoked.stdout and "verified" in revoked.stdout
    assert not connector_present(sim) and not sim.state.oauth2_grants
    deletes = [w for w in sim.writes() if w["method"] == "DELETE"]
    assert [d["path"] for d in deletes] == [f"/v1.0/servicePrincipals/{sp.id}"]
    journal = Journal(journal_path())
    try:
        rows = [r for r in journal.rows() if r["operation"].startswith("DELETE /v1.0/servicePrincipals/")]
        assert len(rows) == 1 and rows[0]["outcome"] == "ok" and rows[0]["action"] == "delete"
    finally:
        journal.close()

    again = m365(sim.url, "consent", "revoke", "--yes")
    assert again.code == ExitCode.OK and "nothing to revoke" in again.stdout
    assert len([w for w in sim.writes() if w["method"] == "DELETE"]) == 1
    assert m365(sim.url, "consent", "status").code == ExitCode.ABSENT


def test_grant_times_out_with_exit_9_and_says_how_to_check_later(sim: SimulatedTenant) -> None:
    started = time.monotonic()
    run = m365(sim.url, "consent", "grant", "--no-browser", "--timeout", "0.5")
    assert run.code == ExitCode.TIMEOUT
    assert time.monotonic() - started < 10
    assert "m365archive consent status" in run.stderr and "did not appear within" in run.stderr
    assert f"/{sim.state.tenant_id}/oauth2/authorize?" in run.stdout and sim.writes() == []


def test_grant_when_already_consented_says_so(sim: SimulatedTenant) -> None:
    accept_consent(consent_url(discover_simulator(sim.url)))
    sim.state.clock.advance(60)
    run = m365(sim.url, "consent", "grant", "--no-browser")
    assert run.code == ExitCode.OK and "already given" in run.stdout


def test_json_status_envelope(sim: SimulatedTenant) -> None:
    import json

    accept_consent(consent_url(discover_simulator(sim.url)))
    sim.state.clock.advance(60)
    run = m365(sim.url, "-o", "json", "consent", "status")
    doc = json.loads(run.stdout)
    assert doc["exit_code"] == 0 and doc["data"]["present"] is True
    assert doc["data"]["oauth2PermissionGrants"][0]["scope"] == "EWS.AccessAsUser.All"
    assert doc["data"]["created"]


# --- as steps of `setup` ----------------------------------------------------------------------------


def test_setup_reports_consent_and_handoff_as_steps(sim: SimulatedTenant, tmp_path: Path) -> None:
    report = tmp_path / "plan.md"
    run = m365(sim.url, "setup", "--dry-run", "--report", str(report))
    assert run.code == ExitCode.OK, run.stderr
    text = report.read_text(encoding="utf-8")
    assert "Partner chosen: Veritas" in text
    assert (
        "connector consent" in text and f"/{sim.state.tenant_id}/oauth2/authorize?client_id=" + CONNECTOR_APP_ID in text
    )
    assert "m365archive partner-info" in text
    assert "office365ingestionsvc.gble1.protection.outlook.com" in text

    accept_consent(consent_url(discover_simulator(sim.url)))
    sim.state.clock.advance(60)
    run = m365(sim.url, "setup", "--dry-run", "--report", str(report))
    text = report.read_text(encoding="utf-8")
    assert "consent revoke" in text and "/oauth2/authorize?client_id=" not in text


# --- revoke through the pipeline -------------------------------------------------------------------


def test_revoke_saved_plan_is_refused_when_stale_and_applied_exactly_when_fresh(
    sim: SimulatedTenant, tmp_path: Path
) -> None:
    accept_consent(consent_url(discover_simulator(sim.url)))
    sim.state.clock.advance(60)
    plan_file, csv = tmp_path / "revoke.json", tmp_path / "revoke.csv"
    dry = m365(
        sim.url,
        "consent",
        "revoke",
        "--dry-run",
        "--detailed-exitcode",
        "--plan-out",
        str(plan_file),
        "--csv",
        str(csv),
    )
    assert dry.code == ExitCode.CHANGES, dry.stdout + dry.stderr
    assert "connector_consent,connector app service principal" in csv.read_text(encoding="utf-8")
    writes = len(sim.writes())  # the consent page's POST is one

    with sim.state.lock:
        sim.state.oauth2_grants.clear()  # someone removed the connector's grant by hand since
    stale = m365(sim.url, "consent", "revoke", "--plan", str(plan_file), "--yes")
    assert stale.code == ExitCode.STALE_PLAN, stale.stdout + stale.stderr
    assert "stale" in stale.stderr and "consent revoke --dry-run --plan-out" in stale.stderr
    assert len(sim.writes()) == writes and connector_present(sim)  # nothing sent

    fresh = m365(sim.url, "consent", "revoke", "--dry-run", "--plan-out", str(plan_file))
    assert fresh.code == ExitCode.OK
    applied = m365(sim.url, "consent", "revoke", "--plan", str(plan_file), "--yes")
    assert applied.code == ExitCode.OK, applied.stdout + applied.stderr
    assert not connector_present(sim) and "verified" in applied.stdout

    setup_plan = tmp_path / "setup.json"
    assert m365(sim.url, "setup", "--dry-run", "--plan-out", str(setup_plan)).code == ExitCode.OK
    wrong = m365(sim.url, "consent", "revoke", "--plan", str(setup_plan), "--yes")
    assert wrong.code == ExitCode.USAGE and "not a consent revoke plan" in wrong.stderr
