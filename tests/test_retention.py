"""Holds by retention policy: the catch-all and the user scope covered by policies of at most 1,000 mailboxes."""

from __future__ import annotations

import json
from pathlib import Path

from m365archive.result import ExitCode
from m365archive.sim.server import simulated_tenant
from tests.clihelp import EXAMPLE, m365
from tests.test_scale import generated

POLICY = "Third-party data"


def policy_config(tmp_path: Path, *, catchall_full_access: str = "compliance.officer@") -> Path:
    text = EXAMPLE.read_text().replace('kind = "litigation"', 'kind = "retention-policy"')
    text = text.replace('# retention_policy = "Third-party data"', f'retention_policy = "{POLICY}"')
    text = text.replace("compliance.officer@", catchall_full_access)
    cfg = tmp_path / "policy.toml"
    cfg.write_text(text, encoding="utf-8")
    return cfg


def test_fresh_tenant_is_covered_by_one_policy_and_converges(tmp_path: Path) -> None:
    with simulated_tenant("fresh", time_scale=0.001) as sim:
        cfg = policy_config(tmp_path)
        plan = tmp_path / "p.json"
        assert m365(sim.url, "setup", "--dry-run", "--plan-out", str(plan), config=cfg).code == ExitCode.OK
        doc = json.loads(plan.read_text())
        created = [c for c in doc["changes"] if c["setting"] == "retention policy" and c["action"] == "create"]
        assert [c["target"] for c in created] == [POLICY]
        assert any(line.startswith(f"retention policy '{POLICY} 2'") or POLICY in line for line in doc["coverage"])
        assert not any(c["setting"] == "Litigation Hold" for c in doc["changes"])

        run = m365(sim.url, "setup", "--yes", "--password-file", str(tmp_path / "pw"), config=cfg)
        assert run.code == ExitCode.OK, run.stdout[-2000:] + run.stderr
        policies = sim.state.retention_policies
        assert set(policies) == {POLICY}
        locations = {x.lower() for x in policies[POLICY].exchange_locations}
        assert "thirdpartydata@contoso.onmicrosoft.com" in locations
        assert "adele.vance@contoso.onmicrosoft.com" in locations
        assert any(rule.policy == POLICY for rule in sim.state.retention_rules.values())

        sim.log.clear()
        again = m365(sim.url, "setup", "--dry-run", "--detailed-exitcode", config=cfg)
        assert again.code == ExitCode.OK, again.stdout[-3000:]
        assert sim.writes() == []


def test_a_scope_over_1000_mailboxes_is_split_across_policies(tmp_path: Path) -> None:
    with simulated_tenant(generated(1500)) as sim:
        cfg = policy_config(tmp_path, catchall_full_access="admin@")
        plan = tmp_path / "p.json"
        assert m365(sim.url, "setup", "--dry-run", "--plan-out", str(plan), config=cfg).code == ExitCode.OK
        doc = json.loads(plan.read_text())
        names = sorted(c["target"] for c in doc["changes"] if c["setting"] == "retention policy")
        assert names == [POLICY, f"{POLICY} 2"]
        run = m365(sim.url, "setup", "--yes", "--password-file", str(tmp_path / "pw"), config=cfg)
        assert run.code == ExitCode.OK, run.stdout[-2000:] + run.stderr
        sizes = sorted(len(p.exchange_locations) for p in sim.state.retention_policies.values())
        assert max(sizes) <= 1000 and sum(sizes) >= 1400
        again = tmp_path / "again.json"
        assert m365(sim.url, "setup", "--dry-run", "--plan-out", str(again), config=cfg).code == ExitCode.OK
        assert all(c["action"] == "no-op" for c in json.loads(again.read_text())["changes"])


def test_without_a_user_scope_the_catchall_alone_gets_the_policy(tmp_path: Path) -> None:
    with simulated_tenant("fresh", time_scale=0.001) as sim:
        cfg = policy_config(tmp_path)
        cfg.write_text(cfg.read_text().replace('scope = "all"', 'scope = "none"'), encoding="utf-8")
        run = m365(sim.url, "setup", "--yes", "--password-file", str(tmp_path / "pw"), config=cfg)
        assert run.code == ExitCode.OK, run.stdout[-2000:] + run.stderr
        assert [x.lower() for x in sim.state.retention_policies[POLICY].exchange_locations] == [
            "thirdpartydata@contoso.onmicrosoft.com"
        ]
        plan = tmp_path / "again.json"
        assert m365(sim.url, "setup", "--dry-run", "--plan-out", str(plan), config=cfg).code == ExitCode.OK
        assert all(c["action"] == "no-op" for c in json.loads(plan.read_text())["changes"])
