"""The captured-tenant scenario format: JSON lines, written by `m365archive capture`, served by the simulator.

One JSON object a line. The first line is the header (`format`, `format_version`, the tenant, the signed-in
user, whether names are pseudonymised); every later line is one record with a `type` (RECORD_FIELDS lists
each type's fields). Records stream: a writer never holds the tenant, and the simulator's loader reads one
line at a time, so 100,000 mailboxes fit in bounded memory.

Pseudonymising (`Pseudonymizer`) replaces names, UPNs, domains and object ids by keyed hashes (HMAC-SHA256
with a key made for one capture and never written): the same value always gives the same pseudonym within a
capture, so relationships hold (a mailbox's user, a grant's reviewer, a group's members), and nothing can be
reversed without the key. Microsoft's own identifiers (SKU, service plan, role template and first-party app
ids) and the tool's own names are kept: they identify nothing about the tenant.

No record type has a field for a password, secret, token or key: there is nowhere to put one.

This module is shared by the product (capture) and the simulator (its loader), so it imports nothing of ours.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import uuid
from collections.abc import Iterator
from typing import IO, Any

FORMAT = "m365archive-scenario"
FORMAT_VERSION = 1
SUFFIX = ".jsonl"

# Each record type and its fields, with what pseudonymising does to each: "id" (object id -> GUID-shaped
# hash), "upn", "name" (display name), "domain", "policy" (retention policy name), "role_group", "account"
# (DOMAIN\\user), "keep"; a list of kinds ("[upn]") applies to each item of a list.
RECORD_FIELDS: dict[str, dict[str, str]] = {
    "domain": {"name": "domain"},
    "sku": {"sku_id": "keep", "part_number": "keep", "enabled": "keep", "consumed": "keep", "service_plans": "keep"},
    "user": {
        "id": "id",
        "upn": "upn",
        "display_name": "name",
        "usage_location": "keep",
        "account_enabled": "keep",
        "synced": "keep",
        "licenses": "keep",
        "disabled_plans": "keep",
    },
    "mailbox": {
        "user_id": "id",
        "recipient_type_details": "keep",
        "hidden": "keep",
        "archive": "keep",
        "auto_expanding_archive": "keep",
        "litigation_hold": "keep",
        "litigation_hold_duration": "keep",
        "audit_enabled": "keep",
        "audit_owner": "keep",
        "audit_delegate": "keep",
        "audit_admin": "keep",
        "default_audit_set": "keep",
        "dir_synced": "keep",
    },
    "mailbox_permission": {
        "mailbox": "id",
        "user": "upn",
        "access_rights": "keep",
        "deny": "keep",
        "inherited": "keep",
    },
    "role_assignment": {"id": "id", "principal_id": "id", "role_definition_id": "keep", "scope": "keep"},
    "group": {"id": "id", "display_name": "name"},
    "group_members": {"group_id": "id", "members": "[id]"},
    "role_group": {"name": "role_group", "roles": "keep", "members": "[upn]"},
    "retention_policy": {
        "name": "policy",
        "enabled": "keep",
        "distribution_status": "keep",
        "locations": "[upn]",
        "rules": "keep",  # [{"duration", "action"}]: no names
    },
    "service_principal": {"id": "id", "app_id": "keep", "display_name": "keep", "sp_type": "keep"},
    "oauth2_grant": {
        "id": "id",
        "client_id": "id",
        "resource_id": "id",
        "consent_type": "keep",
        "scope": "keep",
        "principal_id": "id",
    },
    "app_role_assignment": {"id": "id", "principal_id": "id", "resource_id": "id", "app_role_id": "keep"},
    "org_config": {"AuditDisabled": "keep", "AutoExpandingArchiveEnabled": "keep"},
    "admin_audit_log_config": {"UnifiedAuditLogIngestionEnabled": "keep"},
    "remote_mailbox": {"upn": "upn", "archive_state": "keep"},
}
HEADER_TENANT = {"id": "id", "domain": "domain", "cloud": "keep", "display_name": "name"}

# Names that are Microsoft's or the tool's, not the tenant's: kept as they are.
BUILT_IN_ROLE_GROUPS = frozenset(
    {
        "OrganizationManagement",
        "ComplianceAdministrator",
        "ComplianceDataAdministrator",
        "eDiscoveryManager",
        "RecordsManagement",
        "SecurityAdministrator",
        "SecurityReader",
        "GlobalReader",
        "Reviewer",
        "DataInvestigator",
        "CommunicationComplianceAdministrators",
        "InsiderRiskManagement",
        "PrivacyManagement",
    }
)
TOOL_NAME_PREFIX = "m365archive "  # names this tool makes (its default retention policy)
INITIAL_DOMAIN_SUFFIXES = (".onmicrosoft.com", ".onmicrosoft.us", ".partner.onmschina.cn")
SYSTEM_TRUSTEE = re.compile(r"^(NT AUTHORITY|S-1-)", re.IGNORECASE)  # SELF and SIDs: Exchange's, not a person's
_NUMBERED = re.compile(r"^(.*\S) (\d+)$")  # "Third-party data 2": the tool's numbered policies keep the number


class FormatError(ValueError):
    """Not a captured scenario of a version this tool reads; the message says which line and why."""


def header(tenant: dict[str, Any], *, signed_in_user: str | None, pseudonymised: bool, **extra: Any) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tenant": tenant,
        "signed_in_user": signed_in_user,
        "pseudonymised": pseudonymised,
        **extra,
    }


def dump(record: dict[str, Any]) -> str:
    """One line of the format (compact, sorted keys: the same tenant captures to the same bytes)."""
    return json.dumps(record, separators=(",", ":"), sort_keys=True, ensure_ascii=False) + "\n"


def is_captured(first_line: str) -> bool:
    try:
        data = json.loads(first_line)
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("format") == FORMAT


def read(stream: IO[str], origin: str = "scenario") -> tuple[dict[str, Any], Iterator[dict[str, Any]]]:
    """The header, and an iterator over the records (one line at a time). FormatError names the line."""
    first = stream.readline()
    try:
        head = json.loads(first)
    except ValueError:
        raise FormatError(f"{origin}: line 1 is not JSON (a captured scenario starts with its header)") from None
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        raise FormatError(f"{origin}: line 1 is not a {FORMAT} header")
    version = head.get("format_version")
    if version != FORMAT_VERSION:
        raise FormatError(
            f"{origin}: format_version {version!r}; this version of m365archive reads {FORMAT_VERSION} "
            "(capture the tenant again with it)"
        )
    if not isinstance(head.get("tenant"), dict) or not head["tenant"].get("id"):
        raise FormatError(f"{origin}: the header has no tenant id")
    return head, _records(stream, origin)


def _records(stream: IO[str], origin: str) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(stream, start=2):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise FormatError(f"{origin}: line {number} is not JSON") from None
        kind = record.get("type") if isinstance(record, dict) else None
        fields = RECORD_FIELDS.get(str(kind))
        if fields is None:
            raise FormatError(f"{origin}: line {number}: unknown record type {kind!r}")
        unknown = sorted(set(record) - set(fields) - {"type"})
        if unknown:
            raise FormatError(f"{origin}: line {number}: {kind} has unknown field(s) {', '.join(unknown)}")
        yield record


class Pseudonymizer:
    """Stable keyed pseudonyms: HMAC-SHA256 under a key made here (random unless given) and never written.

    Case never matters (Entra ID and Exchange compare names without case), so values are hashed lower-case.
    `remember=True` keeps every original -> pseudonym pair (`seen`) for tests that compare plans."""

    def __init__(self, key: bytes | None = None, *, remember: bool = False) -> None:
        self._key = key if key is not None else secrets.token_bytes(32)
        self.seen: dict[str, str] | None = {} if remember else None

    def _hex(self, kind: str, value: str, length: int = 10) -> str:
        digest = hmac.new(self._key, f"{kind}\0{value.strip().lower()}".encode(), hashlib.sha256).hexdigest()
        return digest[:length]

    def _note(self, value: str, pseudonym: str) -> str:
        if self.seen is not None and value:
            self.seen[value] = pseudonym
        return pseudonym

    def id(self, value: str) -> str:
        if not value:
            return value
        raw = hmac.new(self._key, f"id\0{value.strip().lower()}".encode(), hashlib.sha256).digest()[:16]
        return self._note(value, str(uuid.UUID(bytes=raw, version=4)))

    def domain(self, value: str) -> str:
        low = value.strip().lower()
        suffix = next((s for s in INITIAL_DOMAIN_SUFFIXES if low.endswith(s)), ".example.com")
        return self._note(value, f"d{self._hex('domain', low, 8)}{suffix}")

    def upn(self, value: str) -> str:
        _local, at, domain = value.rpartition("@")
        if not at:
            return value if SYSTEM_TRUSTEE.match(value) else self.name(value)
        return self._note(value, f"u{self._hex('upn', value, 12)}@{self.domain(domain)}")

    def name(self, value: str) -> str:
        if not value:
            return value
        return self._note(value, f"Name {self._hex('name', value)}")

    def policy(self, value: str) -> str:
        if value.startswith(TOOL_NAME_PREFIX):
            return value
        numbered = _NUMBERED.match(value)
        if numbered:
            return self._note(value, f"{self.policy(numbered.group(1))} {numbered.group(2)}")
        return self._note(value, f"Policy {self._hex('policy', value)}")

    def role_group(self, value: str) -> str:
        if value in BUILT_IN_ROLE_GROUPS:
            return value
        return self._note(value, f"RoleGroup{self._hex('role_group', value)}")

    def account(self, value: str) -> str:
        _, slash, user = value.rpartition("\\")
        return self._note(value, f"TWIN\\u{self._hex('account', value, 10)}" if slash or user else value)

    def apply(self, kind: str, value: Any) -> Any:
        if value is None or kind == "keep":
            return value
        if kind.startswith("["):
            inner = kind[1:-1]
            return [self.apply(inner, v) for v in value]
        fn = getattr(self, kind.replace("-", "_"))
        return fn(str(value))

    def record(self, record: dict[str, Any]) -> dict[str, Any]:
        fields = RECORD_FIELDS[record["type"]]
        return {k: (v if k == "type" else self.apply(fields[k], v)) for k, v in record.items()}

    def tenant(self, tenant: dict[str, Any]) -> dict[str, Any]:
        return {k: self.apply(HEADER_TENANT.get(k, "keep"), v) for k, v in tenant.items()}
