"""Run a simulated tenant on 127.0.0.1: in a background thread (tests, demo) or in the foreground."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from m365archive.sim.app import LoadMiddleware, RequestLog, create_app
from m365archive.sim.state import TenantState


class _QuietResets(logging.Filter):
    """A fault the simulator injects on purpose is not a server error worth a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (isinstance(exc, ConnectionResetError) and "simulated" in str(exc))


logging.getLogger("uvicorn.error").addFilter(_QuietResets())

# Called with each simulator as it starts (the tests' request-log check registers here).
ON_START: list[Callable[[SimulatedTenant], None]] = []


class SimulatedTenant:
    """A running simulator: its URL, its state, and the requests it has answered."""

    def __init__(self, state: TenantState, port: int = 0, request_log: str | Path | None = None) -> None:
        self.state = state
        self.log = RequestLog(str(request_log) if request_log else None)
        self.app = create_app(state, self.log)
        self.load: LoadMiddleware = self.app.state.load
        self._port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.log.entries

    def writes(self) -> list[dict[str, Any]]:
        """Requests that change state: Graph POST/PATCH/DELETE and Exchange cmdlets that are not Get-."""
        out = []
        for entry in self.log.entries:
            if entry.get("service") == "graph":
                if (entry["method"] in ("POST", "PATCH", "DELETE", "PUT") and not entry["path"].endswith("$batch")) or (
                    entry["path"].endswith("$batch")
                    and any(
                        r.get("method", "GET").upper() != "GET" for r in (entry.get("body") or {}).get("requests", [])
                    )
                ):
                    out.append(entry)
            elif entry.get("service") in ("exchange", "compliance", "onprem"):
                cmdlets = entry.get("cmdlets") or ([entry["cmdlet"]] if entry.get("cmdlet") else [])
                if any(not c.startswith(("Get-", "Search-", "Test-")) for c in cmdlets):
                    out.append(entry)
            elif entry.get("path", "").startswith("/common/oauth2") and entry["method"] == "POST":
                out.append(entry)
        return out

    def _config(self) -> uvicorn.Config:
        return uvicorn.Config(
            self.load,
            host="127.0.0.1",
            port=self._port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_keep_alive=30,
            date_header=False,  # the app dates each answer by the simulated clock (sim/app.py)
        )

    def start(self) -> SimulatedTenant:
        for hook in list(ON_START):
            hook(self)
        self._server = uvicorn.Server(self._config())
        started = threading.Event()
        error: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                assert self._server is not None
                loop.run_until_complete(self._serve(started))
            except BaseException as exc:  # surfaced to the caller of start()
                error.append(exc)
                started.set()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="m365archive-sim", daemon=True)
        self._thread.start()
        started.wait(30)
        if error:
            raise RuntimeError(f"simulator failed to start: {error[0]}")
        return self

    async def _serve(self, started: threading.Event) -> None:
        assert self._server is not None
        config = self._server.config
        if not config.loaded:
            config.load()
        self._server.lifespan = config.lifespan_class(config)
        # Bind here so a busy port is an OSError for the caller, not uvicorn's log line and sys.exit(3).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", self._port))
        except OSError:
            sock.close()
            raise
        await self._server.startup(sockets=[sock])
        sockets = [s for server in self._server.servers for s in server.sockets]
        host, port = sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        started.set()
        await self._server.main_loop()
        await self._server.shutdown()

    def stop(self) -> None:
        if self._server:
            self._server.should_exit = True
        if self._thread:
            self._thread.join(10)
        self.log.close()

    def serve_forever(self, on_ready: Any = None) -> None:
        """Foreground: for `m365archive sim serve` (Ctrl-C stops it)."""
        self._server = uvicorn.Server(self._config())
        ready = threading.Event()

        async def main() -> None:
            task = asyncio.ensure_future(self._serve(ready))
            while not ready.is_set() and not task.done():
                await asyncio.sleep(0.01)
            if on_ready and ready.is_set():
                on_ready(self)
            await task

        try:
            asyncio.run(main())
        finally:
            self.log.close()

    def __enter__(self) -> SimulatedTenant:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def simulated_tenant(
    scenario: str | Path | TenantState | None = None,
    *,
    port: int = 0,
    request_log: str | Path | None = None,
    **knobs: Any,
) -> Iterator[SimulatedTenant]:
    """Start a simulator for a scenario file, a scenario name, or a ready TenantState.

    Keyword arguments override the scenario's knobs (e.g. time_scale=0.001, fault_rate=0.05).
    """
    from m365archive.sim.scenario import load_scenario

    state = scenario if isinstance(scenario, TenantState) else load_scenario(scenario or "fresh")
    for name, value in knobs.items():
        if not hasattr(state.knobs, name):
            raise TypeError(f"unknown simulator knob: {name}")
        setattr(state.knobs, name, value)
    state.clock.time_scale = state.knobs.time_scale
    sim = SimulatedTenant(state, port=port, request_log=request_log)
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()
