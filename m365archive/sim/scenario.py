"""Scenario files (TOML or JSON) -> TenantState, and a generator for large tenants.

The format is documented in README.md ("Scenario files"). Built-in scenarios live beside
this module in scenarios/ and are found by name: fresh, half-configured, hybrid, no-seats,
legacy-leftovers.
"""

from __future__ import annotations

import json
import random
import tomllib
import uuid
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from m365archive.scenario_format import SUFFIX as CAPTURED_SUFFIX
from m365archive.scenario_format import is_captured
from m365archive.sim.state import (
    CONNECTOR_APP_ID,
    DAY,
    EXCHANGE_ADMIN_ROLE_TEMPLATE,
    EXCHANGE_APP_ID,
    GRAPH_APP_ID,
    KNOWN_SKUS,
    AppRoleAssignment,
    Clock,
    Group,
    ImportSource,
    Knobs,
    MailboxPermission,
    OAuth2PermissionGrant,
    RemoteMailbox,
    RetentionPolicy,
    RetentionRule,
    RoleAssignment,
    RoleDefinition,
    RoleGroup,
    ServicePrincipal,
    Sku,
    TenantState,
    User,
    new_id,
)

# Package data (importlib.resources): an installed wheel finds them as a source checkout does.
SCENARIO_DIR = resources.files("m365archive.sim") / "scenarios"
# The top-level keys build_state() reads (README.md "Scenario files").
SCENARIO_TABLES = {
    "tenant",
    "knobs",
    "skus",
    "org_config",
    "admin_audit_log_config",
    "users",
    "groups",
    "role_groups",
    "service_principals",
    "retention_policies",
    "mailbox_permissions",
    "onprem",
    "generate",
    "imports",
}


def builtin_scenarios() -> list[str]:
    return sorted(item.name.removesuffix(".toml") for item in SCENARIO_DIR.iterdir() if item.name.endswith(".toml"))


BUILTIN_ROLES = {
    EXCHANGE_ADMIN_ROLE_TEMPLATE: "Exchange Administrator",
    "62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
    "17315797-102d-40b4-93e0-432062caca18": "Compliance Administrator",
    "e6d1a23a-da11-4be4-9570-befc86d067a7": "Compliance Data Administrator",
    "fe930be7-5e62-47db-91af-98c3a49a38b1": "User Administrator",
    "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3": "Application Administrator",
    "158c047a-c907-4556-b7ef-446551a6b5f7": "Cloud Application Administrator",
    "f2ef992c-3afb-46b9-b7cf-a126ee74c451": "Global Reader",
    "7be44c8a-adaf-4e2a-84d6-ab2649e08a13": "Privileged Authentication Administrator",
    "e8611ab8-c189-46e8-94e1-60213ab1f814": "Privileged Role Administrator",
    "4d6ac14f-3453-41d0-bef9-a3e0c569773a": "License Administrator",
}
ROLE_BY_NAME = {name.lower(): rid for rid, name in BUILTIN_ROLES.items()}

# Security & Compliance role groups and the roles they carry (Data Connector Admin among them).
DEFAULT_ROLE_GROUPS: dict[str, list[str]] = {
    "OrganizationManagement": ["Data Connector Admin", "Audit Logs", "Role Management"],
    "ComplianceAdministrator": ["Data Connector Admin", "Audit Logs", "Retention Management"],
    "ComplianceDataAdministrator": ["Data Connector Admin", "Retention Management"],
    "eDiscoveryManager": ["Case Management", "Compliance Search"],
    "RecordsManagement": ["Retention Management", "Disposition Management"],
}

FIRST = [
    "Adele",
    "Alex",
    "Bianca",
    "Diego",
    "Grady",
    "Henrietta",
    "Isaiah",
    "Johanna",
    "Lee",
    "Lidia",
    "Lynne",
    "Megan",
    "Miriam",
    "Nestor",
    "Patti",
    "Pradeep",
    "Raul",
    "Sam",
    "Wei",
    "Zoe",
]
LAST = [
    "Vance",
    "Wilber",
    "Pires",
    "Siciliani",
    "Archie",
    "Cafferata",
    "Turner",
    "Lanier",
    "Gu",
    "Holloway",
    "Robbins",
    "Bowen",
    "Hamilton",
    "Varghese",
    "Fernandez",
    "Gupta",
    "Ito",
    "Kim",
]


