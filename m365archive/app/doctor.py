"""`doctor`: do the services answer as m365archive assumes? One read-only probe per behaviour of docs/fidelity.md
that can be observed without changing anything, each with a verdict: holds / differs / can't tell.

Every probe sends reads only (GET, Get- cmdlets). A probe's `observed` is what a redacted service profile keeps
(`doctor --profile FILE`): response shapes (property names and JSON types, never values), header names, status
codes and error categories, host patterns with tenant-specific labels replaced; never a name, id, UPN, domain or
any other tenant data.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from m365archive import __version__
from m365archive.licences import plans_granting
from m365archive.tenant.exchange_rest import parse_error, regional_base
from m365archive.tenant.probes import Answer, ServiceProbe

if TYPE_CHECKING:
    from m365archive.app.context import Env
    from m365archive.config import Config

HOLDS, DIFFERS, UNKNOWN = "holds", "differs", "can't tell"
PROFILE_FORMAT = 1
# Service plans named EXCHANGE_S_* that carry no mailbox (Exchange Foundation comes with many suites).
NOT_MAILBOX_PLANS = frozenset({"EXCHANGE_S_FOUNDATION"})


@dataclass
class ProbeResult:
    id: str
    assumption: str
    fidelity: tuple[str, ...]  # the docs/fidelity.md rows it observes
    verdict: str = UNKNOWN
    detail: str = ""
    observed: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "assumption": self.assumption,
            "fidelity": list(self.fidelity),
            "verdict": self.verdict,
            "detail": self.detail,
        }

    def profile_entry(self) -> dict[str, Any]:
        return {"probe": self.id, "fidelity": list(self.fidelity), "verdict": self.verdict, "observed": self.observed}


def shape(value: Any, depth: int = 0) -> Any:
    """A JSON value's shape: property names and types, never values (lists: the shape of their first item)."""
    if depth > 6:
        return "..."
    if isinstance(value, dict):
        return {str(k): shape(v, depth + 1) for k, v in sorted(value.items()) if not _looks_like_data(str(k))}
    if isinstance(value, list):
        return [shape(value[0], depth + 1)] if value else []
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if value is None:
        return "null"
    return "string"


def _looks_like_data(key: str) -> bool:
    """A dictionary key that is a value (a GUID, an address), not a property name: left out of shapes."""
    try:
        uuid.UUID(key)
        return True
    except ValueError:
        return "@" in key.lstrip("@") or "/" in key


def host_pattern(url: str, *, keep_first: bool = False) -> str:
    """A URL's host with what is tenant- or machine-specific replaced: a loopback address, the first label of a
    regional host (`keep_first`: a cloud's own service host, the same for every tenant)."""
    host = (urlsplit(url).hostname or "").lower()
    if not host:
        return ""
    try:
        ipaddress.ip_address(host)
        return "<address>"
    except ValueError:
        pass
    if host == "localhost":
        return "<address>"
    labels = host.split(".")
    return ".".join(["<label>", *labels[1:]]) if len(labels) > 4 and not keep_first else host


def _error(answer: Answer) -> str:
    """The error category of an answer (the exception's short name, or the OData code), never its message."""
    code, category, _ = parse_error(answer.body)
    return category or code


def _answered(answer: Answer) -> dict[str, Any]:
    return {
        "status": answer.status,
        "headers": answer.header_names,
        "error": _error(answer) if answer.status >= 400 else "",
    }


def _values(answer: Answer) -> list[dict[str, Any]]:
    body = answer.body if isinstance(answer.body, dict) else {}
    return [v for v in body.get("value") or [] if isinstance(v, dict)]


