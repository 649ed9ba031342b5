"""The tenant floor's one retry-and-poll policy (tenant/retry.py): its bound on how many times a request is
sent, the one Retry-After parser, and pauses and polls that end at once on Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from m365archive.result import ExitCode
from m365archive.sim.server import SimulatedTenant, simulated_tenant
from m365archive.tenant.exchange import Cmdlet, TransportError
from m365archive.tenant.exchange_rest import EXCHANGE_SCOPE, RestExchangeRunner
from m365archive.tenant.retry import MAX_SENDS, Interrupted, StopSignal, poll, retry_after
from m365archive.tenant.simcredential import AsyncSimulatorCredential, token_url
from tests.clihelp import EXAMPLE, m365

CATCHALL = "thirdpartydata@contoso.onmicrosoft.com"


# -- the parts ---------------------------------------------------------------------------------------------------


def test_retry_after_reads_seconds_decimals_and_http_dates_in_one_place() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after("120") == 120.0
    assert retry_after("0.250") == 0.25
    assert retry_after("-3") == 0.0
    assert retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now.timestamp) == 30.0
    assert retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now=now.timestamp) == 0.0
    assert retry_after("soon") is None and retry_after(None) is None and retry_after("") is None


def test_a_pause_ends_at_once_when_the_run_is_stopped() -> None:
    async def body() -> None:
        stop = StopSignal()
        pausing = asyncio.ensure_future(stop.pause(3600.0))
        await asyncio.sleep(0)
        stop.set()
        with pytest.raises(Interrupted):
            await asyncio.wait_for(pausing, 30)  # a guard: an hour's pause that did not end would fail here
        with pytest.raises(Interrupted):
            await stop.pause(0.0)  # once stopped, no pause starts

    asyncio.run(body())


def test_a_poll_asks_until_true_stops_at_its_timeout_and_ends_on_ctrl_c() -> None:
    async def body() -> None:
        answers = iter([False, False, True])
        ticks: list[float] = []

        async def ready() -> bool:
            return next(answers)

        stop = StopSignal()
        assert await poll(ready, timeout=60, stop=stop, first=0.0, tick=ticks.append) is True
        assert len(ticks) == 2

        calls = 0

        async def never() -> bool:
            nonlocal calls
            calls += 1
            return False

        assert await poll(never, timeout=0.0, stop=stop) is False and calls == 1
        assert await poll(lambda: never(), timeout=0.0, stop=stop) is False and calls == 2  # the session's form
        stop.set()
        with pytest.raises(Interrupted):
            await poll(never, timeout=3600, stop=stop)
        assert calls == 3  # asked once, then the pause was refused

    asyncio.run(body())


# -- the bound, against the simulator ------------------------------------------------------------------------------


def test_a_create_answered_503_after_it_committed_is_sent_at_most_max_sends_times_and_leaves_one_user(
    tmp_path: Path,
) -> None:
    # Every POST /users takes effect and is then answered 503 (the SDK's own RetryHandler used to resend it on top
    # of the gateway's resends: up to 16 sends). The bound holds, and the run ends with the one user it made.
    with simulated_tenant(
        "fresh",
        time_scale=0.001,
        fault_rate=1.0,
        fault_kinds=("503",),
        fault_methods=("POST /v1.0/users",),
        fault_after_commit=True,
    ) as sim:
        run = m365(sim.url, "setup", "--yes", "--password-file", str(tmp_path / "pw"))
        assert run.code == ExitCode.OK, run.stdout[-2000:] + run.stderr
        posts = [e for e in sim.requests if e["method"] == "POST" and e["path"] == "/v1.0/users"]
        assert 2 <= len(posts) <= MAX_SENDS
        assert all(e["status"] == 503 for e in posts)
        assert sum(1 for u in sim.state.users.values() if u.user_principal_name == CATCHALL) == 1
        again = m365(sim.url, "setup", "--dry-run", "--detailed-exitcode")
        assert again.code == ExitCode.OK, again.stdout + again.stderr


def test_an_exchange_cmdlet_that_keeps_failing_is_sent_max_sends_times_then_not_confirmed() -> None:
    with simulated_tenant("fresh", time_scale=0.001, fault_rate=1.0, fault_kinds=("503",)) as sim:
        credential = AsyncSimulatorCredential(token_url(sim.url, sim.state.tenant_id))

        async def body() -> RestExchangeRunner:
            runner = RestExchangeRunner(
                sim.url, sim.state.tenant_id, credential, scope=EXCHANGE_SCOPE, backoff_base=0.001, backoff_max=0.01
            )
            try:
                with pytest.raises(TransportError) as caught:
                    await runner.invoke(Cmdlet("Set-Mailbox", {"Identity": "adele", "AuditEnabled": True}))
                assert caught.value.status == 503 and f"after {MAX_SENDS} attempts" in str(caught.value)
            finally:
                await runner.aclose()
            return runner

        runner = asyncio.run(body())
        assert runner.stats.requests == MAX_SENDS
        assert len([e for e in sim.requests if e.get("service") == "exchange"]) == MAX_SENDS


# -- Ctrl-C during the replication-lag resends -----------------------------------------------------------------------


def _when(sim: SimulatedTenant, seen: Callable[[dict[str, Any]], bool], then: Callable[[], None]) -> threading.Thread:
    """Call `then` from a thread as soon as the simulator has answered a request `seen` matches."""

    def watch() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if any(seen(e) for e in list(sim.requests)):
                then()
                return
            time.sleep(0.01)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_ctrl_c_during_replication_lag_resends_stops_at_once_exit_130_and_journals_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Real time (time_scale 1): a new user is not found for a day, so the writes naming it are resent for up to
    # three minutes. Ctrl-C comes the moment the first of them is answered 404: the pause before its resend ends.
    monkeypatch.setenv("M365ARCHIVE_HOME", str(tmp_path / "home"))
    with simulated_tenant(
        "fresh", time_scale=1.0, user_replication_delay=86_400.0, mailbox_provisioning_delay=86_400.0
    ) as sim:

        def lagged(entry: dict[str, Any]) -> bool:
            return entry.get("service") == "graph" and entry["status"] == 404 and entry["method"] in ("POST", "PATCH")

        watcher = _when(sim, lagged, lambda: os.kill(os.getpid(), signal.SIGINT))
        started = time.monotonic()
        run = m365(sim.url, "setup", "--yes", "--password-file", str(tmp_path / "pw"), config=EXAMPLE)
        took = time.monotonic() - started
        watcher.join(timeout=5)
        assert run.code == ExitCode.INTERRUPTED, run.stdout[-2000:] + run.stderr
        lag_404s = [e for e in sim.requests if lagged(e)]
        assert lag_404s and took < 60, f"{len(lag_404s)} lag answers, {took:.0f} s"
        with sqlite3.connect(tmp_path / "home" / "journal.sqlite3") as db:
            rows = db.execute("SELECT outcome, detail FROM changes WHERE outcome='interrupted'").fetchall()
            runs = db.execute("SELECT status FROM runs").fetchall()
        assert rows and any("stopped (Ctrl-C) before it was sent again" in detail for _, detail in rows)
        assert runs == [("interrupted",)]


# -- tokens: a failed re-acquire is exit 5; a $batch item refused for its token is resent alone, once ---------

EARLY = 100_000.0  # simulated seconds after which the services refuse a token; the tests advance the clock


def test_a_token_that_cannot_be_reacquired_during_apply_is_exit_5(tmp_path: Path) -> None:
    # The operator's account is disabled mid-apply and the services stop honouring its token: the gateways ask
    # for a new one, Entra refuses (AADSTS50057), and the run stops with exit 5 instead of failing change by change.
    with simulated_tenant(
        "fresh", time_scale=0.001, token_early_expiry=EARLY, mailbox_provisioning_delay=2000.0
    ) as sim:
        admin = sim.state.user_by_upn(sim.state.signed_in_user or "")
        assert admin is not None

        def revoke() -> None:
            with sim.state.lock:
                admin.account_enabled = False
            sim.state.clock.advance(EARLY + 1)

        created = _when(sim, lambda e: e["method"] == "POST" and e["path"] == "/v1.0/users", revoke)
        run = m365(sim.url, "setup", "--yes", "--password-file", str(tmp_path / "pw"))
        created.join(timeout=5)
        assert run.code == ExitCode.AUTH, run.stdout[-2000:] + run.stderr
        assert "AADSTS50057" in run.stderr and "Traceback" not in run.stderr
        refusals = [e for e in sim.requests if e["path"].endswith("/oauth2/v2.0/token") and e["status"] == 400]
        assert refusals, "the credential was never refused a new token"


def test_a_batch_item_refused_for_its_token_is_resent_alone_once_with_a_new_token() -> None:
    # A $batch answered 503 waits before it is resent; meanwhile another request meets the refused token and
    # replaces it. The resent batch goes out with the new token, its items still with the old one: each item is
    # answered 401 invalid_token, and resent alone, once, with the new token.
    with simulated_tenant(
        "fresh",
        time_scale=0.001,
        token_early_expiry=EARLY,
        fault_rate=1.0,
        fault_kinds=("503",),
        fault_methods=("POST /none",),
        fault_limit=1,
        fault_after_commit=False,
    ) as sim:
        sim.load.faults.methods = (f"POST /adminapi/beta/{sim.state.tenant_id}/$batch",)
        credential = AsyncSimulatorCredential(token_url(sim.url, sim.state.tenant_id))
        upns = [u.user_principal_name for u in sim.state.users.values() if u.id in sim.state.mailboxes][:3]

        async def body() -> RestExchangeRunner:
            # the batch's pause before its resend: 2-4 s, far longer than replacing the token takes
            runner = RestExchangeRunner(
                sim.url, sim.state.tenant_id, credential, scope=EXCHANGE_SCOPE, backoff_base=4.0, backoff_max=4.0
            )

            async def replace_the_token() -> None:
                while not any(e["status"] == 503 for e in list(sim.requests)):
                    await asyncio.sleep(0.005)
                sim.state.clock.advance(EARLY + 1)
                assert (await runner.invoke(Cmdlet("Get-OrganizationConfig", {}))).ok  # 401, new token, resent

            try:
                assert (await runner.invoke(Cmdlet("Get-OrganizationConfig", {}))).ok
                cmdlets = [Cmdlet("Set-Mailbox", {"Identity": u, "AuditEnabled": True}) for u in upns]
                outcomes, _ = await asyncio.gather(runner.invoke_many(cmdlets), replace_the_token())
                assert all(o.ok for o in outcomes), [o.error for o in outcomes]
            finally:
                await runner.aclose()
            return runner

        runner = asyncio.run(body())
        batches = [e for e in sim.requests if e["path"].endswith("$batch")]
        refused_items = [
            key
            for e in batches
            for key, status in zip(e.get("items", []), e.get("itemStatuses", []), strict=True)
            if status == 401
        ]
        assert sorted(refused_items) == sorted(set(refused_items)) and len(refused_items) == len(upns)
        for key in refused_items:  # each refused item: exactly one more send, and it ran
            later = [
                status
                for e in batches
                for k, status in zip(e.get("items", []), e.get("itemStatuses", []), strict=True)
                if k == key and status != 401
            ]
            assert later == [200]
        assert runner.stats.token_resends == 1 + len(upns)
        assert all(m.audit_enabled for m in sim.state.mailboxes.values() if m.primary_smtp in upns)
