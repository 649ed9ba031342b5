"""Issue 19 part 3, `capture`: a pseudonymised twin of the tenant that plans as the tenant does."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from m365archive.app.capture import capture
from m365archive.app.context import Env
from m365archive.config import load_config
from m365archive.result import ExitCode
from m365archive.scenario_format import FORMAT_VERSION, Pseudonymizer, dump, header
from m365archive.sim.scenario import generate_users, load_scenario
from m365archive.sim.server import SimulatedTenant, simulated_tenant
from tests.clihelp import EXAMPLE, m365

HYBRID_EXAMPLE = EXAMPLE.parent / "hybrid.toml"


def ntlm_hybrid(tmp_path: Path) -> Path:
    """The hybrid example signing in with NTLM (the simulator has no KDC; its hybrid scenario accepts NTLM)."""
    path = tmp_path / "hybrid-ntlm.toml"
    text = HYBRID_EXAMPLE.read_text(encoding="utf-8").replace('auth = "kerberos"', 'auth = "ntlm"', 1)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def onprem_password(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    def use(sim: SimulatedTenant) -> None:
        for password in sim.state.onprem_users.values():
            monkeypatch.setenv("M365ARCHIVE_ONPREM_PASSWORD", password)

    yield use


def changes(plan_file: Path) -> list[dict[str, Any]]:
    doc = json.loads(plan_file.read_text(encoding="utf-8"))
    keep = ("id", "target", "setting", "action", "before", "after")
    return [
        {**{k: c.get(k) for k in keep}, "request": (c.get("operation") or {}).get("request")} for c in doc["changes"]
    ]


def translate(value: Any, seen: dict[str, str]) -> Any:
    """The original plan with every name the capture pseudonymised replaced by its pseudonym, whole words only
    (ids, UPNs, domains, display names), and a string that is exactly a UPN's part before the @ (a new
    account's mailNickname) by the pseudonym's."""
    names = {k.lower(): v for k, v in seen.items()}
    locals_ = {k.split("@")[0]: v.split("@")[0] for k, v in seen.items() if "@" in k and "@" in v}
    keys = sorted(names, key=len, reverse=True)
    pattern = re.compile(r"(?<![\w.])(" + "|".join(re.escape(k) for k in keys) + r")(?![\w-])", re.IGNORECASE)

    def walk(item: Any) -> Any:
        if isinstance(item, dict):
            return {k: walk(v) for k, v in item.items()}
        if isinstance(item, list):
            return [walk(v) for v in item]
        if isinstance(item, str):
            return locals_.get(item) or pattern.sub(lambda m: names[m.group(0).lower()], item)
        return item

    return walk(value)


def plan(sim: SimulatedTenant, config: Path, out: Path) -> list[dict[str, Any]]:
    run = m365(sim.url, "setup", "--dry-run", "--plan-out", str(out), config=config)
    assert run.code == ExitCode.OK, run.stdout[-3000:] + run.stderr
    return changes(out)


@pytest.mark.parametrize("scenario", ["fresh", "half-configured", "hybrid", "generated-2000", "legacy-leftovers"])
def test_twin_plans_the_same_changes_modulo_pseudonyms(scenario: str, tmp_path: Path, onprem_password: Any) -> None:
    config = ntlm_hybrid(tmp_path) if scenario == "hybrid" else EXAMPLE
    if scenario == "generated-2000":
        state = load_scenario("fresh")
        generate_users(state, 2000, seed=3)
    else:
        state = load_scenario(scenario)
    state.knobs.time_scale = state.clock.time_scale = 0.001
    pseudo = Pseudonymizer(b"k" * 32, remember=True)
    twin_file = tmp_path / "twin.jsonl"
    with simulated_tenant(state) as original:
        onprem_password(original)
        before = plan(original, config, tmp_path / "original.json")
        original.log.clear()
        made = asyncio.run(
            capture(
                Env(sim_url=original.url),
                load_config(config),
                config.read_text(encoding="utf-8"),
                twin_file,
                pseudonymizer=pseudo,
            )
        )
        assert original.writes() == []  # capture sends reads only
        assert made.counts["mailbox"] >= (2000 if scenario == "generated-2000" else 5)
        if scenario == "legacy-leftovers":  # the retired connector, its grants and their resources
            assert made.counts["service_principal"] >= 2 and made.counts["oauth2_grant"] >= 1
    with simulated_tenant(twin_file, time_scale=0.001) as twin:
        onprem_password(twin)
        after = plan(twin, made.config, tmp_path / "twin.json")
    assert before, "the original plans something to compare"
    twin_changes = {c["id"]: c for c in after}
    expected = {c["id"]: c for c in translate(before, pseudo.seen or {})}
    assert sorted(twin_changes) == sorted(expected)
    for cid, change in expected.items():
        assert twin_changes[cid] == change, cid


def test_capture_command_writes_no_secret_and_no_name(tmp_path: Path, onprem_password: Any) -> None:
    config = ntlm_hybrid(tmp_path)
    out = tmp_path / "twin.jsonl"
    with simulated_tenant("hybrid", time_scale=0.001) as sim:
        onprem_password(sim)
        for user in sim.state.users.values():  # passwords the tenant holds (Graph never returns them)
            user.password = f"Pw-{user.id}-not-for-capture"
        run = m365(sim.url, "capture", "--out", str(out), config=config)
        assert run.code == ExitCode.OK, run.stderr
        assert sim.writes() == []
        secrets = [*sim.state.onprem_users.values(), *(u.password or "" for u in sim.state.users.values())]
        names = [sim.state.tenant_id, "contoso", "adele", "exadmin", "Third-party data"]
    written = [out, tmp_path / "twin.toml"]
    for path in written:
        text = path.read_text(encoding="utf-8")
        for secret in secrets:
            assert secret and secret not in text, f"a password in {path.name}"
        assert not re.search(r"eyJ[A-Za-z0-9_-]{10,}\.", text), f"a token in {path.name}"
        assert not re.search(r'"(password|secret|token|key)[a-z_]*"\s*:', text, re.IGNORECASE)
        for name in names:
            assert name.lower() not in text.lower(), f"{name} in {path.name}"
    head = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert head["format_version"] == FORMAT_VERSION and head["pseudonymised"] is True
    assert (out.stat().st_mode & 0o777) == 0o600
    again = m365(None, "capture", "--out", str(out), config=config)
    assert again.code == ExitCode.USAGE and "--force" in again.stderr


def test_keep_names_and_serve_refuses_another_format_version(tmp_path: Path) -> None:
    out = tmp_path / "named.jsonl"
    with simulated_tenant("half-configured", time_scale=0.001) as sim:
        run = m365(sim.url, "capture", "--out", str(out), "--keep-names")
        assert run.code == ExitCode.OK, run.stderr
    text = out.read_text(encoding="utf-8")
    assert "adele.vance@contoso.onmicrosoft.com" in text
    twin = load_scenario(out)
    user = twin.user_by_upn("adele.vance@contoso.onmicrosoft.com")
    assert user is not None and twin.mailboxes[user.id].litigation_hold_enabled
    assert (tmp_path / "named.toml").read_text(encoding="utf-8") == EXAMPLE.read_text(encoding="utf-8")
    newer = tmp_path / "newer.jsonl"
    lines = text.splitlines()
    head = json.loads(lines[0])
    newer.write_text(json.dumps({**head, "format_version": FORMAT_VERSION + 1}) + "\n", encoding="utf-8")
    serve = m365(None, "sim", "serve", "--scenario", str(newer))
    assert serve.code == ExitCode.USAGE and "format_version" in serve.stderr
    assert len(serve.stderr.strip().splitlines()) == 1


def test_the_format_has_no_place_for_a_secret_and_pseudonyms_hold_relationships(tmp_path: Path) -> None:
    pseudo = Pseudonymizer(b"x" * 32)
    other = Pseudonymizer(b"y" * 32)
    upn = "Adele.Vance@contoso.onmicrosoft.com"
    assert pseudo.upn(upn) == pseudo.upn(upn.lower()) != other.upn(upn)  # stable in a capture, keyed
    assert pseudo.upn(upn).endswith(pseudo.domain("contoso.onmicrosoft.com"))
    assert pseudo.policy("Third-party data 2") == pseudo.policy("Third-party data") + " 2"
    assert pseudo.role_group("ComplianceAdministrator") == "ComplianceAdministrator"
    head = header({"id": pseudo.id("t"), "domain": "d.onmicrosoft.com"}, signed_in_user=None, pseudonymised=True)
    user = {"type": "user", "id": pseudo.id("u"), "upn": pseudo.upn(upn), "display_name": "x", "usage_location": "US",
            "account_enabled": True, "synced": False, "licenses": [], "disabled_plans": {}}  # fmt: skip
    with_secret = tmp_path / "secret.jsonl"
    with_secret.write_text(dump(head) + dump({**user, "password": "hunter2"}), encoding="utf-8")
    with pytest.raises(ValueError, match="unknown field"):
        load_scenario(with_secret)
