"""Issue 18: `login`, `logout`, `whoami`.

The real sign-in path is tested through its files (azure-identity's AuthenticationRecord, serialised by
azure-identity itself, and its persistent token cache opened as azure-identity opens it), with no
network; `whoami` and `login` run end to end against the simulator, whose token endpoint issues tokens
with the scenario's principal's claims.
"""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest
from azure.identity import AuthenticationRecord

from m365archive.result import ExitCode
from m365archive.sim.server import SimulatedTenant
from m365archive.tenant.auth import (
    EXCHANGE_POWERSHELL_CLIENT_ID,
    GRAPH_POWERSHELL_CLIENT_ID,
    AuthMethod,
    SignIn,
    clear_token_cache,
    delegated_client,
    delegated_logins,
    load_record,
    record_path,
    remove_records,
    save_record,
)
from m365archive.tenant.clouds import get_cloud
from tests.clihelp import m365

TENANT = "contoso.onmicrosoft.com"


def sign_in(**kwargs: object) -> SignIn:
    return SignIn(method=AuthMethod.DEVICE_CODE, tenant_id=TENANT, allow_unencrypted_cache=True, **kwargs)  # type: ignore[arg-type]


def record(client_id: str) -> AuthenticationRecord:
    return AuthenticationRecord(
        TENANT, client_id, "login.microsoftonline.com", "oid.tid", "compliance.admin@contoso.onmicrosoft.com"
    )


def test_the_saved_account_round_trips_owner_only_and_is_given_to_the_credential() -> None:
    s = sign_in()
    path = save_record(s, GRAPH_POWERSHELL_CLIENT_ID, record(GRAPH_POWERSHELL_CLIENT_ID))
    assert path == record_path(s, GRAPH_POWERSHELL_CLIENT_ID)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert "secret" not in path.read_text().lower() and "token" not in path.read_text().lower()

    loaded = load_record(s, GRAPH_POWERSHELL_CLIENT_ID)
    assert loaded is not None and loaded.username == "compliance.admin@contoso.onmicrosoft.com"
    assert loaded.home_account_id == "oid.tid" and loaded.client_id == GRAPH_POWERSHELL_CLIENT_ID
    assert load_record(s, EXCHANGE_POWERSHELL_CLIENT_ID) is None  # one record per public client

    credential = delegated_client(sign_in(interactive=False), get_cloud("global"), GRAPH_POWERSHELL_CLIENT_ID)
    assert credential._auth_record is not None  # azure-identity finds the account without a prompt
    assert credential._auth_record.home_account_id == "oid.tid"
    assert credential._disable_automatic_authentication  # whoami never prompts


def test_an_unreadable_record_means_sign_in_again_not_a_crash() -> None:
    s = sign_in()
    path = record_path(s, GRAPH_POWERSHELL_CLIENT_ID)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json")
    assert load_record(s, GRAPH_POWERSHELL_CLIENT_ID) is None


def test_login_signs_in_once_per_public_client_or_once_with_your_own_app() -> None:
    cloud = get_cloud("gcc-high")
    logins = delegated_logins(sign_in(), cloud)
    assert [c for c, _ in logins] == [GRAPH_POWERSHELL_CLIENT_ID, EXCHANGE_POWERSHELL_CLIENT_ID]
    assert all(scope.startswith(cloud.graph + "/") for scope in logins[0][1])
    assert logins[1][1] == (cloud.exchange_scope,)
    own = delegated_logins(sign_in(client_id="11111111-2222-3333-4444-555555555555"), cloud)
    assert [c for c, _ in own] == ["11111111-2222-3333-4444-555555555555"]


def test_logout_removes_the_records_and_empties_the_token_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # azure-identity keeps its cache under ~/.IdentityService
    s = sign_in()
    for client in (GRAPH_POWERSHELL_CLIENT_ID, EXCHANGE_POWERSHELL_CLIENT_ID):
        save_record(s, client, record(client))
    # A token cache written by azure-identity's own persistence (the plain-file fallback on a machine
    # without a secret store, which is what this test machine is).
    from azure.identity._persistent_cache import _get_persistence

    persistence = _get_persistence(allow_unencrypted=True, account_name="MSALCache", cache_name="m365archive.nocae")
    persistence.save(json.dumps({"AccessToken": {"k": {"secret": "eyJ-a-token"}}}))
    cache_file = Path(persistence.get_location())
    assert cache_file.exists() and tmp_path in cache_file.parents

    assert sorted(p.name for p in remove_records(s)) == sorted(
        record_path(s, c).name for c in (GRAPH_POWERSHELL_CLIENT_ID, EXCHANGE_POWERSHELL_CLIENT_ID)
    )
    assert clear_token_cache(s) == [str(cache_file)]
    assert not cache_file.exists()
    assert load_record(s, GRAPH_POWERSHELL_CLIENT_ID) is None
    assert remove_records(s) == [] and clear_token_cache(s) == []  # twice: nothing left, no error


