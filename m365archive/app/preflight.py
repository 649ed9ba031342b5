"""Preflight checks before a run: what the signed-in principal holds against what a run needs, and whether
on-premises Exchange can be reached, signed in to and acted on. Reads only."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from m365archive.powershell import command
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


# The management role that holds Enable-RemoteMailbox and Set-RemoteMailbox (Recipient Management and Organization
# Management are assigned it).
ARCHIVE_ROLE = "Mail Recipients"


def account_names(username: str) -> set[str]:
    """The forms Exchange may name an account in EffectiveUserName: DOMAIN\\user -> user, user@domain -> user."""
    name = username.rpartition("\\")[2]
    return {username.lower(), name.lower(), name.split("@")[0].lower()}


async def onprem_checks(runner: Any, host: str, port: int, username: str = "") -> list[Verdict]:
    """Connectivity, then authentication and session, then the rights m365archive needs.

    The rights check is a read: Get-ManagementRoleAssignment -Role 'Mail Recipients' -GetEffectiveUsers lists
    every user who effectively holds the role that carries Enable-RemoteMailbox (through role groups too); the
    signed-in account must be among them. Nothing is changed.
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
    probe = Cmdlet("Get-ManagementRoleAssignment", {"Role": ARCHIVE_ROLE, "GetEffectiveUsers": True})
    rights = await runner.invoke(probe)
    if rights.error is not None:
        verdicts.append(
            Verdict("enable archives", False, f"{probe.powershell()} failed: {rights.error.message} (can't tell)")
        )
        return verdicts
    names = account_names(username)
    holding = [o for o in rights.objects if str(o.get("EffectiveUserName", "")).lower() in names]
    if holding:
        via = str(holding[0].get("RoleAssigneeName") or holding[0].get("Name") or "")
        verdicts.append(
            Verdict(
                "enable archives", True, f"{username} holds the {ARCHIVE_ROLE} role (Enable-RemoteMailbox) via {via}"
            )
        )
    else:
        remedy = command("Add-RoleGroupMember", {"Identity": "Recipient Management", "Member": username})
        verdicts.append(
            Verdict(
                "enable archives",
                False,
                f"{username} does not hold the {ARCHIVE_ROLE} role that Enable-RemoteMailbox needs; "
                f"in the Exchange Management Shell: {remedy}",
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
        return await onprem_checks(runner, host, port, cfg.username or "")
    finally:
        await runner.aclose()
