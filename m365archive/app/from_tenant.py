"""`init --from-tenant`: a desired-state file that reproduces the tenant as it is.

The tenant reader streams the tenant; this keeps only what a config says: the catch-all (a hidden user
mailbox with FullAccess reviewers or the Exchange Administrator role), its reviewers, licence, archive and
hold, its audit settings, the users already configured (archive, and the hold the config asks for) in a
scope file, and the connector's role group. The text is the commented template (config_template) with
those values set (tomlkit keeps the comments), and it is validated as every config is. `setup --dry-run`
with it plans nothing the tenant doesn't already have, so adopting the tool starts from reality.
"""

from __future__ import annotations

import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomlkit

from m365archive.app.context import Env, connect, reading
from m365archive.app.tenant_reader import ReadScope, TenantReader
from m365archive.config import AUDIT_ACTIONS, Config, ConfigError, TenantConfig, parse_config
from m365archive.config_template import render
from m365archive.errors import CommandError, Reason
from m365archive.licences import plans_granting
from m365archive.partners import DATA_CONNECTOR_ADMIN_ROLE
from m365archive.wellknown import EXCHANGE_ADMINISTRATOR_ROLE as EXCHANGE_ADMIN_ROLE

HOLD_PLANS = plans_granting("hold")
PLAN2 = plans_granting("plan2")
LOGON_TYPES = ("Owner", "Delegate", "Admin")


@dataclass
class FromTenant:
    """The config text, the scope file's text (None: no user is configured yet), and what was found."""

    config: str
    scope_file: str | None
    messages: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class _Box:
    user_id: str
    archive: bool
    auto_expanding: bool
    hold: bool
    duration: str


class _Tenant:
    """What a config needs, gathered from the reader's stream (sets and small lists, not the tenant)."""

    def __init__(self) -> None:
        self.tenant: dict[str, Any] = {}
        self.domains: list[str] = []
        self.sku_plans: dict[str, frozenset[str]] = {}
        self.sku_names: dict[str, str] = {}
        self.users: dict[str, tuple[str, frozenset[str]]] = {}  # id -> (upn, service plans)
        self.user_info: dict[str, dict[str, Any]] = {}  # candidates' user records, by id
        self.hidden: dict[str, dict[str, Any]] = {}  # hidden user mailboxes, by user id
        self.boxes: list[_Box] = []  # archived user mailboxes
        self.full_access: dict[str, list[str]] = {}  # mailbox user id -> trustees
        self.exchange_admins: set[str] = set()
        self.role_groups: list[dict[str, Any]] = []
        self.policies: dict[str, set[str]] = {}
        self.org_audit_disabled = False

    def add(self, record: dict[str, Any]) -> None:
        kind = record["type"]
        if kind == "tenant":
            self.tenant = record
        elif kind == "domain":
            self.domains.append(record["name"])
        elif kind == "sku":
            self.sku_plans[record["sku_id"]] = frozenset(p[0].lower() for p in record["service_plans"])
            self.sku_names[record["sku_id"]] = record["part_number"]
        elif kind == "user":
            plans = frozenset().union(*(self.sku_plans.get(s, frozenset()) for s in record["licenses"]))
            self.users[record["id"]] = (record["upn"], plans)
            self.user_info[record["id"]] = {k: record[k] for k in ("display_name", "usage_location", "licenses")}
        elif kind == "mailbox" and record["recipient_type_details"] == "UserMailbox":
            if record["hidden"]:
                self.hidden[record["user_id"]] = record
            if record["archive"]:
                box = _Box(
                    record["user_id"],
                    True,
                    record["auto_expanding_archive"],
                    record["litigation_hold"],
                    record["litigation_hold_duration"],
                )
                self.boxes.append(box)
        elif kind == "mailbox_permission":
            if "FullAccess" in record["access_rights"] and not record["deny"] and not record["inherited"]:
                self.full_access.setdefault(record["mailbox"], []).append(record["user"])
        elif kind == "role_assignment" and record["role_definition_id"] == EXCHANGE_ADMIN_ROLE:
            if record["scope"] == "/":
                self.exchange_admins.add(record["principal_id"])
        elif kind == "role_group":
            self.role_groups.append(record)
        elif kind == "retention_policy":
            self.policies[record["name"]] = set(record["locations"])
        elif kind == "org_config":
            self.org_audit_disabled = record["AuditDisabled"]

    def upn(self, user_id: str) -> str:
        return self.users.get(user_id, ("", frozenset()))[0]

    def catchall(self) -> tuple[str | None, list[str]]:
        """The catch-all's user id (a hidden user mailbox with FullAccess reviewers or the Exchange
        Administrator role; the one with most of the signs), and the other candidates' UPNs."""
        scored = []
        for uid, mbx in self.hidden.items():
            reviewers = bool(self.full_access.get(uid))
            admin = uid in self.exchange_admins
            if not (reviewers or admin):
                continue
            score = 2 * reviewers + 2 * admin + mbx["litigation_hold"] + mbx["archive"]
            scored.append((-score, self.upn(uid).lower(), uid))
        scored.sort()
        if not scored:
            return None, []
        return scored[0][2], [self.upn(uid) for _, _, uid in scored[1:]]