class Doctor:
    """The probes, in the order they run; the S&C regional host found by the first is used by the others."""

    def __init__(self, probe: ServiceProbe) -> None:
        self.probe = probe
        self.endpoints = probe.endpoints
        self.compliance = self.endpoints.compliance
        self.exchange = self.endpoints.exchange

    def probes(self) -> list[tuple[ProbeResult, Callable[[ProbeResult], Awaitable[None]]]]:
        def p(ident: str, assumption: str, *rows: str) -> ProbeResult:
            return ProbeResult(ident, assumption, rows)

        return [
            (
                p(
                    "scc-regional-host",
                    "the Security & Compliance front door redirects to a regional host, which serves",
                    "scc-regional-redirect",
                ),
                self.scc_regional_host,
            ),
            (
                p("role-identities", "Get-RoleGroup's Roles are path-qualified identities", "role-identities"),
                self.role_identities,
            ),
            (
                p(
                    "role-group-by-name",
                    "a built-in role group addressed by name in Get-RoleGroupMember answers 'matches multiple entries'",
                    "role-group-ambiguous",
                ),
                self.role_group_by_name,
            ),
            (
                p(
                    "retention-locations",
                    "retention policies' ExchangeLocation holds objects with a Name, not strings",
                    "retention-location-objects",
                ),
                self.retention_locations,
            ),
            (
                p("archive-guid", "Get-Mailbox exposes ArchiveGuid on every mailbox", "archive-status-none"),
                self.archive_guid,
            ),
            (
                p(
                    "exchange-skus",
                    "every SKU that carries an Exchange Online mailbox plan carries one the tool knows",
                    "gov-licences",
                ),
                self.exchange_skus,
            ),
            (
                p(
                    "batch-continue-on-error",
                    "a $batch stops at its first failed item unless continue-on-error is preferred, and runs every "
                    "item when it is",
                    "batch-continue-on-error",
                ),
                self.batch_continue_on_error,
            ),
            (
                p(
                    "batch-item-auth",
                    "a $batch item without its own Authorization is refused (401)",
                    "batch-item-auth",
                ),
                self.batch_item_auth,
            ),
            (
                p(
                    "token-audience",
                    "Exchange accepts a token for the cloud's Exchange audience and refuses one for another resource",
                    "cloud-audiences",
                ),
                self.token_audience,
            ),
            (
                p(
                    "anchor-mailbox",
                    "Exchange accepts the X-AnchorMailbox form the tool sends and refuses one naming no mailbox (400)",
                    "anchor-mailbox",
                ),
                self.anchor_mailbox,
            ),
            (
                p("adminapi-warnings", "every admin API answer carries @adminapi.warnings", "adminapi-errors"),
                self.adminapi_warnings,
            ),
            (
                p(
                    "verified-domains",
                    "GET /organization lists the verified domains, the initial one marked",
                    "org-verified-domains",
                ),
                self.verified_domains,
            ),
        ]

    async def run(self) -> list[ProbeResult]:
        results = []
        for result, probe in self.probes():
            try:
                await probe(result)
            except Exception as exc:  # one probe's failure is its verdict, never the run's
                result.verdict, result.detail = UNKNOWN, f"the probe failed: {type(exc).__name__}"
                result.observed.setdefault("failure", type(exc).__name__)
            results.append(result)
        return results

    # -- Security & Compliance ---------------------------------------------------------------------------
    async def scc(self, base: str, cmdlet: str, parameters: dict[str, Any] | None = None) -> Answer:
        return await self.probe.invoke(base, cmdlet, parameters, scope=self.endpoints.compliance_scope)

    async def scc_regional_host(self, r: ProbeResult) -> None:
        banner = await self.probe.banner(self.compliance)
        r.observed = {
            "front_door": host_pattern(self.compliance, keep_first=True),
            "discovery": _answered(banner),
            "location": host_pattern(banner.location) if banner.location else "",
        }
        if 300 <= banner.status < 400 and banner.location:
            regional = regional_base(self.compliance, banner.location)
            served = await self.scc(regional, "Get-RoleGroup", {"ResultSize": 1})
            r.observed["regional_host"] = host_pattern(regional)
            r.observed["regional"] = _answered(served)
            if regional.rstrip("/") != self.compliance.rstrip("/") and served.status == 200:
                self.compliance = regional
                r.verdict, r.detail = HOLDS, f"redirected ({banner.status}) to a regional host, which served"
            else:
                r.verdict, r.detail = DIFFERS, f"redirected, but the regional host answered {served.status}"
        elif banner.status and banner.status < 500 and banner.status not in (401, 403):
            served = await self.scc(self.compliance, "Get-RoleGroup", {"ResultSize": 1})
            r.observed["front_door_read"] = _answered(served)
            if served.status == 200:
                r.verdict, r.detail = DIFFERS, "no redirect: the front door served the tenant itself"
            else:
                r.verdict, r.detail = UNKNOWN, f"no redirect, and the front door answered {served.status}"
        else:
            r.verdict, r.detail = UNKNOWN, f"discovery answered {banner.status or banner.failure}"

    async def role_identities(self, r: ProbeResult) -> None:
        answer = await self.scc(self.compliance, "Get-RoleGroup")
        groups = _values(answer)
        roles = [str(role) for g in groups for role in g.get("Roles") or []]
        r.observed = {"answer": _answered(answer), "object": shape(groups[0]) if groups else {}}
        if answer.status != 200 or not roles:
            r.verdict, r.detail = UNKNOWN, f"Get-RoleGroup answered {answer.status} with {len(roles)} role(s)"
            return
        qualified = [role for role in roles if "/" in role]
        r.observed["roles_path_qualified"] = len(qualified) == len(roles)
        if len(qualified) == len(roles):
            r.verdict, r.detail = HOLDS, "every role is a path-qualified identity"
        else:
            r.verdict, r.detail = DIFFERS, f"{len(roles) - len(qualified)} of {len(roles)} role(s) are bare names"

    async def role_group_by_name(self, r: ProbeResult) -> None:
        answer = await self.scc(self.compliance, "Get-RoleGroupMember", {"Identity": "OrganizationManagement"})
        _, _, message = parse_error(answer.body)
        r.observed = {"answer": _answered(answer)}
        if answer.status == 200:
            r.verdict, r.detail = DIFFERS, "the built-in group's name resolved"
        elif "matches multiple entries" in message:
            r.observed["matches_multiple_entries"] = True
            r.verdict, r.detail = HOLDS, "the name matched multiple entries"
        else:
            r.verdict, r.detail = UNKNOWN, f"answered {answer.status} {_error(answer)}"

    async def retention_locations(self, r: ProbeResult) -> None:
        answer = await self.scc(self.compliance, "Get-RetentionCompliancePolicy")
        locations = [loc for p in _values(answer) for loc in p.get("ExchangeLocation") or []]
        r.observed = {"answer": _answered(answer), "location": shape(locations[0]) if locations else None}
        if answer.status != 200 or not locations:
            r.verdict, r.detail = UNKNOWN, "no retention policy with Exchange locations to look at"
        elif all(isinstance(loc, dict) and "Name" in loc for loc in locations):
            r.verdict, r.detail = HOLDS, "locations are objects with a Name"
        else:
            r.verdict, r.detail = DIFFERS, "locations are not objects with a Name"

    # -- Exchange Online --------------------------------------------------------------------------------
    async def archive_guid(self, r: ProbeResult) -> None:
        answer = await self.probe.invoke(self.exchange, "Get-Mailbox", {"ResultSize": 10})
        mailboxes = _values(answer)
        r.observed = {"answer": _answered(answer), "object": shape(mailboxes[0]) if mailboxes else {}}
        if answer.status != 200 or not mailboxes:
            r.verdict, r.detail = UNKNOWN, f"Get-Mailbox answered {answer.status} with {len(mailboxes)} mailbox(es)"
        elif all("ArchiveGuid" in m for m in mailboxes):
            r.verdict, r.detail = HOLDS, f"{len(mailboxes)} mailbox(es) read, each with ArchiveGuid"
        else:
            r.verdict, r.detail = DIFFERS, "a mailbox came without ArchiveGuid"

    async def batch_continue_on_error(self, r: ProbeResult) -> None:
        items: list[tuple[str, dict[str, Any]]] = [
            ("Get-Mailbox", {"Identity": f"m365archive-doctor-{uuid.uuid4()}"}),  # deliberately unknown
            ("Get-OrganizationConfig", {}),
        ]
        honoured = await self.probe.batch(self.exchange, items, continue_on_error=True)
        default = await self.probe.batch(self.exchange, items, continue_on_error=False)

        def answered(answer: Answer) -> list[str]:
            body = answer.body if isinstance(answer.body, dict) else {}
            return sorted(str(x.get("id")) for x in body.get("responses") or [] if isinstance(x, dict))

        r.observed = {
            "with_preference": {**_answered(honoured), "items_answered": answered(honoured)},
            "without_preference": {**_answered(default), "items_answered": answered(default)},
            "response": shape(
                (honoured.body or {}).get("responses", [None])[0] if isinstance(honoured.body, dict) else None
            ),
        }
        if honoured.status != 200 or default.status != 200:
            r.verdict, r.detail = UNKNOWN, f"$batch answered {honoured.status} / {default.status}"
        elif answered(honoured) == ["0", "1"] and answered(default) == ["0"]:
            r.verdict, r.detail = (
                HOLDS,
                "with the preference every item ran; without it the batch stopped at the failure",
            )
        else:
            r.verdict, r.detail = (
                DIFFERS,
                (f"items answered with the preference {answered(honoured)}, without it {answered(default)}"),
            )

    async def batch_item_auth(self, r: ProbeResult) -> None:
        answer = await self.probe.batch(
            self.exchange, [("Get-OrganizationConfig", {})], continue_on_error=True, authorize_items=False
        )
        body = answer.body if isinstance(answer.body, dict) else {}
        items = [x for x in body.get("responses") or [] if isinstance(x, dict)]
        status = int(items[0].get("status", 0)) if items else 0
        r.observed = {"answer": _answered(answer), "item_status": status}
        if answer.status != 200 or not items:
            r.verdict, r.detail = UNKNOWN, f"$batch answered {answer.status}"
        elif status == 401:
            r.verdict, r.detail = HOLDS, "the item without Authorization was refused (401)"
        else:
            r.verdict, r.detail = DIFFERS, f"the item without Authorization answered {status}"

    async def token_audience(self, r: ProbeResult) -> None:
        own = await self.probe.invoke(self.exchange, "Get-OrganizationConfig")
        other = await self.probe.invoke(self.exchange, "Get-OrganizationConfig", scope=self.endpoints.graph_scope)
        r.observed = {
            "audience": host_pattern(self.endpoints.exchange_scope),
            "own_audience": _answered(own),
            "graph_audience": _answered(other),
        }
        if own.status != 200:
            r.verdict = DIFFERS if own.status == 401 else UNKNOWN
            r.detail = f"a token for the Exchange audience answered {own.status}"
        elif other.status == 401:
            r.verdict, r.detail = HOLDS, "the Exchange audience is accepted, a Graph token refused (401)"
        else:
            r.verdict, r.detail = DIFFERS, f"a token for Graph answered {other.status}"

    async def anchor_mailbox(self, r: ProbeResult) -> None:
        own = await self.probe.invoke(self.exchange, "Get-OrganizationConfig")
        domain = self.endpoints.domain or "invalid.example"
        nobody = f"UPN:m365archive-doctor-{uuid.uuid4().hex[:12]}@{domain}"
        bogus = await self.probe.invoke(self.exchange, "Get-OrganizationConfig", anchor=nobody)
        form = (await self.probe.anchor()).split(":", 1)[0]
        r.observed = {"form": form, "own_anchor": _answered(own), "anchor_naming_no_mailbox": _answered(bogus)}
        if own.status != 200:
            r.verdict, r.detail = DIFFERS if own.status == 400 else UNKNOWN, f"the {form}: anchor answered {own.status}"
        elif bogus.status == 400:
            r.verdict, r.detail = HOLDS, f"the {form}: anchor is accepted; one naming no mailbox is refused (400)"
        else:
            r.verdict, r.detail = DIFFERS, f"an anchor naming no mailbox answered {bogus.status}"

    async def adminapi_warnings(self, r: ProbeResult) -> None:
        answer = await self.probe.invoke(self.exchange, "Get-OrganizationConfig")
        body = answer.body if isinstance(answer.body, dict) else {}
        r.observed = {"answer": _answered(answer), "envelope": sorted(k for k in body if k.startswith("@"))}
        if answer.status != 200:
            r.verdict, r.detail = UNKNOWN, f"answered {answer.status}"
        elif "@adminapi.warnings" in body:
            r.verdict, r.detail = HOLDS, "@adminapi.warnings is there"
        else:
            r.verdict, r.detail = DIFFERS, "the answer has no @adminapi.warnings"

    # -- Graph ----------------------------------------------------------------------------------------------
    async def exchange_skus(self, r: ProbeResult) -> None:
        answer = await self.probe.graph_get("/subscribedSkus")
        known = plans_granting("mailbox") | plans_granting("archive") | plans_granting("hold")
        plans = [
            (str(p.get("servicePlanId", "")).lower(), str(p.get("servicePlanName", "")))
            for sku in _values(answer)
            for p in sku.get("servicePlans") or []
            if str(p.get("servicePlanName", "")).upper().startswith("EXCHANGE_S_")
            and str(p.get("servicePlanName", "")).upper() not in NOT_MAILBOX_PLANS
        ]
        unknown = sorted({name for plan_id, name in plans if plan_id not in known})
        r.observed = {"answer": _answered(answer), "exchange_plans": len(plans), "unknown_plans": unknown}
        if answer.status != 200 or not plans:
            r.verdict, r.detail = UNKNOWN, f"subscribedSkus answered {answer.status} with {len(plans)} Exchange plan(s)"
        elif unknown:
            r.verdict, r.detail = DIFFERS, "Exchange plans the tool does not know: " + ", ".join(unknown)
        else:
            r.verdict, r.detail = HOLDS, f"{len(plans)} Exchange plan(s), each known"

    async def verified_domains(self, r: ProbeResult) -> None:
        answer = await self.probe.graph_get("/organization?$select=verifiedDomains")
        domains = [d for org in _values(answer) for d in org.get("verifiedDomains") or [] if isinstance(d, dict)]
        r.observed = {"answer": _answered(answer), "domain": shape(domains[0]) if domains else {}}
        if answer.status != 200 or not domains:
            r.verdict, r.detail = UNKNOWN, f"answered {answer.status} with {len(domains)} domain(s)"
        elif any(d.get("isInitial") is True for d in domains):
            r.verdict, r.detail = HOLDS, f"{len(domains)} verified domain(s), the initial one marked"
        else:
            r.verdict, r.detail = DIFFERS, "no verified domain is marked initial"


def profile(results: list[ProbeResult], cloud: str) -> dict[str, Any]:
    """The redacted service profile: one entry per probe."""
    return {
        "format_version": PROFILE_FORMAT,
        "tool_version": __version__,
        "cloud": cloud,
        "probes": [r.profile_entry() for r in results],
    }


async def doctor(env: Env, config: Config) -> tuple[list[ProbeResult], str]:
    """Run every probe against the configured tenant (or the simulator); reads only. Returns the results and
    the cloud's name."""
    from m365archive.app.context import connect

    async with connect(env, config) as session:
        probe = ServiceProbe(session.endpoints, session.credential)
        try:
            return await Doctor(probe).run(), session.endpoints.cloud
        finally:
            await probe.aclose()
