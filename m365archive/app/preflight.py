"""Preflight checks before a run: can we reach, sign in to, and act on on-premises Exchange?"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from m365archive.tenant.exchange import Cmdlet, TransportError

if TYPE_CHECKING:
    from m365archive.app.context import Env
    from m365archive.config import Config


@dataclass
class Verdict:
    check: str
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "ok": self.ok, "detail": self.detail}


async def tcp_reachable(host: str, port: int, timeout: float = 10.0) -> Verdict:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError) as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__)
        return Verdict("connectivity", False, f"{host}:{port} is not reachable ({reason})")
    writer.close()
    await writer.wait_closed()
    return Verdict("connectivity", True, f"{host}:{port} accepts connections")


async def onprem_checks(runner: Any, host: str, port: int) -> list[Verdict]:
    """Connectivity, then authentication and session, then the rights m365archive needs.

    The rights check asks Enable-RemoteMailbox for an identity that does not exist: Exchange's RBAC
    only exposes the cmdlets a role grants, so "couldn't be found" proves the right and changes nothing,
    while "not recognized" means the role is missing.
    """
    verdicts = [await tcp_reachable(host, port)]
    if not verdicts[0].ok:
        return verdicts
    try:
        read = await runner.invoke(Cmdlet("Get-RemoteMailbox", {"ResultSize": 1}))
    except TransportError as exc:
        verdicts.append(Verdict("authentication", False, str(exc)))
        return verdicts
    verdicts.append(Verdict("authentication", True, "signed in; the Microsoft.Exchange session opened"))
    if read.error is not None and not read.error.not_found:
        verdicts.append(Verdict("read remote mailboxes", False, read.error.message))
        return verdicts
    verdicts.append(Verdict("read remote mailboxes", True, "Get-RemoteMailbox answered"))
    probe = f"m365archive-preflight-{uuid.uuid4()}"
    write = await runner.invoke(Cmdlet("Enable-RemoteMailbox", {"Identity": probe, "Archive": True}))
    if write.error is None or write.error.not_found:
        verdicts.append(
            Verdict(
                "enable archives",
                True,
                "Enable-RemoteMailbox is granted (probed with an identity that does not exist: nothing changed)",
            )
        )
    else:
        verdicts.append(
            Verdict(
                "enable archives",
                False,
                f"Enable-RemoteMailbox is not available: "
                f"{write.error.message} (the Recipient Management role "
                "grants it)",
            )
        )
    return verdicts


async def onprem(env: Env, config: Config) -> list[Verdict]:
    """`preflight --onprem`: reach, sign in to and probe the configured on-premises Exchange endpoint."""
    from urllib.parse import urlparse

    from m365archive.app.context import make_onprem_runner
    from m365archive.errors import CommandError, Reason
    from m365archive.tenant.session import discover_simulator, endpoints_for_cloud

    cfg = config.onprem
    if cfg is None:
        raise CommandError("the config has no [onprem] table (server, auth, username)", Reason.USAGE)
    if env.sim_url:
        endpoints = discover_simulator(env.sim_url)
    else:
        endpoints = endpoints_for_cloud(config.tenant.cloud, config.tenant.id, config.tenant.domain)
    try:
        runner = make_onprem_runner(env, config, endpoints)
    except ValueError as exc:
        raise CommandError(str(exc), Reason.USAGE) from None
    host, port = cfg.server, cfg.port or (443 if cfg.ssl else 80)
    if endpoints.simulator and endpoints.onprem_url:
        parsed = urlparse(endpoints.onprem_url)
        host, port = parsed.hostname or host, parsed.port or port
    try:
        return await onprem_checks(runner, host, port)
    finally:
        await runner.aclose()
