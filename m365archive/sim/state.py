"""The simulated tenant's state: directory, Exchange Online, compliance, on-premises.

One `TenantState` per simulated tenant. Every route handler reads and writes it under
`state.lock`. Times are read from `state.clock`, which runs `time_scale` times faster than
wall time, so a 120 s provisioning delay takes 0.12 s in tests with `time_scale = 0.001`.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

EXCHANGE_S_ENTERPRISE = "efb87545-963c-4e0d-99df-69c6916d9eb0"
EXCHANGE_S_STANDARD = "9aaf7827-d63c-4b61-89c3-182f06f82e5c"
# Government service plans (Microsoft's "Product names and service plan identifiers for licensing").
EXCHANGE_S_ENTERPRISE_GOV = "8c3069c0-ccdb-44be-ab77-986203a67df2"
EXCHANGE_S_STANDARD_GOV = "e9b4930a-925f-45e2-ac2a-3f7788ca6fdd"
EXCHANGE_S_ARCHIVE_ADDON = "176a09a6-7ec5-4039-ac02-b2791c6ba793"
EXCHANGE_S_ARCHIVE = "da040e0a-b393-4bea-bb76-928b3fa1cf5a"
INTUNE_O365 = "882e1d05-acd1-4ccb-8708-6ee03664b117"
PLAN2_PLANS = frozenset({EXCHANGE_S_ENTERPRISE, EXCHANGE_S_ENTERPRISE_GOV})
MAILBOX_PLANS = PLAN2_PLANS | {EXCHANGE_S_STANDARD, EXCHANGE_S_STANDARD_GOV}
HOLD_PLANS = PLAN2_PLANS | {EXCHANGE_S_ARCHIVE_ADDON, EXCHANGE_S_ARCHIVE}
EXCHANGE_ADMIN_ROLE_TEMPLATE = "29232cdf-9323-42fd-ade2-1d097af3e4de"
CONNECTOR_APP_ID = "8dfbc50b-2111-4d03-9b4d-dd0d00aae7a2"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
EXCHANGE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"

# Well-known SKUs and the service plans they carry (ids are Microsoft's).
KNOWN_SKUS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "EXCHANGEENTERPRISE": (
        "19ec0d23-8335-4cbd-94ac-6050e30712fa",
        [(EXCHANGE_S_ENTERPRISE, "EXCHANGE_S_ENTERPRISE")],
    ),
    "EXCHANGESTANDARD": (
        "4b9405b0-7788-4568-add1-99614e613b69",
        [(EXCHANGE_S_STANDARD, "EXCHANGE_S_STANDARD")],
    ),
    "ENTERPRISEPREMIUM": (
        "c7df2760-2c81-4ef7-b578-5b5392b571df",
        [
            (EXCHANGE_S_ENTERPRISE, "EXCHANGE_S_ENTERPRISE"),
            ("57ff2da0-773e-42df-b2af-ffb7a2317929", "TEAMS1"),
        ],
    ),
    "SPE_E5": (
        "06ebc4ee-1bb5-47dd-8120-11324bc54e06",
        [
            (EXCHANGE_S_ENTERPRISE, "EXCHANGE_S_ENTERPRISE"),
            ("57ff2da0-773e-42df-b2af-ffb7a2317929", "TEAMS1"),
        ],
    ),
    "SPE_E3": (
        "05e9a617-0261-4cee-bb44-138d3ef5d965",
        [
            (EXCHANGE_S_ENTERPRISE, "EXCHANGE_S_ENTERPRISE"),
            ("57ff2da0-773e-42df-b2af-ffb7a2317929", "TEAMS1"),
        ],
    ),
    "EXCHANGEENTERPRISE_GOV": (
        "7be8dc28-4da4-4e6d-b9b9-c60f2806df8a",
        [(EXCHANGE_S_ENTERPRISE_GOV, "EXCHANGE_S_ENTERPRISE_GOV"), (INTUNE_O365, "INTUNE_O365")],
    ),
    "EXCHANGESTANDARD_GOV": (
        "f37d5ebf-4bf1-4aa2-8fa3-50c51059e983",
        [(EXCHANGE_S_STANDARD_GOV, "EXCHANGE_S_STANDARD_GOV"), (INTUNE_O365, "INTUNE_O365")],
    ),
    "EXCHANGEARCHIVE_ADDON": (
        "ee02fd1b-340e-4a4b-b355-4a514e4c8943",
        [(EXCHANGE_S_ARCHIVE_ADDON, "EXCHANGE_S_ARCHIVE_ADDON")],
    ),
    "O365_BUSINESS_ESSENTIALS": (
        "3b555118-da6a-4418-894f-7df1e2096870",
        [(EXCHANGE_S_STANDARD, "EXCHANGE_S_STANDARD")],
    ),
}

AUDIT_OWNER_DEFAULT = [
    "ApplyRecord",
    "HardDelete",
    "MoveToDeletedItems",
    "SoftDelete",
    "Update",
    "UpdateCalendarDelegation",
    "UpdateFolderPermissions",
    "UpdateInboxRules",
]
AUDIT_DELEGATE_DEFAULT = [
    "ApplyRecord",
    "Create",
    "HardDelete",
    "MoveToDeletedItems",
    "SendAs",
    "SendOnBehalf",
    "SoftDelete",
    "Update",
    "UpdateFolderPermissions",
    "UpdateInboxRules",
]
AUDIT_ADMIN_DEFAULT = [
    "ApplyRecord",
    "Create",
    "HardDelete",
    "MoveToDeletedItems",
    "SendAs",
    "SendOnBehalf",
    "SoftDelete",
    "Update",
    "UpdateCalendarDelegation",
    "UpdateFolderPermissions",
    "UpdateInboxRules",
]


def new_id() -> str:
    return str(uuid.uuid4())


class Clock:
    """Simulated time: starts at the wall time, advances `time_scale`x slower than it."""

    def __init__(self, time_scale: float = 1.0, start: datetime | None = None) -> None:
        self.time_scale = time_scale
        self._t0 = time.monotonic()
        self._start = start or datetime.now(UTC)  # a scenario may start its tenant on another date
        self.offset = 0.0  # simulated seconds added by tests (advance())

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self.elapsed())

    def elapsed(self) -> float:
        """Simulated seconds since start."""
        scale = self.time_scale if self.time_scale > 0 else 1.0
        return (time.monotonic() - self._t0) / scale + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def at(self, elapsed: float) -> datetime:
        """The simulated date `elapsed` simulated seconds after the start."""
        return self._start + timedelta(seconds=elapsed)

    def real_seconds(self, simulated: float) -> float:
        """How long a simulated delay takes in wall time."""
        return simulated * self.time_scale


@dataclass
class Sku:
    sku_id: str
    sku_part_number: str
    enabled: int
    service_plans: list[tuple[str, str]]  # (servicePlanId, servicePlanName)
    id: str = ""  # "{tenantId}_{skuId}" as Graph returns it


@dataclass
class User:
    id: str
    user_principal_name: str
    display_name: str
    mail: str | None = None
    mail_nickname: str = ""
    usage_location: str | None = None
    account_enabled: bool = True
    on_premises_sync_enabled: bool | None = None
    assigned_licenses: list[str] = field(default_factory=list)  # skuIds
    password: str | None = None  # the simulator keeps it to check sign-in; never returned
    created: datetime | None = None
    user_type: str = "Member"
    disabled_plans: dict[str, list[str]] = field(default_factory=dict)  # skuId -> disabled servicePlanIds
    replicated_at: float = 0.0  # simulated time from which writes naming this user find it
    sign_in_sessions_valid_from: datetime | None = None  # set by revokeSignInSessions


@dataclass
class Mailbox:
    """An Exchange Online mailbox (Get-Mailbox's view of a user)."""

    user_id: str
    guid: str
    alias: str
    primary_smtp: str
    display_name: str
    recipient_type_details: str = "UserMailbox"  # SharedMailbox, RoomMailbox, ...
    visible_at: float = 0.0  # simulated seconds: Exchange shows the mailbox from this time on
    hidden_from_address_lists: bool = False
    archive_status: str = "None"  # "Active" once enabled
    archive_guid: str = "00000000-0000-0000-0000-000000000000"
    archive_name: list[str] = field(default_factory=list)
    auto_expanding_archive: bool = False
    litigation_hold_enabled: bool = False
    litigation_hold_duration: str = "Unlimited"  # "Unlimited" or "365.00:00:00"
    litigation_hold_date: datetime | None = None
    litigation_hold_owner: str | None = None
    audit_enabled: bool = True
    audit_owner: list[str] = field(default_factory=lambda: list(AUDIT_OWNER_DEFAULT))
    audit_delegate: list[str] = field(default_factory=lambda: list(AUDIT_DELEGATE_DEFAULT))
    audit_admin: list[str] = field(default_factory=lambda: list(AUDIT_ADMIN_DEFAULT))
    # Logon types on Microsoft-managed defaults; an explicit -AuditOwner/-AuditDelegate/-AuditAdmin takes
    # its type out, -DefaultAuditSet puts it back with the default actions (exchange-facts `audit_actions`).
    default_audit_set: list[str] = field(default_factory=lambda: ["Admin", "Delegate", "Owner"])
    retention_policy: str | None = "Default MRM Policy"
    in_place_holds: list[str] = field(default_factory=list)
    is_dir_synced: bool = False
    when_changed: datetime | None = None


@dataclass
class MailboxPermission:
    mailbox_guid: str
    user: str  # UPN of the trustee
    access_rights: list[str]
    deny: bool = False
    is_inherited: bool = False
    automapping: bool = True


@dataclass
class RoleDefinition:
    id: str  # equals templateId for built-in roles
    display_name: str
    is_built_in: bool = True


@dataclass
class RoleAssignment:
    id: str
    principal_id: str
    role_definition_id: str
    directory_scope_id: str = "/"


@dataclass
class ServicePrincipal:
    id: str
    app_id: str
    display_name: str
    created: datetime
    visible_at: float = 0.0  # replication: Graph shows it from this simulated time on
    service_principal_type: str = "Application"
    account_enabled: bool = True


@dataclass
class OAuth2PermissionGrant:
    id: str
    client_id: str  # service principal id of the client
    consent_type: str  # AllPrincipals
    resource_id: str
    scope: str
    principal_id: str | None = None


@dataclass
class AppRoleAssignment:
    id: str
    principal_id: str
    principal_display_name: str
    resource_id: str
    resource_display_name: str
    app_role_id: str
    created: datetime


@dataclass
class Group:
    id: str
    display_name: str
    members: list[str] = field(default_factory=list)  # user ids or group ids


@dataclass
class RetentionPolicy:
    name: str
    guid: str
    exchange_locations: list[str] = field(default_factory=list)
    enabled: bool = True
    comment: str = ""
    distribution_status: str = "Success"
    distributed_at: float = 0.0  # simulated time when a pending distribution completes


@dataclass
class RetentionRule:
    name: str
    guid: str
    policy: str
    retention_duration: str = "Unlimited"
    retention_action: str = "Keep"


@dataclass
class RoleGroup:
    """A Security & Compliance role group (Get-RoleGroup in the compliance session)."""

    name: str
    guid: str
    roles: list[str]
    members: list[str] = field(default_factory=list)  # UPNs


@dataclass
class RemoteMailbox:
    """On-premises Exchange's view of a directory-synced user (Get-RemoteMailbox)."""

    user_id: str
    identity: str  # UPN
    alias: str
    remote_routing_address: str
    archive_state: str = "None"  # "HostedProvisioned" after Enable-RemoteMailbox -Archive
    archive_name: str = ""
    pending_sync_at: float | None = None  # simulated time when dir sync copies to the cloud
    archive_guid: str = "00000000-0000-0000-0000-000000000000"  # stamped by Enable-RemoteMailbox -Archive
    hidden_from_address_lists: bool = False
    settings: dict[str, Any] = field(default_factory=dict)  # other Set-RemoteMailbox values, by name


DAY = 86400.0  # simulated seconds


@dataclass
class ImportSource:
    """A connector importing third-party items once a simulated day (the connector pages: "once every 24 hours").

    The run of day d (d = 1, 2, ...) lands at d simulated days after the start; none from `stop_day` on.
    Each run gives every mailbox in `mailboxes` `daily` items. `route` "purview": mapped items go to the
    folder the connector's page names (created by the first import), items no user maps to (`unmapped_share`
    of the run's items, on top) are not imported. Route "partner" (the retired EWS partner route): mapped items go
    to the user's Recoverable Items Purges folder, unmapped ones to the Inbox of the `catchall` mailbox, and no
    run after the retirement date.
    """

    name: str
    folder: str = ""
    parent: str = ""  # "" (top level, beside the Inbox) or "Inbox"
    route: str = "purview"
    daily: int = 5
    first_day: int = 1
    stop_day: int | None = None
    unmapped_share: float = 0.0
    mailboxes: list[str] | None = None  # user ids; None: every user mailbox except a catch-all
    catchall: str | None = None  # user id (route "partner")
    item_bytes: int = 6144  # the size of one imported item
    # (mailbox count, catch-all count) -> receivers, so that reading a mailbox doesn't scan the whole tenant
    receivers_cache: tuple[tuple[int, int], set[str]] | None = field(default=None, repr=False, compare=False)

    def runs(self, clock: Clock, retired_at: datetime) -> list[int]:
        """The days whose run has landed by now."""
        days = int(clock.elapsed() // DAY)
        last = days if self.stop_day is None else min(days, self.stop_day - 1)
        out = list(range(max(1, self.first_day), last + 1))
        if self.route == "partner":
            out = [d for d in out if clock.at(d * DAY) < retired_at]
        return out

    def unmapped_per_run(self, mailboxes: int) -> int:
        return round(self.daily * mailboxes * self.unmapped_share)


@dataclass
class Knobs:
    """Behaviour over time and under load. Every delay is in simulated seconds."""

    time_scale: float = 1.0
    latency_ms: tuple[float, float] = (0.0, 0.0)  # uniform [min, max] per request, real ms
    exchange_latency_ms: tuple[float, float] | None = None  # overrides latency for Exchange
    mailbox_provisioning_delay: float = 0.0  # after a license is assigned
    sp_replication_delay: float = 0.0  # after a service principal is created
    dir_sync_delay: float = 0.0  # on-premises change -> Exchange Online
    graph_rate: float = 0.0  # requests per second per tenant; 0 = unlimited
    graph_burst: int = 0
    exchange_rate: float = 0.0  # cmdlets per second per tenant (batch sub-requests count)
    exchange_burst: int = 0
    exchange_concurrency: int = 0  # concurrent requests per tenant; 0 = unlimited
    fault_rate: float = 0.0  # share of requests answered by a fault
    fault_kinds: tuple[str, ...] = ("503", "504", "reset")
    fault_methods: tuple[str, ...] = ()  # "POST /v1.0/users" exactly, or a prefix ending in "*"
    fault_limit: int = 0  # at most this many faults in all (0 = no limit)
    fault_after_commit: bool = True  # a 503/504 on a write may happen after it took effect
    seed: int = 0
    audience_check: bool = True  # a token must be for this cloud's resource (False: any audience)
    redirect_uri_check: bool = True  # consent: only the app's registered redirect URIs (False: any http(s) URI)
    # What the on-premises /PowerShell virtual directory accepts: Kerberos (the simulator has no KDC, so
    # nothing signs in unless a scenario also allows "ntlm", as the built-in hybrid scenario does).
    onprem_auth: tuple[str, ...] = ("kerberos",)
    # The keytab with the on-premises server's service key (HTTP/<host>, as a real server's is in AD): Kerberos
    # tickets are verified with it (needs the gssapi package; `make test-kerberos`). "" = no key: every
    # Kerberos ticket is refused.
    onprem_keytab: str = ""
    # The on-premises role groups every on-premises account is a member of (Get-ManagementRoleAssignment answers
    # from them): Organization Management grants Enable-RemoteMailbox (role Mail Recipients).
    onprem_role_groups: tuple[str, ...] = ("Organization Management",)
    # Security & Compliance: the front door redirects to the tenant's regional host, which alone serves
    # (False: the front door, and the loopback /scc mount, serve directly).
    scc_regional_redirect: bool = True
    # Exchange Online: the label this tenant's admin API calls are redirected to (served only by
    # `<label>.outlook.office365.com` and the other clouds' equivalents; the front door answers 302 there).
    # "" = the front door serves this tenant, as for most tenants (ScubaGear: "some tenants get redirected").
    exchange_redirect: str = ""
    # $batch without `Prefer: odata.continue-on-error` stops at the first failed item (OData's default) and
    # answers nothing after it (False: every item runs whatever the preference).
    batch_stop_on_error: bool = True
    # Unverified: a $batch item without its own Authorization header is refused (401).
    batch_item_auth: bool = True
    # Unverified: an X-AnchorMailbox that is neither UPN:<a user of this tenant> nor the module's
    # APP:SystemMailbox{bb558c35-...}@<tenant> form is refused (400).
    anchor_check: bool = True
    # Get-RoleGroup's Roles (and Identity) are path-qualified identities (False: bare names).
    role_identities_qualified: bool = True
    # Built-in role groups addressed by name in Get/Add-RoleGroupMember answer "...matches multiple entries"
    # (False: the name resolves).
    role_group_name_ambiguous: bool = True
    # Unverified which cmdlets: their failures come back as 200 with @adminapi.errors (non-terminating errors)
    # instead of an error status.
    adminapi_errors_for: tuple[str, ...] = ()
    # Tokens (sim/tokens.py): lifetime in real seconds (clients compare `exp` with their own clock); Entra's
    # default is a random 60-90 minutes.
    token_lifetime: float = 4500.0
    # Server-side early expiry: services refuse a token this many simulated seconds after it was issued,
    # before its `exp` (0 = tokens are honoured until `exp`).
    token_early_expiry: float = 0.0
    # The signed-in principal's permissions (delegated scopes for a user, app roles for an app; None = the
    # simulator's default consented set, tokens.DEFAULT_SCOPES) and Entra roles (by display name).
    principal_scopes: tuple[str, ...] | None = None
    principal_roles: tuple[str, ...] = ("Global Administrator",)
    # Entra roles the principal is only eligible for through Privileged Identity Management (by display name):
    # listed by roleEligibilityScheduleInstances, absent from the token's `wids` and from transitiveMemberOf
    # until activated.
    principal_eligible_roles: tuple[str, ...] = ()
    # Graph refuses writes the token's scopes/roles don't allow (False: any valid token may write).
    permission_check: bool = True
    # A mailbox provisioned now reads AuditEnabled False: auditing on by default does not flip it
    # (exchange-facts `audit_enabled`). True: new mailboxes read AuditEnabled True.
    new_mailbox_audit_enabled: bool = False
    # Get-Mailbox shows ArchiveGuid (the archive's identity the product reads; False: the property is left out).
    archive_guid_exposed: bool = True
    # Share of active archives whose Get-Mailbox ArchiveStatus reads None (0: always consistent).
    archive_status_none_share: float = 0.25
    # A retention policy's distribution stays Pending this long after New/Set; a Set meanwhile is refused
    # (0: distribution is instant and nothing is refused).
    retention_distribution_delay: float = 120.0
    # Get-RetentionCompliancePolicy returns ExchangeLocation as objects with a Name (False: plain strings).
    retention_location_objects: bool = True
    # Writes naming a user created less than this long ago answer 404 Request_ResourceNotFound
    # (directory replication lag; 0: a new user is found at once).
    user_replication_delay: float = 30.0
    # Removing a directory-role member: only the documented forms (False: also the `$ref?$id=` spelling).
    ref_form_check: bool = True
    # Litigation Hold only with a licence that allows it (Plan 2, commercial or Government, or Exchange Online
    # Archiving); False: any mailbox can be put on hold.
    hold_licence_check: bool = True
    # A first-party resource's service principal lists the permissions it publishes (appRoles,
    # oauth2PermissionScopes), as Graph returns them (False: both lists empty, so ids can't be named).
    resource_permissions_published: bool = True
    # Security defaults (GET /policies/identitySecurityDefaultsEnforcementPolicy isEnabled): administrators,
    # the Exchange Administrator role among them, must do multifactor authentication at every sign-in.
    security_defaults: bool = False
    # Conditional Access policies (GET /identity/conditionalAccess/policies), as Graph returns them.
    conditional_access_policies: tuple[dict[str, Any], ...] = ()
    # ApplicationImpersonation: None = the tenant no longer has the role (removed from Exchange Online in
    # February 2025); a tuple = it still has it, assigned directly to these UPNs.
    application_impersonation_assignees: tuple[str, ...] | None = None
    # PIM: role assignments the scenario's users are eligible for, as (UPN, role display name) pairs.
    eligible_role_assignments: tuple[tuple[str, str], ...] = ()


@dataclass
class TenantState:
    tenant_id: str
    domain: str
    cloud: str = "global"
    display_name: str = "Contoso"
    skus: dict[str, Sku] = field(default_factory=dict)  # by skuId
    users: dict[str, User] = field(default_factory=dict)  # by id
    mailboxes: dict[str, Mailbox] = field(default_factory=dict)  # by user id
    permissions: list[MailboxPermission] = field(default_factory=list)
    role_definitions: dict[str, RoleDefinition] = field(default_factory=dict)
    role_assignments: dict[str, RoleAssignment] = field(default_factory=dict)
    service_principals: dict[str, ServicePrincipal] = field(default_factory=dict)
    oauth2_grants: dict[str, OAuth2PermissionGrant] = field(default_factory=dict)
    app_role_assignments: dict[str, AppRoleAssignment] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    org_config: dict[str, Any] = field(default_factory=dict)
    admin_audit_log_config: dict[str, Any] = field(default_factory=dict)
    retention_policies: dict[str, RetentionPolicy] = field(default_factory=dict)  # by name
    retention_rules: dict[str, RetentionRule] = field(default_factory=dict)
    role_groups: dict[str, RoleGroup] = field(default_factory=dict)  # by name
    remote_mailboxes: dict[str, RemoteMailbox] = field(default_factory=dict)  # by user id
    onprem_users: dict[str, str] = field(default_factory=dict)  # "DOMAIN\\user" -> password
    signed_in_user: str | None = None  # UPN of the operator the credential represents
    compliance_region: str = "nam12b"  # the S&C regional label the front door redirects this tenant to
    # How often each setting actually changed ("Archive:<mailbox guid>": 1): a change applied twice shows as 2.
    transitions: Counter[str] = field(default_factory=Counter)
    verified_domains: list[str] = field(default_factory=list)  # besides `domain`
    activated_directory_roles: set[str] = field(default_factory=set)  # role template ids (POST /directoryRoles)
    knobs: Knobs = field(default_factory=Knobs)
    imports: list[ImportSource] = field(default_factory=list)  # third-party data arriving (ImportSource)
    # The token signing key, made with the state (the simulator's start); only the simulator holds it.
    token_key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    issued_tokens: dict[str, float] = field(default_factory=dict)  # token id (uti) -> simulated issue time
    clock: Clock = field(default_factory=Clock)
    lock: threading.RLock = field(default_factory=threading.RLock)
    _by_upn: dict[str, str] = field(default_factory=dict)  # lower UPN -> user id

    # -- indexes ---------------------------------------------------------------
    def add_user(self, user: User) -> User:
        self.users[user.id] = user
        self._by_upn[user.user_principal_name.lower()] = user.id
        return user

    def rename_user(self, user: User, new_upn: str) -> None:
        self._by_upn.pop(user.user_principal_name.lower(), None)
        user.user_principal_name = new_upn
        self._by_upn[new_upn.lower()] = user.id

    def user_by_upn(self, upn: str) -> User | None:
        uid = self._by_upn.get(upn.lower())
        return self.users.get(uid) if uid else None

    def find_user(self, key: str) -> User | None:
        """By object id or userPrincipalName, as Graph's /users/{id|upn} does."""
        return self.users.get(key) or self.user_by_upn(key)

    # -- licensing -------------------------------------------------------------
    def consumed_units(self, sku_id: str) -> int:
        return sum(1 for u in self.users.values() if sku_id in u.assigned_licenses)

    def user_service_plans(self, user: User) -> set[str]:
        plans: set[str] = set()
        for sku_id in user.assigned_licenses:
            sku = self.skus.get(sku_id)
            if sku:
                disabled = set(user.disabled_plans.get(sku_id, ()))
                plans.update(p for p, _ in sku.service_plans if p not in disabled)
        return plans

    def user_has_exchange(self, user: User) -> bool:
        return bool(self.user_service_plans(user) & MAILBOX_PLANS)

    def user_allows_hold(self, user: User) -> bool:
        """Litigation Hold needs Exchange Online Plan 2 (commercial or Government) or Exchange Online Archiving."""
        return bool(self.user_service_plans(user) & HOLD_PLANS)

    # -- Exchange view ------------------------------------------------------------
    def visible_mailboxes(self) -> list[Mailbox]:
        now = self.clock.elapsed()
        return [m for m in self.mailboxes.values() if m.visible_at <= now]

    def mailbox_for(self, identity: str) -> Mailbox | None:
        """Resolve an Exchange -Identity: UPN, primary SMTP, alias, GUID or user id."""
        key = identity.strip().lower()
        now = self.clock.elapsed()
        user = self.user_by_upn(key)
        if user and user.id in self.mailboxes:
            mbx = self.mailboxes[user.id]
            return mbx if mbx.visible_at <= now else None
        for mbx in self.mailboxes.values():
            if key in (mbx.guid.lower(), mbx.alias.lower(), mbx.primary_smtp.lower(), mbx.user_id):
                return mbx if mbx.visible_at <= now else None
        return None

    def ensure_mailbox(self, user: User) -> None:
        """A licensed user gets a mailbox after the provisioning delay."""
        if user.id in self.mailboxes or not self.user_has_exchange(user):
            return
        alias = user.mail_nickname or user.user_principal_name.split("@")[0]
        self.mailboxes[user.id] = Mailbox(
            user_id=user.id,
            guid=new_id(),
            alias=alias,
            primary_smtp=user.mail or user.user_principal_name,
            display_name=user.display_name,
            visible_at=self.clock.elapsed() + self.knobs.mailbox_provisioning_delay,
            is_dir_synced=bool(user.on_premises_sync_enabled),
            when_changed=self.clock.now(),
            audit_enabled=self.knobs.new_mailbox_audit_enabled,
        )
        if not user.mail:
            user.mail = user.user_principal_name

    def run_directory_sync(self) -> None:
        """Copy on-premises archive changes whose sync time has come to Exchange Online."""
        now = self.clock.elapsed()
        for rm in self.remote_mailboxes.values():
            if rm.pending_sync_at is not None and rm.pending_sync_at <= now:
                rm.pending_sync_at = None
                mbx = self.mailboxes.get(rm.user_id)
                if mbx and rm.archive_state == "HostedProvisioned" and mbx.archive_status != "Active":
                    mbx.archive_status = "Active"
                    zero = "00000000-0000-0000-0000-000000000000"
                    mbx.archive_guid = rm.archive_guid if rm.archive_guid != zero else new_id()
                    mbx.archive_name = [rm.archive_name or f"In-Place Archive - {mbx.display_name}"]

    def visible_service_principals(self) -> list[ServicePrincipal]:
        now = self.clock.elapsed()
        return [sp for sp in self.service_principals.values() if sp.visible_at <= now]

    def sp_by_app_id(self, app_id: str, *, include_unreplicated: bool = False) -> ServicePrincipal | None:
        now = self.clock.elapsed()
        for sp in self.service_principals.values():
            if sp.app_id.lower() == app_id.lower() and (include_unreplicated or sp.visible_at <= now):
                return sp
        return None
