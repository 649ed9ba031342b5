"""Which host answers what: the Security & Compliance front door redirects each tenant to a regional host.

The real front door (`ps.compliance.protection.outlook.com`) answers a tenant's admin API requests with a
redirect whose Location names the tenant's regional label on the admin.protection domain
(`https://nam12b.admin.protection.outlook.com/...`); the admin API itself is served by
`<label>.ps.compliance.protection.outlook.com` (ScubaGear EXORestHelper.psm1 Get-ComplianceApiEndpoint,
CIPP-API New-ExoRequest.ps1, Monkey365 Get-MonkeySecCompBackendUri). The status code (302) and what the
Location host itself answers are unverified; the government and China forms are unverified too.

Exchange Online: "some tenants get redirected to a tenant-specific subdomain" (ScubaGear EXORestHelper.psm1
Get-ExchangeOnlineApiEndpoint, which GETs `{front door}/AdminApi/v1.0/{tenant}/EXOModuleFile` with redirects
off and, on a 3xx, calls `https://<Location host's first label>.<front door host>/adminapi/beta/{tenant}/
InvokeCommand`). Knob `exchange_redirect`: the label this tenant is redirected to ("" = the front door
serves it, as for most tenants). The status code (302), the Location's form beyond its first label, what
EXOModuleFile answers a tenant that is not redirected, and the China form are unverified.

The simulator serves every service on one loopback origin; its discovery document carries a host map
(`hostMap`: host suffix -> origin) so clients send the real host names there with the name in the Host
header. `route()` decides, per request, from that Host header.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from m365archive.sim.http import AUDIENCES
from m365archive.sim.state import TenantState

SCC_PREFIX = "/scc"  # where the compliance routes are mounted on the loopback origin


def front_door(state: TenantState) -> str:
    """The S&C front door host for the tenant's cloud."""
    return urlsplit(AUDIENCES.get(state.cloud, AUDIENCES["global"])["compliance"]).netloc.lower()


def regional_host(state: TenantState) -> str:
    return f"{state.compliance_region}.{front_door(state)}"


def admin_suffix(state: TenantState) -> str:
    """The domain the front door's Location points into (admin.protection...; unverified outside commercial)."""
    return front_door(state).replace("ps.compliance.", "admin.", 1)


def exchange_front_door(state: TenantState) -> str:
    """Exchange Online's admin API host for the tenant's cloud (ScubaGear's front door)."""
    return urlsplit(AUDIENCES.get(state.cloud, AUDIENCES["global"])["exchange"]).netloc.lower()


def exchange_host(state: TenantState) -> str:
    """The host that serves this tenant's Exchange admin API: the front door, or the redirected one."""
    label = state.knobs.exchange_redirect
    return f"{label}.{exchange_front_door(state)}" if label else exchange_front_door(state)


def host_map(state: TenantState, origin: str) -> dict[str, str]:
    """Host suffixes a client should send to this simulator (the discovery document's `hostMap`)."""
    return {front_door(state): origin, admin_suffix(state): origin, exchange_front_door(state): origin}


@dataclass(frozen=True)
class Decision:
    action: str  # "serve" (path rewritten), "redirect", "refuse", or "pass" (not a mapped host)
    path: str = ""
    status: int = 0
    location: str = ""
    message: str = ""
    service: str = "compliance"  # whose request a redirect or refusal answers (the request log's service)
    prefix: str = ""  # a served path's mount on the loopback origin, left out of the URLs written back


def _under(host: str, suffix: str) -> bool:
    return host == suffix or host.endswith("." + suffix)


def route(state: TenantState, host: str, path: str, query: str) -> Decision:
    host = host.split(":")[0].lower().rstrip(".")
    strict = state.knobs.scc_regional_redirect
    front = front_door(state)
    if _under(host, front):
        if host == regional_host(state) or not strict:
            return Decision("serve", path=SCC_PREFIX + path, prefix=SCC_PREFIX)
        # The front door (or another region's host): a redirect to this tenant's region.
        location = f"https://{state.compliance_region}.{admin_suffix(state)}{path}" + (f"?{query}" if query else "")
        return Decision("redirect", status=302, location=location)
    if _under(host, admin_suffix(state)):
        # The Location host is not the S&C admin API host (ScubaGear: "the actual REST API is served from the
        # corresponding ps.compliance.protection host"); what it answers there is unverified.
        return Decision(
            "refuse",
            status=404,
            message=f"{host} does not serve the admin API: use {regional_host(state)} (unverified answer)",
        )
    exchange = _exchange(state, host, path, query)
    if exchange is not None:
        return exchange
    if strict and path.startswith(SCC_PREFIX + "/"):
        return Decision(
            "refuse",
            status=404,
            message=f"Security & Compliance is served on {regional_host(state)} only (see hostMap in the discovery "
            "document)",
        )
    return Decision("pass")


def _exchange(state: TenantState, host: str, path: str, query: str) -> Decision | None:
    """Exchange Online by its real host name (or the loopback origin, which stands for the front door): a tenant
    with `exchange_redirect` is served only by `<label>.<front door>`; the front door answers its admin API
    requests with a redirect there. None: not an Exchange Online request (the caller decides)."""
    front = exchange_front_door(state)
    mapped = _under(host, front)
    if not (mapped or path.lower().startswith("/adminapi/")):
        return None
    label = state.knobs.exchange_redirect
    if not label or host == exchange_host(state):
        return Decision("serve", path=path) if mapped else None
    location = f"https://{exchange_host(state)}{path}" + (f"?{query}" if query else "")
    return Decision("redirect", status=302, location=location, service="exchange")