async def read_from_tenant(env: Env, tenant_id: str, domain: str | None) -> _Tenant:
    seed = Config(procedure="purview-connector", tenant=TenantConfig(id=tenant_id, domain=domain))
    gathered = _Tenant()
    async with connect(env, seed) as session:
        reader = TenantReader(session, ReadScope(), progress=env.progress)
        with reading():
            async for record in reader.records():
                gathered.add(record)
        gathered.tenant["operator"] = "" if session.app_only else session.operator
    return gathered


def _duration(value: str) -> int | str:
    return "unlimited" if value.lower() == "unlimited" else int(value)


def _catchall_hold(t: _Tenant, uid: str) -> tuple[str, str, str | None]:
    """(kind, Exchange duration, retention policy) the catch-all has now."""
    mbx = t.hidden[uid]
    if mbx["litigation_hold"]:
        return "litigation", mbx["litigation_hold_duration"], None
    upn = t.upn(uid).lower()
    policy = next((name for name, locs in sorted(t.policies.items()) if upn in locs), None)
    if policy is not None:
        return "retention-policy", "Unlimited", policy
    return "none", "Unlimited", None


def _users_hold(t: _Tenant, boxes: list[_Box]) -> tuple[str, str, str | None]:
    """Without a catch-all: the hold most of the archived users already have."""
    held = Counter(b.duration for b in boxes if b.hold)
    if held and sum(held.values()) * 2 >= len(boxes):
        return "litigation", held.most_common(1)[0][0], None
    return "none", "Unlimited", None


def _in_scope(t: _Tenant, boxes: list[_Box], kind: str, duration: str, policy: str | None) -> list[_Box]:
    """The archived user mailboxes that already have what the config will ask of them."""
    if kind == "litigation":
        return [b for b in boxes if b.hold and b.duration == duration and t.users[b.user_id][1] & HOLD_PLANS]
    if kind == "retention-policy" and policy:
        members = {loc for name, locs in t.policies.items() if name == policy or name.startswith(policy + " ")
                   for loc in locs}  # fmt: skip
        return [b for b in boxes if t.upn(b.user_id).lower() in members]
    return boxes


def _audit_lists(mbx: dict[str, Any], messages: list[str]) -> dict[str, list[str]]:
    """Explicit action lists for the logon types Microsoft's defaults don't manage on this mailbox."""
    default_set = set(mbx.get("default_audit_set") or [])
    out: dict[str, list[str]] = {}
    for logon in LOGON_TYPES:
        if logon in default_set:
            continue
        actions = mbx.get(f"audit_{logon.lower()}") or []
        known = sorted(a for a in actions if a in AUDIT_ACTIONS[logon.lower()])
        if len(known) != len(actions):
            messages.append(f"Audit{logon}: left out action(s) this tool doesn't know: "
                            + ", ".join(sorted(set(actions) - set(known))))  # fmt: skip
        out[logon.lower()] = known
    return out


