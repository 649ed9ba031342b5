"""The tenant reader: what the config and the simulator need, read-only, a page at a time.

One reader for `init --from-tenant` (a config that reproduces the tenant) and `capture` (a twin of the
tenant for the simulator). It yields records of the captured-scenario format (m365archive.scenario_format)
as it reads, never the whole tenant: Graph users come 999 a page and Exchange mailboxes 1,000 a page, and
only sets of object ids (and the few mailboxes that look like a catch-all) are kept, so 100,000 mailboxes
fit in bounded memory. Every request is a read; the gateways and the steps' own read functions do the
talking (GraphGateway, the Exchange runners, `connector_consent.consent_state`, `retention.location_names`,
`connector_readiness.role_name`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from m365archive.steps.catchall_account import USER_FIELDS  # the catch-all step reads the same fields
from m365archive.steps.connector_consent import consent_state
from m365archive.steps.connector_readiness import group_id, role_name
from m365archive.steps.retention import hold_duration, location_names
from m365archive.tenant.exchange import Cmdlet, has_archive
from m365archive.tenant.session import TenantSession
from m365archive.wellknown import CONNECTOR_APP_ID

SP_FIELDS = ["id", "appId", "displayName", "servicePrincipalType"]
PAGE_USERS = 999
PAGE_MAILBOXES = 1000
# Mailboxes whose FullAccess grants are read: the configured catch-all, and hidden user mailboxes (a catch-all
# is hidden from address lists), at most this many (each is one Get-MailboxPermission).
PERMISSION_CANDIDATES = 100


@dataclass
class ReadScope:
    """What besides every licensed user and mailbox the reader must read: the names a config refers to."""

    catchall: str | None = None
    principals: list[str] = field(default_factory=list)  # reviewers, role-group member, exclusions: users to find
    groups: list[str] = field(default_factory=list)  # group object ids (users.groups), read with their members
    app_ids: list[str] = field(default_factory=lambda: [CONNECTOR_APP_ID])  # service principals, with grants


def scope_of(config: Any) -> ReadScope:
    """The ReadScope of a Config (duck-typed: the reader needs only these fields)."""
    scope = ReadScope()
    if config.catchall is not None:
        scope.catchall = config.catchall.upn
        scope.principals += [p.user for p in config.catchall.full_access]
    if config.connector.role_group_member:
        scope.principals.append(config.connector.role_group_member)
    scope.principals += list(config.connector.legacy_catchall)
    if config.users.scope == "groups":
        scope.groups = list(config.users.groups)
    if config.connector.partner_app_id:
        scope.app_ids.append(config.connector.partner_app_id)
    return scope


def user_record(user: dict[str, Any]) -> dict[str, Any]:
    licences = user.get("assignedLicenses") or []
    return {
        "type": "user",
        "id": str(user.get("id") or ""),
        "upn": str(user.get("userPrincipalName") or ""),
        "display_name": str(user.get("displayName") or ""),
        "usage_location": user.get("usageLocation"),
        "account_enabled": user.get("accountEnabled") is not False,
        "synced": bool(user.get("onPremisesSyncEnabled")),
        "licenses": [str(lic.get("skuId")) for lic in licences if lic.get("skuId")],
        "disabled_plans": {
            str(lic["skuId"]): [str(p) for p in lic.get("disabledPlans") or []]
            for lic in licences
            if lic.get("skuId") and lic.get("disabledPlans")
        },
    }


def _strings(value: Any) -> list[str] | None:
    if value is None:
        return None
    return sorted(str(v) for v in (value if isinstance(value, list) else [value]))


def mailbox_record(mbx: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "mailbox",
        "user_id": str(mbx.get("ExternalDirectoryObjectId") or ""),
        "recipient_type_details": str(mbx.get("RecipientTypeDetails") or "UserMailbox"),
        "hidden": bool(mbx.get("HiddenFromAddressListsEnabled")),
        "archive": has_archive(mbx),  # ArchiveGuid, never ArchiveStatus (can read None for an active archive)
        "auto_expanding_archive": bool(mbx.get("AutoExpandingArchiveEnabled")),
        "litigation_hold": bool(mbx.get("LitigationHoldEnabled")),
        "litigation_hold_duration": hold_duration(mbx.get("LitigationHoldDuration")),
        "audit_enabled": bool(mbx.get("AuditEnabled")),
        "audit_owner": _strings(mbx.get("AuditOwner")),
        "audit_delegate": _strings(mbx.get("AuditDelegate")),
        "audit_admin": _strings(mbx.get("AuditAdmin")),
        "default_audit_set": _strings(mbx.get("DefaultAuditSet")),
        "dir_synced": bool(mbx.get("IsDirSynced")),
    }


def _rights(perm: dict[str, Any]) -> list[str]:
    rights = perm.get("AccessRights") or []
    return [str(r) for r in (rights if isinstance(rights, list) else [rights])]


def _raise(outcome: Any) -> None:
    if outcome.error is not None:
        raise outcome.error


class TenantReader:
    """Reads one tenant through a TenantSession. `records()` is the stream; nothing is written."""

    def __init__(self, session: TenantSession, scope: ReadScope, *, progress: Callable[[str], None]) -> None:
        self.session = session
        self.scope = scope
        self.progress = progress
        self._users: set[str] = set()  # object ids of the users already yielded
        self._upns: set[str] = set()  # their UPNs, lower case
        self.candidates: list[str] = []  # UPNs of hidden user mailboxes (catch-all candidates)
        self.candidates_capped = False

    async def records(self) -> AsyncIterator[dict[str, Any]]:
        e = self.session.endpoints
        graph = self.session.graph
        yield {"type": "tenant", "id": e.tenant_id, "domain": e.domain, "cloud": e.cloud}
        for name in await graph.verified_domains():
            yield {"type": "domain", "name": name}
        for sku in await graph.subscribed_skus():
            yield {
                "type": "sku",
                "sku_id": str(sku.get("skuId")),
                "part_number": str(sku.get("skuPartNumber")),
                "enabled": int((sku.get("prepaidUnits") or {}).get("enabled", 0)),
                "consumed": int(sku.get("consumedUnits", 0)),
                "service_plans": [
                    [str(p.get("servicePlanId")), str(p.get("servicePlanName"))] for p in sku.get("servicePlans") or []
                ],
            }
        async for record in self._licensed_users():
            yield record
        async for record in self._mailboxes():
            yield record
        async for record in self._role_assignments():
            yield record
        wanted = [*self.scope.principals, *([self.scope.catchall] if self.scope.catchall else [])]
        if self.session.operator and not self.session.app_only:
            wanted.append(self.session.operator)
        async for record in self._users_by_name(wanted):
            yield record
        async for record in self._permissions():
            yield record
        async for record in self._groups():
            yield record
        async for record in self._role_groups():
            yield record
        async for record in self._retention_policies():
            yield record
        async for record in self._service_principals():
            yield record
        org = await self.session.exchange.invoke(Cmdlet("Get-OrganizationConfig"))
        _raise(org)
        first = org.objects[0] if org.objects else {}
        yield {
            "type": "org_config",
            "AuditDisabled": bool(first.get("AuditDisabled")),
            "AutoExpandingArchiveEnabled": bool(first.get("AutoExpandingArchiveEnabled")),
        }
        audit = await self.session.exchange.invoke(Cmdlet("Get-AdminAuditLogConfig"))
        _raise(audit)
        unified = bool(audit.objects and audit.objects[0].get("UnifiedAuditLogIngestionEnabled"))
        yield {"type": "admin_audit_log_config", "UnifiedAuditLogIngestionEnabled": unified}
        if self.session.has_onprem:
            async for record in self._remote_mailboxes():
                yield record

    async def _licensed_users(self) -> AsyncIterator[dict[str, Any]]:
        pages = 0
        async for page in self.session.graph.iter_users(
            select=USER_FIELDS, filter="assignedLicenses/$count ne 0", page_size=PAGE_USERS, eventual=True
        ):
            pages += 1
            self.progress(f"read {len(self._users) + len(page):,} licensed users")
            for user in page:
                record = user_record(user)
                self._users.add(record["id"])
                self._upns.add(record["upn"].lower())
                yield record

    async def _users_by_name(self, keys: list[str]) -> AsyncIterator[dict[str, Any]]:
        """Users the config or the tenant names that the licensed-user pages did not hold (reviewers without
        a licence, the operator, role holders). A key that is no user (a group, an app) yields nothing."""
        for key in dict.fromkeys(k.lower() for k in keys if k):
            if key in self._users or key in self._upns:
                continue
            user = await self.session.graph.get_user(key, USER_FIELDS)
            if user is None:
                continue
            record = user_record(user)
            if record["id"] in self._users:
                continue
            self._users.add(record["id"])
            self._upns.add(record["upn"].lower())
            yield record

    async def _mailboxes(self) -> AsyncIterator[dict[str, Any]]:
        catchall = (self.scope.catchall or "").lower()
        count = 0
        async for page in self.session.exchange.pages(
            Cmdlet("Get-Mailbox", {"ResultSize": "Unlimited"}), PAGE_MAILBOXES
        ):
            count += len(page)
            self.progress(f"read {count:,} mailboxes")
            for mbx in page:
                record = mailbox_record(mbx)
                upn = str(mbx.get("UserPrincipalName") or "")
                hidden_user = record["hidden"] and record["recipient_type_details"] == "UserMailbox"
                if upn and (upn.lower() == catchall or hidden_user):
                    if upn.lower() == catchall or len(self.candidates) < PERMISSION_CANDIDATES:
                        self.candidates.append(upn)
                    else:
                        self.candidates_capped = True
                yield record

    async def _permissions(self) -> AsyncIterator[dict[str, Any]]:
        if not self.candidates:
            return
        outcomes = await self.session.exchange.invoke_many(
            [Cmdlet("Get-MailboxPermission", {"Identity": upn}) for upn in self.candidates]
        )
        trustees: list[str] = []
        for upn, outcome in zip(self.candidates, outcomes, strict=True):
            if outcome.error is not None:
                if outcome.error.not_found:
                    continue
                raise outcome.error
            owner = await self._user_id(upn)
            for perm in outcome.objects:
                user = str(perm.get("User") or "")
                if not user or "\\SELF" in user.upper():
                    continue
                trustees.append(user)
                yield {
                    "type": "mailbox_permission",
                    "mailbox": owner,
                    "user": user,
                    "access_rights": _rights(perm),
                    "deny": bool(perm.get("Deny")),
                    "inherited": bool(perm.get("IsInherited")),
                }
        async for record in self._users_by_name([t for t in trustees if "@" in t]):
            yield record

    async def _user_id(self, upn: str) -> str:
        user = await self.session.graph.get_user(upn, ["id"])
        return str((user or {}).get("id") or "")

    async def _role_assignments(self) -> AsyncIterator[dict[str, Any]]:
        assignments = await self.session.graph.role_assignments()
        principals: list[str] = []
        for a in assignments:
            principals.append(str(a.get("principalId")))
            yield {
                "type": "role_assignment",
                "id": str(a.get("id")),
                "principal_id": str(a.get("principalId")),
                "role_definition_id": str(a.get("roleDefinitionId")),
                "scope": str(a.get("directoryScopeId") or "/"),
            }
        async for record in self._users_by_name(principals):
            yield record

    async def _groups(self) -> AsyncIterator[dict[str, Any]]:
        for gid in self.scope.groups:
            yield {"type": "group", "id": gid, "display_name": ""}  # names are not needed; ids are the config's
            async for page in self.session.graph.transitive_member_users(gid, ["id"]):
                yield {"type": "group_members", "group_id": gid, "members": [str(u["id"]) for u in page]}

    async def _role_groups(self) -> AsyncIterator[dict[str, Any]]:
        groups = await self.session.compliance.invoke(Cmdlet("Get-RoleGroup"))
        _raise(groups)
        members = await self.session.compliance.invoke_many(
            [Cmdlet("Get-RoleGroupMember", {"Identity": group_id(g)}) for g in groups.objects]
        )
        for group, outcome in zip(groups.objects, members, strict=True):
            _raise(outcome)
            names = [
                str(m.get("WindowsLiveID") or m.get("PrimarySmtpAddress") or m.get("Identity") or "")
                for m in outcome.objects
            ]
            yield {
                "type": "role_group",
                "name": str(group.get("Name")),
                "roles": [role_name(r) for r in group.get("Roles") or []],
                "members": [n for n in names if n],
            }

    async def _retention_policies(self) -> AsyncIterator[dict[str, Any]]:
        policies = await self.session.compliance.invoke(
            Cmdlet("Get-RetentionCompliancePolicy", {"DistributionDetail": True})
        )
        _raise(policies)
        rules = await self.session.compliance.invoke(Cmdlet("Get-RetentionComplianceRule"))
        _raise(rules)
        by_policy: dict[str, list[dict[str, Any]]] = {}
        for rule in rules.objects:
            by_policy.setdefault(str(rule.get("Policy") or "").lower(), []).append(
                {
                    "duration": str(rule.get("RetentionDuration") or "Unlimited"),
                    "action": str(rule.get("RetentionComplianceAction") or "Keep"),
                }
            )
        for policy in policies.objects:
            keys = {str(policy.get(k) or "").lower() for k in ("Guid", "Identity", "Name")} - {""}
            yield {
                "type": "retention_policy",
                "name": str(policy.get("Name")),
                "enabled": policy.get("Enabled") is not False,
                "distribution_status": str(policy.get("DistributionStatus") or "Success"),
                "locations": sorted(location_names(policy)),
                "rules": [r for k in sorted(keys) for r in by_policy.get(k, [])],
            }

    async def _service_principals(self) -> AsyncIterator[dict[str, Any]]:
        graph = self.session.graph
        resources: set[str] = set()
        seen: set[str] = set()
        known: dict[str, dict[str, Any]] = {}  # resources consent_state already read
        for app_id in dict.fromkeys(a.lower() for a in self.scope.app_ids):
            if app_id == CONNECTOR_APP_ID:
                state = await consent_state(self.session)
                sp, grants, roles = state.service_principal, state.oauth2_permission_grants, state.app_role_assignments
                known.update(state.resources)
            else:
                sp = await graph.service_principal_by_app_id(app_id)
                grants = await graph.oauth2_permission_grants(str(sp["id"])) if sp else []
                roles = await graph.app_role_assignments(str(sp["id"])) if sp else []
            if sp is None:
                continue
            seen.add(str(sp["id"]))
            yield _sp_record(sp)
            for g in grants:
                resources.add(str(g.get("resourceId")))
                yield {
                    "type": "oauth2_grant",
                    "id": str(g.get("id")),
                    "client_id": str(g.get("clientId")),
                    "resource_id": str(g.get("resourceId")),
                    "consent_type": str(g.get("consentType") or "AllPrincipals"),
                    "scope": str(g.get("scope") or ""),
                    "principal_id": g.get("principalId"),
                }
            for a in roles:
                resources.add(str(a.get("resourceId")))
                yield {
                    "type": "app_role_assignment",
                    "id": str(a.get("id")),
                    "principal_id": str(a.get("principalId")),
                    "resource_id": str(a.get("resourceId")),
                    "app_role_id": str(a.get("appRoleId")),
                }
        for rid in sorted(resources - seen):
            resource = known.get(rid) or await graph.service_principal(rid, SP_FIELDS)
            if resource is not None:
                yield _sp_record(resource)

    async def _remote_mailboxes(self) -> AsyncIterator[dict[str, Any]]:
        onprem = self.session.onprem
        assert onprem is not None
        async for page in onprem.pages(Cmdlet("Get-RemoteMailbox", {"ResultSize": "Unlimited"}), PAGE_MAILBOXES):
            for rm in page:
                upn = str(rm.get("UserPrincipalName") or rm.get("Identity") or "")
                yield {
                    "type": "remote_mailbox",
                    "upn": upn,
                    "archive_state": str(rm.get("ArchiveState") or "None"),
                }


def _sp_record(sp: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "service_principal",
        "id": str(sp.get("id")),
        "app_id": str(sp.get("appId")),
        "display_name": str(sp.get("displayName") or ""),
        "sp_type": str(sp.get("servicePrincipalType") or "Application"),
    }
