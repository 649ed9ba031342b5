"""Captured scenarios (`m365archive capture`, JSON lines) -> TenantState, one line at a time.

Beside the TOML scenarios (scenario.py): the format is m365archive.scenario_format's, shared with the
product. Knobs are the simulator's defaults (a twin behaves as the simulator models Microsoft 365); users
keep their captured ids, so a config's object ids (groups, the catch-all's id in a plan) resolve.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from m365archive.scenario_format import FormatError, read
from m365archive.sim.state import (
    AppRoleAssignment,
    Group,
    Mailbox,
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


def load_captured(path: Path, base: Callable[[dict[str, Any]], TenantState]) -> TenantState:
    """The tenant a captured scenario describes, on `base` (scenario.build_state: the built-in role definitions
    and Microsoft's defaults). ValueError (FormatError) names the line that is wrong."""
    with path.open(encoding="utf-8-sig") as stream:
        head, records = read(stream, str(path))
        tenant = head["tenant"]
        state = base(
            {
                "tenant": {
                    "id": tenant["id"],
                    "domain": tenant.get("domain") or "contoso.onmicrosoft.com",
                    "cloud": tenant.get("cloud") or "global",
                    "display_name": tenant.get("display_name") or "Twin",
                    "signed_in_user": "",  # set below, once the captured users are in
                }
            }
        )
        loader = _Loader(state)
        for record in records:
            try:
                loader.add(record)
            except (KeyError, TypeError, ValueError) as exc:
                raise FormatError(f"{path}: a {record['type']} record is wrong: {type(exc).__name__} {exc}") from None
    loader.finish(head)
    return state


class _Loader:
    def __init__(self, state: TenantState) -> None:
        self.state = state
        self.now = state.clock.now()
        self.pending_mailboxes: dict[str, dict[str, Any]] = {}  # mailboxes read before their (unlicensed) user
        self.role_groups_seen = False

    def add(self, r: dict[str, Any]) -> None:
        getattr(self, "_" + r["type"])(r)

    def _domain(self, r: dict[str, Any]) -> None:
        if r["name"].lower() != self.state.domain.lower():
            self.state.verified_domains.append(r["name"])

    def _sku(self, r: dict[str, Any]) -> None:
        self.state.skus[r["sku_id"]] = Sku(
            sku_id=r["sku_id"],
            sku_part_number=r["part_number"],
            enabled=int(r["enabled"]),
            service_plans=[(str(a), str(b)) for a, b in r["service_plans"]],
            id=f"{self.state.tenant_id}_{r['sku_id']}",
        )

    def _user(self, r: dict[str, Any]) -> None:
        upn = r["upn"]
        user = User(
            id=r["id"],
            user_principal_name=upn,
            display_name=r["display_name"] or upn.split("@")[0],
            mail=upn,
            mail_nickname=upn.split("@")[0],
            usage_location=r["usage_location"],
            account_enabled=bool(r["account_enabled"]),
            on_premises_sync_enabled=True if r["synced"] else None,
            assigned_licenses=[s for s in r["licenses"] if s in self.state.skus],
            disabled_plans={k: list(v) for k, v in (r.get("disabled_plans") or {}).items()},
            created=self.now,
        )
        self.state.add_user(user)
        waiting = self.pending_mailboxes.pop(user.id, None)
        if waiting is not None:
            self._mailbox(waiting)

    def _mailbox(self, r: dict[str, Any]) -> None:
        user = self.state.users.get(r["user_id"])
        if user is None:
            self.pending_mailboxes[r["user_id"]] = r
            return
        mbx = Mailbox(
            user_id=user.id,
            guid=new_id(),
            alias=user.mail_nickname,
            primary_smtp=user.mail or user.user_principal_name,
            display_name=user.display_name,
            recipient_type_details=r["recipient_type_details"],
            visible_at=0.0,
            hidden_from_address_lists=bool(r["hidden"]),
            auto_expanding_archive=bool(r["auto_expanding_archive"]),
            litigation_hold_enabled=bool(r["litigation_hold"]),
            audit_enabled=bool(r["audit_enabled"]),
            is_dir_synced=bool(r["dir_synced"]),
            when_changed=self.now,
        )
        if r["archive"]:
            mbx.archive_status = "Active"
            mbx.archive_guid = new_id()
            mbx.archive_name = [f"In-Place Archive - {user.display_name}"]
        if mbx.litigation_hold_enabled:
            duration = str(r["litigation_hold_duration"])
            mbx.litigation_hold_duration = duration if duration.lower() == "unlimited" else f"{int(duration)}.00:00:00"
            mbx.litigation_hold_date = self.now
        for kind in ("owner", "delegate", "admin"):
            if r.get(f"audit_{kind}") is not None:
                setattr(mbx, f"audit_{kind}", list(r[f"audit_{kind}"]))
        if r.get("default_audit_set") is not None:
            mbx.default_audit_set = list(r["default_audit_set"])
        self.state.mailboxes[user.id] = mbx

    def _mailbox_permission(self, r: dict[str, Any]) -> None:
        mbx = self.state.mailboxes.get(r["mailbox"])
        if mbx is None:
            return  # a mailbox the capture did not hold (a user it could not read)
        self.state.permissions.append(
            MailboxPermission(
                mailbox_guid=mbx.guid,
                user=r["user"],
                access_rights=list(r["access_rights"]),
                deny=bool(r["deny"]),
                is_inherited=bool(r["inherited"]),
            )
        )

    def _role_assignment(self, r: dict[str, Any]) -> None:
        rid = r["role_definition_id"]
        if rid not in self.state.role_definitions:
            self.state.role_definitions[rid] = RoleDefinition(id=rid, display_name=rid, is_built_in=False)
        self.state.role_assignments[r["id"]] = RoleAssignment(
            id=r["id"], principal_id=r["principal_id"], role_definition_id=rid, directory_scope_id=r["scope"]
        )

    def _group(self, r: dict[str, Any]) -> None:
        self.state.groups.setdefault(r["id"], Group(id=r["id"], display_name=r["display_name"] or r["id"]))

    def _group_members(self, r: dict[str, Any]) -> None:
        group = self.state.groups.setdefault(r["group_id"], Group(id=r["group_id"], display_name=r["group_id"]))
        group.members.extend(r["members"])

    def _role_group(self, r: dict[str, Any]) -> None:
        if not self.role_groups_seen:  # the capture holds every role group: it replaces the defaults
            self.state.role_groups.clear()
            self.role_groups_seen = True
        self.state.role_groups[r["name"]] = RoleGroup(
            name=r["name"], guid=new_id(), roles=list(r["roles"]), members=list(r["members"])
        )

    def _retention_policy(self, r: dict[str, Any]) -> None:
        policy = RetentionPolicy(
            name=r["name"], guid=new_id(), exchange_locations=list(r["locations"]), enabled=bool(r["enabled"])
        )
        if r["distribution_status"] == "Pending":
            policy.distribution_status = "Pending"
            policy.distributed_at = self.state.clock.elapsed() + self.state.knobs.retention_distribution_delay
        self.state.retention_policies[policy.name] = policy
        for i, rule in enumerate(r["rules"]):
            name = f"{policy.name} rule" + (f" {i + 1}" if i else "")
            self.state.retention_rules[name] = RetentionRule(
                name=name,
                guid=new_id(),
                policy=policy.name,
                retention_duration=str(rule.get("duration") or "Unlimited"),
                retention_action=str(rule.get("action") or "Keep"),
            )

    def _service_principal(self, r: dict[str, Any]) -> None:
        self.state.service_principals[r["id"]] = ServicePrincipal(
            id=r["id"],
            app_id=r["app_id"],
            display_name=r["display_name"],
            created=self.now,
            service_principal_type=r["sp_type"],
        )

    def _oauth2_grant(self, r: dict[str, Any]) -> None:
        self.state.oauth2_grants[r["id"]] = OAuth2PermissionGrant(
            id=r["id"],
            client_id=r["client_id"],
            consent_type=r["consent_type"],
            resource_id=r["resource_id"],
            scope=r["scope"],
            principal_id=r.get("principal_id"),
        )

    def _app_role_assignment(self, r: dict[str, Any]) -> None:
        principal = self.state.service_principals.get(r["principal_id"])
        self.state.app_role_assignments[r["id"]] = AppRoleAssignment(
            id=r["id"],
            principal_id=r["principal_id"],
            principal_display_name=principal.display_name if principal else "",
            resource_id=r["resource_id"],
            resource_display_name="",  # named once the resource's record is in (finish)
            app_role_id=r["app_role_id"],
            created=self.now,
        )

    def _org_config(self, r: dict[str, Any]) -> None:
        self.state.org_config.update({k: v for k, v in r.items() if k != "type"})

    def _admin_audit_log_config(self, r: dict[str, Any]) -> None:
        self.state.admin_audit_log_config.update({k: v for k, v in r.items() if k != "type"})

    def _remote_mailbox(self, r: dict[str, Any]) -> None:
        user = self.state.user_by_upn(r["upn"])
        if user is None:
            return
        remote = RemoteMailbox(
            user_id=user.id,
            identity=user.user_principal_name,
            alias=user.mail_nickname,
            remote_routing_address=f"{user.mail_nickname}@{self.state.domain.split('.')[0]}.mail.onmicrosoft.com",
            archive_state=r["archive_state"],
        )
        cloud = self.state.mailboxes.get(user.id)
        if remote.archive_state == "HostedProvisioned" and cloud is not None and cloud.archive_status == "Active":
            remote.archive_guid = cloud.archive_guid
            remote.archive_name = cloud.archive_name[0] if cloud.archive_name else ""
        self.state.remote_mailboxes[user.id] = remote

    def finish(self, head: dict[str, Any]) -> None:
        state = self.state
        for assignment in state.app_role_assignments.values():
            resource = state.service_principals.get(assignment.resource_id)
            assignment.resource_display_name = resource.display_name if resource else ""
        operator = head.get("signed_in_user")
        state.signed_in_user = operator or None
        if operator and state.user_by_upn(operator) is None:
            state.add_user(
                User(
                    id=new_id(),
                    user_principal_name=operator,
                    display_name="Tenant Admin",
                    mail=operator,
                    mail_nickname=operator.split("@")[0],
                    usage_location="US",
                    created=self.now,
                )
            )
        for account in (head.get("onprem") or {}).get("accounts") or []:
            state.onprem_users[str(account)] = ""  # a password is made at start, as for every scenario
        if state.onprem_users:
            # As the built-in hybrid scenario: the simulator has no KDC, so its /PowerShell also accepts NTLM for
            # the rehearsal to sign in at all (a real server may refuse NTLM: jborean93/pypsrp#187).
            state.knobs.onprem_auth = ("kerberos", "ntlm")