def load_scenario(source: str | Path) -> TenantState:
    """A scenario by built-in name or by path (.toml or .json, or a capture's .jsonl)."""
    path = Path(source)
    if path.exists() and (path.suffix == CAPTURED_SUFFIX or _captured(path)):
        from m365archive.sim.captured import load_captured

        return load_captured(path, build_state)
    if path.exists():
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
        unknown = sorted(set(data) - SCENARIO_TABLES) if isinstance(data, dict) else ["(not a table)"]
        if unknown:
            hint = " (an m365archive config file? sim serve takes a scenario)" if "procedure" in unknown else ""
            raise ValueError(f"{path} is not a scenario file: unknown key(s) {', '.join(unknown)}{hint}")
        try:
            return build_state(data)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{path} is not a valid scenario file: {type(exc).__name__} {exc}") from None
    named = SCENARIO_DIR / f"{source}.toml"
    if not named.is_file():
        names = ", ".join(builtin_scenarios())
        raise ValueError(f"no scenario file or built-in scenario named {source!r} (built-in: {names})")
    return build_state(tomllib.loads(named.read_text(encoding="utf-8")))


def _captured(path: Path) -> bool:
    """A file `m365archive capture` wrote (its first line is the format's header), whatever its name."""
    try:
        with path.open(encoding="utf-8-sig") as stream:
            return is_captured(stream.readline(4096))
    except (OSError, UnicodeDecodeError):
        return False


def build_state(data: dict[str, Any]) -> TenantState:
    tenant = data.get("tenant", {})
    knobs = Knobs(**_knob_values(data.get("knobs", {})))
    start = tenant.get("clock_start")
    state = TenantState(
        tenant_id=tenant.get("id", str(uuid.uuid4())),
        domain=tenant.get("domain", "contoso.onmicrosoft.com"),
        cloud=tenant.get("cloud", "global"),
        display_name=tenant.get("display_name", "Contoso"),
        knobs=knobs,
        clock=Clock(knobs.time_scale, _start_time(start) if start else None),
    )
    state.signed_in_user = tenant.get("signed_in_user", f"admin@{state.domain}")
    for rid, name in BUILTIN_ROLES.items():
        state.role_definitions[rid] = RoleDefinition(id=rid, display_name=name)
    for sku in data.get("skus", []):
        _add_sku(state, sku)
    state.org_config = {
        "AuditDisabled": False,
        "Name": state.domain.split(".")[0],
        "DisplayName": state.display_name,
        "IsDehydrated": False,
        "AutoExpandingArchiveEnabled": False,
        **data.get("org_config", {}),
    }
    state.admin_audit_log_config = {
        "UnifiedAuditLogIngestionEnabled": True,
        "AdminAuditLogEnabled": True,
        **data.get("admin_audit_log_config", {}),
    }
    for name, roles in DEFAULT_ROLE_GROUPS.items():
        state.role_groups[name] = RoleGroup(name=name, guid=new_id(), roles=list(roles))
    ensure_resource_sp(state, "graph")  # first-party service principals every tenant has
    ensure_resource_sp(state, "exchange")
    if state.signed_in_user:
        _ensure_operator(state, tenant)
    for entry in data.get("users", []):
        _add_user(state, entry)
    for entry in data.get("groups", []):
        _add_group(state, entry)
    for entry in data.get("role_groups", []):
        group = state.role_groups.setdefault(
            entry["name"], RoleGroup(name=entry["name"], guid=new_id(), roles=entry.get("roles", []))
        )
        group.members.extend(m for m in entry.get("members", []) if m not in group.members)
    for entry in data.get("service_principals", []):
        _add_service_principal(state, entry)
    for entry in data.get("retention_policies", []):
        policy = RetentionPolicy(
            name=entry["name"], guid=new_id(), exchange_locations=list(entry.get("exchange_locations", []))
        )
        state.retention_policies[policy.name] = policy
        rule_name = entry.get("rule", f"{policy.name} Rule")
        state.retention_rules[rule_name] = RetentionRule(
            name=rule_name,
            guid=new_id(),
            policy=policy.name,
            retention_duration=str(entry.get("retention_duration", "Unlimited")),
        )
    for entry in data.get("mailbox_permissions", []):
        mbx = state.mailbox_for(entry["mailbox"])
        if mbx is None:
            raise ValueError(f"mailbox_permissions: no mailbox {entry['mailbox']!r}")
        state.permissions.append(
            MailboxPermission(
                mailbox_guid=mbx.guid,
                user=entry["user"],
                access_rights=list(entry.get("access_rights", ["FullAccess"])),
                automapping=entry.get("automapping", True),
            )
        )
    onprem = data.get("onprem", {})
    for account in onprem.get("accounts", []):
        state.onprem_users[account] = ""  # password set at start (never in a scenario file)
    generate = data.get("generate")
    if generate:
        generate_users(
            state,
            int(generate.get("users", 0)),
            seed=int(generate.get("seed", 0)),
            synced_share=float(generate.get("synced_share", 0.0)),
        )
    for entry in data.get("imports", []):
        state.imports.append(_import_source(state, entry))
    if tenant.get("clock_elapsed_days"):  # the tenant has been running this long when the simulator starts
        state.clock.advance(float(tenant["clock_elapsed_days"]) * DAY)
    return state


