"""Issue 15: races. One applying run per tenant on a machine (exit 11); across machines, a create that
finds the catch-all already there says the password this run stored is not the account's."""

from __future__ import annotations

import asyncio
from pathlib import Path

from m365archive.app.context import Env, connect
from m365archive.app.pipeline import apply_plan
from m365archive.app.setup import Setup, build_plan
from m365archive.config import load_config
from m365archive.engine.runner import FOREIGN, secrets_not_set
from m365archive.sim.server import SimulatedTenant
from tests.clihelp import EXAMPLE
from tests.test_credentials import add_catchall, sim_password


def test_a_catchall_created_by_another_run_meanwhile_is_reported_password_unknown(
    sim: SimulatedTenant, tmp_path: Path
) -> None:
    config = load_config(EXAMPLE)
    pw = tmp_path / "pw"
    env = Env(sim_url=sim.url, password_file=pw, journal_file=tmp_path / "journal.sqlite3")

    async def race() -> tuple[list[str], list[str]]:
        async with connect(env, config) as session:
            plan = await build_plan(env, config, session)
            add_catchall(sim, "Other-Machine-" + "x7" * 6)  # the other run's create lands first
            setup = Setup(env, config)
            result = await apply_plan(env, session, plan, setup.secrets(plan), procedure=setup)
            return [c.target for c in secrets_not_set(plan, result)], [o.detail for o in result.outcomes]

    unknown, details = asyncio.run(race())
    assert unknown == ["thirdpartydata@contoso.onmicrosoft.com"]
    assert FOREIGN in details
    users = [u for u in sim.state.users.values() if u.user_principal_name.startswith("thirdpartydata@")]
    assert len(users) == 1  # one catch-all in the tenant
    assert pw.read_text(encoding="utf-8").strip() != sim_password(sim)  # kept, and reported unknown


def test_a_create_this_run_made_is_not_reported(sim: SimulatedTenant, tmp_path: Path) -> None:
    config = load_config(EXAMPLE)
    pw = tmp_path / "pw"
    env = Env(sim_url=sim.url, password_file=pw, journal_file=tmp_path / "journal.sqlite3")

    async def run() -> list[str]:
        async with connect(env, config) as session:
            plan = await build_plan(env, config, session)
            setup = Setup(env, config)
            result = await apply_plan(env, session, plan, setup.secrets(plan), procedure=setup)
            return [c.target for c in secrets_not_set(plan, result)]

    assert asyncio.run(run()) == []
    assert pw.read_text(encoding="utf-8").strip() == sim_password(sim)


def test_a_second_applying_run_is_refused_with_exit_11_and_sends_nothing(sim: SimulatedTenant, tmp_path: Path) -> None:
    from m365archive.engine.lock import TenantLock
    from m365archive.paths import data_dir
    from m365archive.result import ExitCode
    from tests.clihelp import m365

    with TenantLock(data_dir(), sim.state.tenant_id, holder="other.admin@contoso.onmicrosoft.com", command="setup"):
        run = m365(sim.url, "setup", "--yes", "--password-file", str(tmp_path / "pw"))
        assert run.code == ExitCode.LOCKED, run.stdout + run.stderr
        assert "another applying run holds tenant" in run.stderr and "other.admin@contoso.onmicrosoft.com" in run.stderr
        assert "released when the process exits" in run.stderr  # how to break a stale lock
        dry = m365(sim.url, "setup", "--dry-run")  # planning needs no lock
        assert dry.code == ExitCode.OK
    assert sim.writes() == [] and not (tmp_path / "pw").exists()
    again = m365(sim.url, "setup", "--yes", "--password-file", str(tmp_path / "pw"))
    assert again.code == ExitCode.OK, again.stdout + again.stderr


def test_two_concurrent_setups_send_one_catchall_and_no_wrong_password(sim: SimulatedTenant, tmp_path: Path) -> None:
    """Two runs at once, as two machines would (separate state directories: the lock can't help).
    One catch-all in the tenant; each stored password is the tenant's or reported unknown."""
    import subprocess

    from tests.test_scale import setup_command

    runs = []
    for name in ("a", "b"):
        home = tmp_path / name
        home.mkdir()
        cmd, env = setup_command(sim, home)
        runs.append((home, subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
    outputs = [(home, proc.communicate(timeout=300)[0], proc.returncode) for home, proc in runs]
    users = [u for u in sim.state.users.values() if u.user_principal_name.startswith("thirdpartydata@")]
    assert len(users) == 1
    for home, output, code in outputs:
        assert code in (0, 8), output
        pw = home / "pw"
        if pw.exists() and pw.read_text(encoding="utf-8").strip() != users[0].password:
            assert "credentials rotate" in output and "already existed" in output, output
