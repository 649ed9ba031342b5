"""Issue 15: bad targets and unreadable inputs are found before any write.

A failed blocking check still writes the dry run's report and plan (marked not appliable) and exits 7;
an apply with one sends nothing. The scope file: every line is in scope or a finding with its line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from m365archive.result import ExitCode
from m365archive.scope_file import read_scope_file
from m365archive.sim.server import SimulatedTenant
from tests.clihelp import EXAMPLE, m365

DOMAIN = "contoso.onmicrosoft.com"


def config(tmp_path: Path, *, replace: tuple[str, str] | None = None, users: str = "") -> Path:
    text = EXAMPLE.read_text(encoding="utf-8")
    if replace:
        assert replace[0] in text
        text = text.replace(*replace)
    if users:
        head, _, _ = text.partition("[users]")
        text = head + "[users]\n" + users + "\n"
    path = tmp_path / "m365archive.toml"
    path.write_text(text, encoding="utf-8")
    return path


def dry_run(sim: SimulatedTenant, tmp_path: Path, cfg: Path, *extra: str) -> tuple[int, str, Path, Path, str]:
    report, plan = tmp_path / "r.md", tmp_path / "plan.json"
    run = m365(sim.url, "setup", "--dry-run", "--report", str(report), "--plan-out", str(plan), *extra, config=cfg)
    return run.code, run.stderr, report, plan, run.stdout


def test_a_catchall_in_a_domain_the_tenant_does_not_own_is_exit_7_with_report_and_plan(
    sim: SimulatedTenant, tmp_path: Path
) -> None:
    cfg = config(tmp_path, replace=(f'upn = "thirdpartydata@{DOMAIN}"', 'upn = "thirdpartydata@fabrikam.example"'))
    code, stderr, report, plan, stdout = dry_run(sim, tmp_path, cfg)
    assert code == ExitCode.PREREQUISITE, stdout + stderr
    assert stderr.strip().splitlines() == ["error: fabrikam.example is not a verified domain of the tenant"]
    text = report.read_text(encoding="utf-8")
    assert "Not appliable" in text and f"use a catch-all UPN in a verified domain ({DOMAIN})" in text
    saved = json.loads(plan.read_text(encoding="utf-8"))
    assert any(c["id"] == "catchall-domain" and c["blocking"] and not c["passed"] for c in saved["checks"])
    assert "fabrikam.example is not a verified domain" in stdout  # the dry run shows it with its remedy
    applied = m365(sim.url, "setup", "--yes", "--password-file", str(tmp_path / "pw"), config=cfg)
    assert applied.code == ExitCode.PREREQUISITE
    saved_apply = m365(
        sim.url, "setup", "--plan", str(plan), "--yes", "--password-file", str(tmp_path / "pw"), config=cfg
    )
    assert saved_apply.code == ExitCode.PREREQUISITE
    assert sim.writes() == []
    assert not (tmp_path / "pw").exists()


def test_a_catchall_in_another_verified_domain_is_accepted(sim: SimulatedTenant, tmp_path: Path) -> None:
    with sim.state.lock:
        sim.state.verified_domains.append("contoso.example")
    cfg = config(tmp_path, replace=(f'upn = "thirdpartydata@{DOMAIN}"', 'upn = "thirdpartydata@contoso.example"'))
    code, stderr, *_ = dry_run(sim, tmp_path, cfg)
    assert code == ExitCode.OK, stderr


def test_a_reviewer_who_does_not_exist_is_exit_7_and_the_report_is_still_written(
    sim: SimulatedTenant, tmp_path: Path
) -> None:
    cfg = config(tmp_path, replace=("compliance.officer@", "nobody.here@"))
    code, stderr, report, plan, _ = dry_run(sim, tmp_path, cfg)
    assert code == ExitCode.PREREQUISITE
    assert "nobody.here@contoso.onmicrosoft.com does not exist" in stderr
    assert report.exists() and plan.exists() and sim.writes() == []


def test_a_group_that_does_not_resolve_is_exit_7(sim: SimulatedTenant, tmp_path: Path) -> None:
    cfg = config(tmp_path, users='scope = "groups"\ngroups = ["0b7a6c5d-4e3f-4a2b-9c1d-8e7f6a5b4c3d"]')
    code, stderr, report, _, _ = dry_run(sim, tmp_path, cfg)
    assert code == ExitCode.PREREQUISITE, stderr
    assert "group 0b7a6c5d-4e3f-4a2b-9c1d-8e7f6a5b4c3d does not exist" in stderr
    assert report.exists() and sim.writes() == []


def test_no_password_store_applying_a_plan_with_a_secret_is_exit_10_before_any_write(
    sim: SimulatedTenant, tmp_path: Path, no_keyring: None
) -> None:
    plan = tmp_path / "plan.json"
    made = m365(sim.url, "setup", "--dry-run", "--plan-out", str(plan))
    assert made.code == ExitCode.OK, made.stderr  # a runner without a keyring can still make the plan
    assert "password store" in made.stdout and "advisory" in made.stdout
    run = m365(sim.url, "setup", "--plan", str(plan), "--yes")
    assert run.code == ExitCode.NO_SECRET_STORE, run.stdout + run.stderr
    assert sim.writes() == []


# --- the scope file --------------------------------------------------------------------------------

UPN = "adele.vance@contoso.onmicrosoft.com"
OTHER = "diego.siciliani@contoso.onmicrosoft.com"

SCOPE_FILES: dict[str, bytes] = {
    "bom": f"\ufeff{UPN}\n{OTHER}\n".encode(),
    "crlf-comments-blanks": f"# traders\r\n\r\n{UPN}\r\n   \r\n  {OTHER}  \r\n".encode(),
    "header": f"UserPrincipalName\n{UPN}\n{OTHER}\n".encode(),
    "csv-with-upn-column": f"Name,UPN,Desk\nAdele,{UPN},FX\nDiego,{OTHER},Rates\n".encode(),
    "csv-without-header": f"Adele,{UPN}\nDiego,{OTHER}\n".encode(),
    "semicolons-and-quotes": f'"Name";"Email"\n"Adele";"{UPN}"\n"Diego";"{OTHER}"\n'.encode(),
}


@pytest.mark.parametrize("name", sorted(SCOPE_FILES))
def test_every_scope_file_shape_finds_the_same_users(name: str, tmp_path: Path) -> None:
    path = tmp_path / "scope.txt"
    path.write_bytes(SCOPE_FILES[name])
    parsed = read_scope_file(path)
    assert set(parsed.wanted) == {UPN, OTHER}, parsed
    assert parsed.problems == []


def test_typos_and_strangers_are_findings_with_line_numbers(sim: SimulatedTenant, tmp_path: Path) -> None:
    scope = tmp_path / "scope.txt"
    scope.write_text(
        "\n".join(
            ["UPN", UPN, "adele.vance@contoso.onmicrosoft", "nobody@contoso.onmicrosoft.com", "Diego Siciliani", OTHER]
        ),
        encoding="utf-8",
    )
    cfg = config(tmp_path, users=f'scope = "file"\nfile = "{scope.as_posix()}"')
    run = m365(sim.url, "-o", "json", "setup", "--dry-run", config=cfg)
    assert run.code == ExitCode.OK, run.stdout + run.stderr
    doc = json.loads(run.stdout)["data"]
    lines = {f["target"].rsplit(":", 1)[1]: f["message"] for f in doc["findings"] if f["target"].startswith(str(scope))}
    assert sorted(lines, key=int) == ["3", "4", "5"], lines
    assert "matches no licensed user" in lines["3"] and "matches no licensed user" in lines["4"]
    assert "'Diego Siciliani' is not a user principal name" in lines["5"]
    targets = {c["target"] for c in doc["changes"] if c["step"] == "user_mailboxes"}
    assert {UPN, OTHER} <= targets
    assert sim.writes() == []


def test_an_empty_scope_file_is_a_warning(sim: SimulatedTenant, tmp_path: Path) -> None:
    scope = tmp_path / "scope.txt"
    scope.write_bytes(b"\xef\xbb\xbf# nobody yet\r\n\r\n")
    cfg = config(tmp_path, users=f'scope = "file"\nfile = "{scope.as_posix()}"')
    run = m365(sim.url, "-o", "json", "setup", "--dry-run", config=cfg)
    assert run.code == ExitCode.OK
    findings = json.loads(run.stdout)["data"]["findings"]
    assert any("lists no users" in f["message"] and f["severity"] == "warning" for f in findings)


@pytest.mark.parametrize("kind", ["missing", "directory", "latin-1"])
def test_an_unreadable_scope_file_is_a_failed_check_not_unexpected(
    kind: str, sim: SimulatedTenant, tmp_path: Path
) -> None:
    scope = tmp_path / "scope.txt"
    if kind == "directory":
        scope.mkdir()
    elif kind == "latin-1":
        scope.write_bytes("rené@contoso.onmicrosoft.com\n".encode("latin-1"))
    cfg = config(tmp_path, users=f'scope = "file"\nfile = "{scope.as_posix()}"')
    code, stderr, report, _, _ = dry_run(sim, tmp_path, cfg)
    assert code == ExitCode.PREREQUISITE, stderr
    assert "unexpected" not in stderr and "Traceback" not in stderr
    assert str(scope) in stderr and len(stderr.strip().splitlines()) == 1
    assert report.exists() and sim.writes() == []


def test_the_simulator_lists_verified_domains_as_graph_does(sim: SimulatedTenant) -> None:
    import asyncio

    from m365archive.tenant.graph import GraphGateway
    from m365archive.tenant.simcredential import AsyncSimulatorCredential, token_url

    with sim.state.lock:
        sim.state.verified_domains.append("contoso.example")

    async def read() -> tuple[list[str], dict]:  # type: ignore[type-arg]
        gw = GraphGateway(
            sim.url + "/v1.0",
            AsyncSimulatorCredential(token_url(sim.url, sim.state.tenant_id)),
            scopes=["https://graph.microsoft.com/.default"],
        )
        try:
            raw = await gw._get_json("/organization")
            return await gw.verified_domains(), raw
        finally:
            await gw.aclose()

    names, raw = asyncio.run(read())
    assert names == [DOMAIN, "contoso.example"]
    (org,) = raw["value"]
    assert org["id"] == sim.state.tenant_id
    initial = [d["name"] for d in org["verifiedDomains"] if d["isInitial"]]
    assert initial == [DOMAIN]