def _start_time(value: Any) -> datetime:
    """tenant.clock_start: a TOML date-time (or ISO text), UTC when it names no zone."""
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _import_source(state: TenantState, entry: dict[str, Any]) -> ImportSource:
    """An [[imports]] entry (README "Scenario files"): a connector delivering items once a simulated day."""

    def user_id(upn: str) -> str:
        user = state.user_by_upn(upn)
        if user is None or user.id not in state.mailboxes:
            raise ValueError(f"imports: no mailbox {upn!r}")
        return user.id

    route = entry.get("route", "purview")
    if route not in ("purview", "partner"):
        raise ValueError(f"imports: route must be 'purview' or 'partner', not {route!r}")
    catchall = user_id(entry["catchall"]) if entry.get("catchall") else None
    if route == "partner" and catchall is None:
        raise ValueError("imports: a 'partner' route source needs catchall = '<the catch-all mailbox>'")
    if route == "purview" and not entry.get("folder"):
        raise ValueError("imports: a 'purview' route source needs folder = '<the folder its page names>'")
    mailboxes = [user_id(u) for u in entry["mailboxes"]] if "mailboxes" in entry else None
    return ImportSource(
        name=str(entry["source"]),
        folder=str(entry.get("folder", "")),
        parent=str(entry.get("parent", "")),
        route=route,
        daily=int(entry.get("daily", 5)),
        first_day=int(entry.get("first_day", 1)),
        stop_day=int(entry["stop_day"]) if entry.get("stop_day") is not None else None,
        unmapped_share=float(entry.get("unmapped_share", 0.0)),
        mailboxes=mailboxes,
        catchall=catchall,
    )


def _knob_values(raw: dict[str, Any]) -> dict[str, Any]:
    known = set(Knobs.__dataclass_fields__)
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"unknown knob(s): {', '.join(sorted(unknown))}")
    out = dict(raw)
    for key in (
        "latency_ms",
        "exchange_latency_ms",
        "fault_kinds",
        "fault_methods",
        "onprem_auth",
        "principal_scopes",
        "principal_roles",
        "conditional_access_policies",
        "application_impersonation_assignees",
        "principal_eligible_roles",
        "onprem_role_groups",
    ):
        if key in out and out[key] is not None:
            out[key] = tuple(out[key])
    return out


def _add_sku(state: TenantState, entry: dict[str, Any]) -> Sku:
    part = entry["part_number"]
    known = KNOWN_SKUS.get(part)
    sku_id = entry.get("sku_id") or (known[0] if known else new_id())
    plans = [tuple(p) for p in entry.get("service_plans", [])] or (list(known[1]) if known else [])
    sku = Sku(
        sku_id=sku_id,
        sku_part_number=part,
        enabled=int(entry.get("enabled", 0)),
        service_plans=[(str(a), str(b)) for a, b in plans],
        id=f"{state.tenant_id}_{sku_id}",
    )
    state.skus[sku_id] = sku
    return sku


def sku_id_for(state: TenantState, name: str) -> str:
    for sku in state.skus.values():
        if name in (sku.sku_part_number, sku.sku_id):
            return sku.sku_id
    raise ValueError(f"scenario uses license {name!r} that is not among its skus")