def build_config(t: _Tenant, scope_path: str) -> FromTenant:
    messages: list[str] = []
    tenant_id = str(t.tenant.get("id") or "")
    initial = [d for d in t.domains if d.lower().endswith((".onmicrosoft.com", ".onmicrosoft.us", ".onmschina.cn"))]
    domain = str(t.tenant.get("domain") or (initial or t.domains or [""])[0])
    uid, others = t.catchall()
    boxes = [b for b in t.boxes if b.user_id != uid and b.user_id in t.users]
    procedure = "partner-ews" if uid else "purview-connector"
    doc = tomlkit.parse(render(tenant_id=tenant_id, domain=domain or tenant_id, procedure=procedure))
    doc["tenant"]["cloud"] = str(t.tenant.get("cloud") or "global")
    if domain:
        doc["tenant"]["domain"] = domain
    data: dict[str, Any] = {"procedure": procedure, "catchall": None}
    if uid:
        mbx = t.hidden[uid]
        upn = t.upn(uid)
        info = t.user_info.get(uid, {})
        plan2 = [t.sku_names[s] for s in info.get("licenses", []) if t.sku_plans.get(s, frozenset()) & PLAN2]
        reviewers = sorted({r for r in t.full_access.get(uid, []) if "@" in r}, key=str.lower)
        catchall = doc["catchall"]
        catchall["upn"] = upn
        catchall["display_name"] = info.get("display_name") or upn.split("@")[0]
        catchall["usage_location"] = info.get("usage_location") or "US"
        catchall["license"] = plan2[0] if plan2 else "any"
        catchall["hidden_from_address_lists"] = True
        catchall["archive"] = bool(mbx["archive"])
        catchall["auto_expanding_archive"] = bool(mbx["auto_expanding_archive"])
        catchall["exchange_admin_role"] = uid in t.exchange_admins
        entries = tomlkit.array()
        for reviewer in reviewers:
            entry = tomlkit.inline_table()
            entry.update({"user": reviewer, "automapping": False})
            entries.append(entry)
        catchall["full_access"] = entries.multiline(True) if reviewers else entries
        kind, duration, policy = _catchall_hold(t, uid)
        audit = doc["audit"]
        audit["enabled"] = bool(mbx["audit_enabled"])
        for logon, actions in _audit_lists(mbx, messages).items():
            audit[logon] = actions
        messages.append(
            f"catch-all: {upn} (hidden; {len(reviewers)} FullAccess reviewer(s); hold {kind}; Exchange Administrator "
            + ("yes" if uid in t.exchange_admins else "no")
            + ")"
        )
        if others:
            messages.append("other mailboxes that look like a catch-all (not used): " + ", ".join(sorted(others)))
        data["catchall"] = upn
    else:
        if "catchall" in doc:
            del doc["catchall"]
        kind, duration, policy = _users_hold(t, boxes)
        doc["audit"]["enabled"] = not t.org_audit_disabled
        _connector(t, doc, messages)
        messages.append(
            "no catch-all mailbox found (a hidden user mailbox with reviewers): procedure purview-connector"
        )
    hold = doc["hold"]
    hold["kind"] = kind
    hold["duration_days"] = _duration(duration)
    if policy:
        hold["retention_policy"] = policy
    scope = _in_scope(t, boxes, kind, duration, policy)
    users = doc["users"]
    scope_text = None
    if scope:
        upns = sorted((t.upn(b.user_id) for b in scope), key=str.lower)
        users["scope"] = "file"
        users["file"] = scope_path
        users["auto_expanding_archive"] = all(b.auto_expanding for b in scope)
        scope_text = (
            "# Users already configured (archive"
            + ("" if kind == "none" else ", hold")
            + "), written by `m365archive init --from-tenant`. One UPN a line.\n"
            + "".join(u + "\n" for u in upns)
        )
        messages.append(f"{len(upns):,} user(s) already configured: in scope through {scope_path}")
    else:
        users["scope"] = "none"
    users["archive"] = True
    users["hold"] = kind != "none"
    skipped = len(boxes) - len(scope)
    if skipped:
        messages.append(f"{skipped:,} archived mailbox(es) without that hold are left out of scope")
    text = tomlkit.dumps(doc)
    try:
        parse_config(tomllib.loads(text), "the config read from the tenant")
    except ConfigError as exc:
        raise CommandError("; ".join(exc.lines), Reason.ERROR) from None
    data.update({"hold": kind, "users_in_scope": len(scope)})
    return FromTenant(text, scope_text, messages, data)


def _connector(t: _Tenant, doc: Any, messages: list[str]) -> None:
    operator = str(t.tenant.get("operator") or "").lower()
    for group in t.role_groups:
        if DATA_CONNECTOR_ADMIN_ROLE in group["roles"] and operator in {m.lower() for m in group["members"]}:
            doc["connector"]["role_group"] = group["name"]
            messages.append(f"connector: {operator} holds Data Connector Admin through {group['name']}")
            return


async def config_from_tenant(env: Env, tenant: str | None, domain: str | None, scope_path: Path) -> FromTenant:
    """Read the tenant (reads only) and make the config that reproduces it. The tenant is --tenant, else
    --domain, else (with --sim) the simulator's."""
    tenant_id = tenant or domain
    if tenant_id is None and env.sim_url:
        import asyncio

        from m365archive.tenant.session import SimulatorUnreachable, discover_simulator

        try:
            tenant_id = (await asyncio.to_thread(discover_simulator, env.sim_url)).tenant_id
        except SimulatorUnreachable as exc:
            raise CommandError(str(exc), Reason.ERROR) from None
    if tenant_id is None:
        raise CommandError("init --from-tenant needs the tenant to read: add --tenant (its id or initial domain)",
                           Reason.USAGE)  # fmt: skip
    gathered = await read_from_tenant(env, tenant_id, domain)
    return build_config(gathered, str(scope_path))
