"""Issue 18: `init --procedure`, names from --domain, never a silent placeholder tenant."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from m365archive.config import load_config
from m365archive.result import ExitCode
from m365archive.sim.server import SimulatedTenant
from tests.clihelp import m365


def test_default_is_todays_route_with_names_from_the_domain(tmp_path: Path) -> None:
    path = tmp_path / "m365archive.toml"
    run = m365(None, "init", str(path), "--domain", "Fabrikam.onmicrosoft.com", "-o", "json")
    assert run.code == ExitCode.OK, run.stderr
    assert json.loads(run.stdout)["data"]["procedure"] == "purview-connector"
    cfg = load_config(path)
    assert cfg.procedure == "purview-connector" and cfg.catchall is None
    assert cfg.tenant.id == cfg.tenant.domain == "fabrikam.onmicrosoft.com"
    assert "contoso" not in path.read_text().replace("contoso.onmicrosoft.com)", "")


def test_partner_ews_says_the_route_is_retired(tmp_path: Path) -> None:
    path = tmp_path / "m365archive.toml"
    tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
    run = m365(None, "init", str(path), "--tenant", tenant, "--domain", "fabrikam.com", "--procedure", "partner-ews")
    assert run.code == ExitCode.OK, run.stderr
    assert "retired on 2024-12-30" in run.stdout
    cfg = load_config(path)
    assert cfg.tenant.id == tenant and cfg.catchall is not None
    assert cfg.catchall.upn == "thirdpartydata@fabrikam.com"
    assert [r.user for r in cfg.catchall.full_access] == ["compliance.officer@fabrikam.com"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], "add --domain"),
        (["--tenant", "72f988bf-86f1-41af-91ab-2d7cd011db47"], "is an id, so init needs the domain"),
        (["--domain", "fabrikam"], "is not a domain name"),
        (["--tenant", "not a tenant"], "neither a tenant id"),
        (["--domain", "fabrikam.com", "--procedure", "ews"], "--procedure must be one of"),
    ],
)
def test_init_never_writes_a_placeholder_tenant(tmp_path: Path, args: list[str], expected: str) -> None:
    path = tmp_path / "m365archive.toml"
    run = m365(None, "init", str(path), *args)
    assert run.code == ExitCode.USAGE and expected in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and not path.exists()


@pytest.mark.parametrize("procedure", ["purview-connector", "partner-ews"])
def test_the_written_config_plans_against_a_tenant(sim: SimulatedTenant, tmp_path: Path, procedure: str) -> None:
    path = tmp_path / "m365archive.toml"
    assert m365(None, "init", str(path), "--domain", sim.state.domain, "--procedure", procedure).code == ExitCode.OK
    tomllib.loads(path.read_text())
    run = m365(sim.url, "setup", "--dry-run", "-o", "json", config=path)
    assert run.code == ExitCode.OK, run.stderr
    doc = json.loads(run.stdout)
    assert doc["data"]["procedure"] == procedure and doc["data"]["tenant"]["domain"] == sim.state.domain
    if procedure == "partner-ews":  # the fresh tenant has seats: the catch-all is planned
        assert any("thirdpartydata@" in json.dumps(c) for c in doc["data"]["changes"])