def _ensure_operator(state: TenantState, tenant: dict[str, Any]) -> None:
    upn = state.signed_in_user or ""
    user = state.add_user(
        User(
            id=new_id(),
            user_principal_name=upn,
            display_name="Tenant Admin",
            mail=upn,
            mail_nickname=upn.split("@")[0],
            usage_location="US",
            created=state.clock.now(),
        )
    )
    for role in tenant.get("signed_in_roles", ["Global Administrator"]):
        rid = ROLE_BY_NAME[role.lower()]
        aid = new_id()
        state.role_assignments[aid] = RoleAssignment(id=aid, principal_id=user.id, role_definition_id=rid)


def _add_user(state: TenantState, entry: dict[str, Any]) -> User:
    upn = entry["upn"]
    user = User(
        id=entry.get("id", new_id()),
        user_principal_name=upn,
        display_name=entry.get("display_name", upn.split("@")[0]),
        mail=entry.get("mail"),
        mail_nickname=entry.get("alias", upn.split("@")[0]),
        usage_location=entry.get("usage_location"),
        account_enabled=entry.get("account_enabled", True),
        on_premises_sync_enabled=True if entry.get("synced") else None,
        assigned_licenses=[sku_id_for(state, name) for name in entry.get("licenses", [])],
        created=state.clock.now(),
    )
    state.add_user(user)
    for role in entry.get("roles", []):
        rid = ROLE_BY_NAME.get(str(role).lower(), role)
        aid = new_id()
        state.role_assignments[aid] = RoleAssignment(id=aid, principal_id=user.id, role_definition_id=rid)
    mailbox_settings = entry.get("mailbox")
    if state.user_has_exchange(user) or mailbox_settings is not None:
        if not state.user_has_exchange(user):
            raise ValueError(f"user {upn}: a mailbox needs an Exchange license")
        state.ensure_mailbox(user)
        mbx = state.mailboxes[user.id]
        mbx.visible_at = 0.0
        _apply_mailbox_settings(state, mbx, mailbox_settings or {})
    if user.on_premises_sync_enabled:
        state.remote_mailboxes[user.id] = RemoteMailbox(
            user_id=user.id,
            identity=upn,
            alias=user.mail_nickname,
            remote_routing_address=f"{user.mail_nickname}@{state.domain.split('.')[0]}.mail.onmicrosoft.com",
        )
        cloud = state.mailboxes.get(user.id)
        if cloud is not None and cloud.archive_status == "Active":
            # The archive was provisioned on-premises and has already been synchronized.
            rm = state.remote_mailboxes[user.id]
            rm.archive_state = "HostedProvisioned"
            rm.archive_guid = cloud.archive_guid
            rm.archive_name = cloud.archive_name[0] if cloud.archive_name else ""
    return user


def _apply_mailbox_settings(state: TenantState, mbx: Any, settings: dict[str, Any]) -> None:
    mbx.recipient_type_details = settings.get("recipient_type_details", mbx.recipient_type_details)
    mbx.hidden_from_address_lists = settings.get("hidden", mbx.hidden_from_address_lists)
    if settings.get("archive"):
        mbx.archive_status = "Active"
        mbx.archive_guid = new_id()
        mbx.archive_name = [f"In-Place Archive - {mbx.display_name}"]
    mbx.auto_expanding_archive = settings.get("auto_expanding_archive", mbx.auto_expanding_archive)
    if settings.get("litigation_hold"):
        mbx.litigation_hold_enabled = True
        mbx.litigation_hold_date = state.clock.now()
        duration = settings.get("litigation_hold_duration", "Unlimited")
        mbx.litigation_hold_duration = duration if duration == "Unlimited" else f"{int(duration)}.00:00:00"
    mbx.audit_enabled = settings.get("audit_enabled", True)  # a scenario's mailboxes: audited unless it says
    for key, attr in (
        ("audit_owner", "audit_owner"),
        ("audit_delegate", "audit_delegate"),
        ("audit_admin", "audit_admin"),
    ):
        if key in settings:
            setattr(mbx, attr, list(settings[key]))
    if "retention_policy" in settings:
        mbx.retention_policy = settings["retention_policy"]