def test_logout_command_says_what_it_removed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    config = tmp_path / "m365archive.toml"
    assert m365(None, "init", str(config), "--tenant", TENANT).code == ExitCode.OK
    text = config.read_text().replace("allow_unencrypted_token_cache = false", "allow_unencrypted_token_cache = true")
    config.write_text(text)
    save_record(sign_in(), GRAPH_POWERSHELL_CLIENT_ID, record(GRAPH_POWERSHELL_CLIENT_ID))

    run = m365(None, "logout", "-o", "json", config=config)
    assert run.code == ExitCode.OK, run.stderr
    data = json.loads(run.stdout)["data"]
    assert [Path(p).name for p in data["records_removed"]] == [record_path(sign_in(), GRAPH_POWERSHELL_CLIENT_ID).name]
    again = m365(None, "logout", config=config)
    assert again.code == ExitCode.OK and "nothing to forget" in again.stdout


def test_whoami_against_the_simulator_shows_the_signed_in_principal_and_expiry(sim: SimulatedTenant) -> None:
    run = m365(sim.url, "whoami")
    assert run.code == ExitCode.OK, run.stderr
    user = sim.state.signed_in_user
    assert user and f"Microsoft Graph: {user} (delegated (user))" in run.stdout
    assert f"Exchange Online: {user}" in run.stdout and "expires" in run.stdout

    data = json.loads(m365(sim.url, "whoami", "-o", "json").stdout)["data"]
    graph, exchange = data["tokens"]
    assert data["signed_in"] and graph["principal"] == user and graph["tenant"] == sim.state.tenant_id
    assert (
        graph["audience"] == "https://graph.microsoft.com" and exchange["audience"] == "https://outlook.office365.com"
    )
    assert "User.ReadWrite.All" in graph["scopes"] and exchange["scopes"] == ["Exchange.Manage"]
    assert 0 < graph["expires_in_s"] <= sim.state.knobs.token_lifetime
    issued_exp = time.time() + graph["expires_in_s"]
    assert abs(issued_exp - time.mktime(time.strptime(graph["expires"], "%Y-%m-%dT%H:%M:%S+00:00")) + time.timezone) < 5


def test_whoami_for_an_application_names_the_app_and_its_roles(sim: SimulatedTenant) -> None:
    sim.state.signed_in_user = None  # the scenario's principal is an application
    data = json.loads(m365(sim.url, "login", "-o", "json").stdout)["data"]
    graph = data["tokens"][0]
    assert graph["kind"] == "application" and graph["principal"].startswith("application")
    assert graph["roles"] and not graph["scopes"]


def test_whoami_shows_what_was_consented_not_what_the_tool_wants(sim: SimulatedTenant) -> None:
    sim.state.knobs.principal_scopes = ["User.Read.All", "Exchange.Manage"]  # a principal with little consent
    data = json.loads(m365(sim.url, "whoami", "-o", "json").stdout)["data"]
    graph, exchange = data["tokens"]
    assert graph["scopes"] == ["User.Read.All"] and exchange["scopes"] == ["Exchange.Manage"]


def test_whoami_on_a_machine_without_a_secret_store_says_how_to_fix_it(tmp_path: Path) -> None:
    config = tmp_path / "m365archive.toml"
    assert m365(None, "init", str(config), "--tenant", TENANT).code == ExitCode.OK
    from m365archive.tenant.auth import secret_store_problem

    if secret_store_problem() is None:
        pytest.skip("this machine has a secret store")
    run = m365(None, "whoami", config=config)
    assert run.code == ExitCode.AUTH and "allow_unencrypted_token_cache" in run.stderr


def test_a_record_from_another_clouds_login_host_is_not_used() -> None:
    save_record(sign_in(), GRAPH_POWERSHELL_CLIENT_ID, record(GRAPH_POWERSHELL_CLIENT_ID))  # login.microsoftonline.com
    credential = delegated_client(sign_in(), get_cloud("gcc-high"), GRAPH_POWERSHELL_CLIENT_ID)
    assert credential._auth_record is None  # the operator signs in again, at the US government login host
