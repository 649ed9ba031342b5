"""`make test-kerberos`: the on-premises Exchange runner signs in with Kerberos against a real MIT KDC on
loopback, and the simulated /PowerShell endpoint verifies each ticket with its own keytab (HTTP/<host>).

Needs Debian's krb5-kdc, krb5-admin-server and libkrb5-dev, and the `[kerberos]` extra (gssapi and krb5
built against them); `make test-kerberos` installs the extra and `.ci/run` the packages. Marked `kerberos`,
so `make test` leaves these out (pyproject addopts).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from m365archive.result import ExitCode
from m365archive.sim.server import SimulatedTenant, simulated_tenant
from m365archive.tenant.exchange import Cmdlet, TransportError
from m365archive.tenant.onprem import OnPremExchangeRunner
from tests.clihelp import m365
from tests.kdc import Kdc, missing_tools, running_kdc
from tests.test_hybrid import EXAMPLE_HYBRID

pytestmark = pytest.mark.kerberos

ADELE = "adele.vance@contoso.onmicrosoft.com"
HOST = "127.0.0.1"  # the simulator's address: the SPN the client asks for is HTTP/127.0.0.1


@dataclass
class Realm:
    kdc: Kdc
    user: str  # exadmin@CONTOSO.TEST
    password: str
    keytab: Path  # HTTP/127.0.0.1's current key
    stale_keytab: Path  # the same principal's previous key (re-keyed since)
    ccache: Path  # a ticket for `user` (kinit)


@pytest.fixture(scope="module")
def realm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Realm]:
    if os.environ.get("CI") and missing_tools():
        pytest.fail(
            f"make test-kerberos needs {', '.join(missing_tools())} (apt-get install krb5-kdc krb5-admin-server)"
        )
    if missing_tools():
        pytest.skip(f"no {', '.join(missing_tools())}: apt-get install krb5-kdc krb5-admin-server krb5-user")
    pytest.importorskip("gssapi", reason="pip install -e '.[kerberos]' (gssapi built against libkrb5-dev)")
    directory = tmp_path_factory.mktemp("kdc")
    with running_kdc(directory) as kdc:
        user, password = kdc.add_user("exadmin")
        stale = kdc.add_service(f"HTTP/{HOST}", directory / "stale.keytab")
        keytab = kdc.add_service(f"HTTP/{HOST}", directory / "http.keytab")  # re-keyed: stale.keytab is old
        ccache = directory / "exadmin.ccache"
        kdc.kinit(user, password, ccache)
        yield Realm(kdc, user, password, keytab, stale, ccache)


@pytest.fixture
def krb_env(realm: Realm, monkeypatch: pytest.MonkeyPatch) -> Realm:
    """This process's Kerberos clients use the test realm and the ticket cache kinit filled."""
    for name, value in realm.kdc.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{realm.ccache}")
    return realm


@pytest.fixture
def server(krb_env: Realm) -> Iterator[SimulatedTenant]:
    """The hybrid scenario with a default vdir (Kerberos only) that holds its service key."""
    with simulated_tenant(
        "hybrid", time_scale=0.001, onprem_auth=("kerberos",), onprem_keytab=str(krb_env.keytab)
    ) as sim:
        yield sim


def _port(sim: SimulatedTenant) -> int:
    return int(sim.url.rsplit(":", 1)[1])


def _invoke(runner: OnPremExchangeRunner, *cmdlets: Cmdlet) -> list[Any]:
    async def go() -> list[Any]:
        try:
            return await runner.invoke_many(list(cmdlets))
        finally:
            await runner.aclose()

    return asyncio.run(go())


def _onprem(sim: SimulatedTenant) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 5  # each line is written just after its answer leaves
    entries = [e for e in sim.requests if e["service"] == "onprem"]
    while not entries and time.monotonic() < deadline:
        time.sleep(0.01)
        entries = [e for e in sim.requests if e["service"] == "onprem"]
    return entries


def test_a_kerberos_ticket_signs_in_and_the_server_verifies_it_with_its_keytab(
    server: SimulatedTenant, krb_env: Realm
) -> None:
    runner = OnPremExchangeRunner(HOST, port=_port(server), connection_timeout=5)  # kerberos, the ticket's user
    get, enable = _invoke(
        runner,
        Cmdlet("Get-RemoteMailbox", {"Identity": ADELE}),
        Cmdlet("Enable-RemoteMailbox", {"Identity": ADELE, "Archive": True}),
    )
    assert get.ok and enable.ok, (get.error, enable.error)
    users = {e.get("user") for e in _onprem(server) if e["status"] == 200}
    assert users == {krb_env.user}  # the server read the client principal from the verified ticket


def test_a_password_gets_its_own_ticket_from_the_kdc(server: SimulatedTenant, krb_env: Realm) -> None:
    runner = OnPremExchangeRunner(
        HOST, port=_port(server), username=krb_env.user, password=krb_env.password, connection_timeout=5
    )
    (outcome,) = _invoke(runner, Cmdlet("Get-RemoteMailbox", {"Identity": ADELE}))
    assert outcome.ok, outcome.error


def test_a_server_without_the_current_key_refuses_the_ticket(krb_env: Realm) -> None:
    # The ticket is sealed with the service's current key: a keytab holding an older one can't read it, and
    # one with no key at all (the knob's default) refuses every ticket: the simulator really verifies.
    for keytab in (str(krb_env.stale_keytab), ""):
        with simulated_tenant("hybrid", time_scale=0.001, onprem_auth=("kerberos",), onprem_keytab=keytab) as sim:
            runner = OnPremExchangeRunner(HOST, port=_port(sim), connection_timeout=5)
            with pytest.raises(TransportError) as caught:
                _invoke(runner, Cmdlet("Get-RemoteMailbox", {"Identity": ADELE}))
            assert caught.value.auth is True
            assert not [e for e in _onprem(sim) if e["status"] == 200]


def test_a_vdir_that_accepts_only_ntlm_refuses_a_valid_ticket(krb_env: Realm) -> None:
    with simulated_tenant("hybrid", time_scale=0.001, onprem_auth=("ntlm",), onprem_keytab=str(krb_env.keytab)) as sim:
        runner = OnPremExchangeRunner(HOST, port=_port(sim), connection_timeout=5)
        with pytest.raises(TransportError) as caught:
            _invoke(runner, Cmdlet("Get-RemoteMailbox", {"Identity": ADELE}))
        assert caught.value.auth is True
        assert any("kerberos not accepted" in str(e.get("auth_error", "")) for e in _onprem(sim))


def test_hybrid_setup_converges_with_kerberos_end_to_end(
    server: SimulatedTenant, krb_env: Realm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # examples/hybrid.toml as shipped (auth = "kerberos"); the operator has a ticket (kinit), so no password.
    monkeypatch.delenv("M365ARCHIVE_ONPREM_PASSWORD", raising=False)
    applied = m365(server.url, "setup", "--yes", "--password-file", str(tmp_path / "pw"), config=EXAMPLE_HYBRID)
    assert applied.code == ExitCode.OK, applied.stdout + applied.stderr
    server.state.clock.advance(server.state.knobs.dir_sync_delay + 1)  # directory sync has run
    again = m365(server.url, "--output", "json", "setup", "--dry-run", "--detailed-exitcode", config=EXAMPLE_HYBRID)
    pending = [c for c in json.loads(again.stdout)["data"]["changes"] if c["action"] != "no-op"]
    assert again.code == ExitCode.OK and not pending, pending
    signed_in = {e.get("user") for e in _onprem(server) if e["status"] == 200}
    assert signed_in == {krb_env.user}