def _add_group(state: TenantState, entry: dict[str, Any]) -> None:
    group = Group(id=entry.get("id", new_id()), display_name=entry["name"])
    by_name = {g.display_name.lower(): g.id for g in state.groups.values()}
    for member in entry.get("members", []):
        user = state.user_by_upn(member)
        if user:
            group.members.append(user.id)
        elif member.lower() in by_name:
            group.members.append(by_name[member.lower()])
        else:
            raise ValueError(f"group {entry['name']}: unknown member {member!r}")
    state.groups[group.id] = group


def _add_service_principal(state: TenantState, entry: dict[str, Any]) -> ServicePrincipal:
    app_id = entry.get("app_id", CONNECTOR_APP_ID)
    sp = ServicePrincipal(
        id=entry.get("id", new_id()),
        app_id=app_id,
        display_name=entry.get("display_name", "Third-party data connector"),
        created=state.clock.now(),
    )
    state.service_principals[sp.id] = sp
    for grant in entry.get("grants", []):
        resource = ensure_resource_sp(state, grant.get("resource", "exchange"))
        gid = new_id()
        state.oauth2_grants[gid] = OAuth2PermissionGrant(
            id=gid,
            client_id=sp.id,
            consent_type="AllPrincipals",
            resource_id=resource.id,
            scope=grant.get("scope", "EWS.AccessAsUser.All"),
        )
    for role in entry.get("app_roles", []):
        resource = ensure_resource_sp(state, role.get("resource", "exchange"))
        aid = new_id()
        state.app_role_assignments[aid] = AppRoleAssignment(
            id=aid,
            principal_id=sp.id,
            principal_display_name=sp.display_name,
            resource_id=resource.id,
            resource_display_name=resource.display_name,
            app_role_id=role.get("app_role_id", "dc890d15-9560-4a4c-9b7f-a736ec74ec40"),
            created=state.clock.now(),
        )
    return sp


def ensure_resource_sp(state: TenantState, which: str) -> ServicePrincipal:
    """The first-party resource service principals (Microsoft Graph, Office 365 Exchange Online)."""
    app_id, name = (
        (GRAPH_APP_ID, "Microsoft Graph") if which == "graph" else (EXCHANGE_APP_ID, "Office 365 Exchange Online")
    )
    existing = state.sp_by_app_id(app_id, include_unreplicated=True)
    if existing:
        return existing
    sp = ServicePrincipal(
        id=new_id(),
        app_id=app_id,
        display_name=name,
        created=state.clock.now(),
        service_principal_type="Application",
    )
    state.service_principals[sp.id] = sp
    return sp


def generate_users(state: TenantState, count: int, *, seed: int = 0, synced_share: float = 0.0) -> None:
    """Add `count` users with mailboxes: mostly Plan 2 licensed, some Plan 1, some shared/synced.

    Fast enough for 100,000 users in a few seconds; deterministic for a seed.
    """
    rng = random.Random(seed)
    plan2 = _generated_sku(state, "ENTERPRISEPREMIUM", count)
    plan1 = _generated_sku(state, "EXCHANGESTANDARD", count)
    now = state.clock.now()
    base = state.domain
    for i in range(count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        alias = f"{first.lower()}.{last.lower()}.{i:06d}"
        upn = f"{alias}@{base}"
        roll = rng.random()
        licenses = [plan1] if roll < 0.05 else [plan2]
        synced = rng.random() < synced_share
        user = User(
            id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            user_principal_name=upn,
            display_name=f"{first} {last} {i:06d}",
            mail=upn,
            mail_nickname=alias,
            usage_location="US",
            on_premises_sync_enabled=True if synced else None,
            assigned_licenses=licenses,
            created=now,
        )
        state.add_user(user)
        state.ensure_mailbox(user)
        mbx = state.mailboxes[user.id]
        mbx.visible_at = 0.0
        if 0.05 <= roll < 0.07:
            mbx.recipient_type_details = "SharedMailbox"
        if synced:
            state.remote_mailboxes[user.id] = RemoteMailbox(
                user_id=user.id,
                identity=upn,
                alias=alias,
                remote_routing_address=f"{alias}@{base.split('.')[0]}.mail.onmicrosoft.com",
            )


def _generated_sku(state: TenantState, part: str, count: int) -> str:
    for sku in state.skus.values():
        if sku.sku_part_number == part:
            sku.enabled = max(sku.enabled, sku.enabled + count)
            return sku.sku_id
    return _add_sku(state, {"part_number": part, "enabled": count + 10}).sku_id
