"""Issue 18, `init --from-tenant`: a config that reproduces the tenant, read with reads only."""

from __future__ import annotations

import tomllib
from pathlib import Path

from m365archive.result import ExitCode
from m365archive.sim.server import simulated_tenant
from tests.clihelp import m365

EXPECTED = Path(__file__).parent / "expected" / "half-configured.from-tenant.toml"


def test_half_configured_config_matches_and_plans_nothing(tmp_path: Path) -> None:
    target = tmp_path / "adopted.toml"
    with simulated_tenant("half-configured", time_scale=0.001) as sim:
        init = m365(sim.url, "init", "--from-tenant", "--tenant", sim.state.tenant_id, str(target))
        assert init.code == ExitCode.OK, init.stderr
        assert sim.writes() == []  # reads only
        scope = tmp_path / "adopted.users.txt"
        written = tomllib.loads(target.read_text(encoding="utf-8"))
        expected = tomllib.loads(EXPECTED.read_text(encoding="utf-8").replace("SCOPE_FILE", str(scope)))
        assert written == expected
        lines = [line for line in scope.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
        assert lines == ["adele.vance@contoso.onmicrosoft.com"]
        assert "catch-all: thirdpartydata@contoso.onmicrosoft.com" in init.stdout
        dry = m365(sim.url, "setup", "--dry-run", "--detailed-exitcode", config=target)
        assert dry.code == ExitCode.OK, dry.stdout + dry.stderr
        assert "No changes" in dry.stdout
        assert sim.writes() == []


def test_fresh_tenant_without_catchall_is_purview_and_plans_nothing(tmp_path: Path) -> None:
    target = tmp_path / "m365archive.toml"
    with simulated_tenant("fresh", time_scale=0.001) as sim:
        init = m365(sim.url, "init", "--from-tenant", str(target))
        assert init.code == ExitCode.OK, init.stderr
        written = tomllib.loads(target.read_text(encoding="utf-8"))
        assert written["procedure"] == "purview-connector" and "catchall" not in written
        assert written["users"]["scope"] == "none" and not (tmp_path / "m365archive.users.txt").exists()
        dry = m365(sim.url, "setup", "--dry-run", "--detailed-exitcode", config=target)
        assert dry.code == ExitCode.OK, dry.stdout + dry.stderr
        assert sim.writes() == []


def test_existing_file_is_kept_without_force(tmp_path: Path) -> None:
    target = tmp_path / "m365archive.toml"
    target.write_text("keep me", encoding="utf-8")
    with simulated_tenant("fresh", time_scale=0.001) as sim:
        init = m365(sim.url, "init", "--from-tenant", str(target))
        assert init.code == ExitCode.USAGE and "--force" in init.stderr
        assert sim.requests == []
    assert target.read_text(encoding="utf-8") == "keep me"
