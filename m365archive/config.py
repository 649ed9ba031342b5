"""The desired state: m365archive.toml (plus flags), validated into one model.

Validation never sends a request and reports one line per bad field.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

UPN = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
CLOUD_NAMES = ("global", "gcc", "gcc-high", "dod", "china")
AUDIT_ACTIONS = {
    "owner": {
        "ApplyRecord",
        "Create",
        "HardDelete",
        "MailboxLogin",
        "MailItemsAccessed",
        "Move",
        "MoveToDeletedItems",
        "SearchQueryInitiated",
        "Send",
        "SoftDelete",
        "Update",
        "UpdateCalendarDelegation",
        "UpdateFolderPermissions",
        "UpdateInboxRules",
    },
    "delegate": {
        "ApplyRecord",
        "Create",
        "FolderBind",
        "HardDelete",
        "MailItemsAccessed",
        "Move",
        "MoveToDeletedItems",
        "SendAs",
        "SendOnBehalf",
        "SoftDelete",
        "Update",
        "UpdateFolderPermissions",
        "UpdateInboxRules",
    },
    "admin": {
        "ApplyRecord",
        "Copy",
        "Create",
        "FolderBind",
        "HardDelete",
        "MailItemsAccessed",
        "Move",
        "MoveToDeletedItems",
        "SendAs",
        "SendOnBehalf",
        "SoftDelete",
        "Update",
        "UpdateCalendarDelegation",
        "UpdateFolderPermissions",
        "UpdateInboxRules",
    },
}


def _upn(value: str) -> str:
    if not UPN.match(value):
        raise ValueError(f"{value!r} is not a user principal name (name@domain)")
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TenantConfig(Strict):
    id: str = Field(description="tenant id (GUID) or its initial domain")
    domain: str | None = None
    cloud: Literal["global", "gcc", "gcc-high", "dod", "china"] = "global"

    @field_validator("id")
    @classmethod
    def _tenant(cls, value: str) -> str:
        if not (GUID.match(value) or re.match(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$", value)):
            raise ValueError(f"{value!r} is neither a tenant id (GUID) nor a domain")
        return value


class AuthConfig(Strict):
    method: Literal[
        "browser", "device-code", "certificate", "secret", "managed-identity", "azure-cli", "environment"
    ] = "device-code"
    client_id: str | None = None
    certificate: str | None = None
    managed_identity_client_id: str | None = None
    allow_unencrypted_token_cache: bool = False


class FullAccess(Strict):
    user: str
    automapping: bool = True

    @field_validator("user")
    @classmethod
    def _user(cls, value: str) -> str:
        return _upn(value)


class CatchallConfig(Strict):
    upn: str
    display_name: str = "Third-party data"
    usage_location: str = "US"
    license: str = Field("any", description="SKU part number or skuId, or 'any' for any SKU with Plan 2")
    hidden_from_address_lists: bool = True
    full_access: list[FullAccess] = []
    archive: bool = True
    auto_expanding_archive: bool = True

    @field_validator("upn")
    @classmethod
    def _catchall(cls, value: str) -> str:
        return _upn(value)

    @field_validator("usage_location")
    @classmethod
    def _location(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Z]{2}", value):
            raise ValueError(f"{value!r} is not a two-letter ISO country code (e.g. US)")
        return value

    @field_validator("full_access", mode="before")
    @classmethod
    def _principals(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"user": v} if isinstance(v, str) else v for v in value]
        return value


class HoldConfig(Strict):
    kind: Literal["litigation", "retention-policy", "none"] = "litigation"
    duration_days: int | Literal["unlimited"] = "unlimited"
    retention_policy: str | None = None

    @field_validator("duration_days")
    @classmethod
    def _days(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value <= 0:
            raise ValueError(f'must be a positive number of days or "unlimited", not {value}')
        return value

    @model_validator(mode="after")
    def _policy(self) -> HoldConfig:
        if self.kind == "retention-policy" and not self.retention_policy:
            raise ValueError('kind = "retention-policy" needs retention_policy = "<policy name>"')
        return self

    @property
    def exchange_duration(self) -> str:
        return "Unlimited" if self.duration_days == "unlimited" else str(self.duration_days)


class AuditConfig(Strict):
    enabled: bool = True
    owner: list[str] = sorted(
        AUDIT_ACTIONS["owner"] - {"MailItemsAccessed", "SearchQueryInitiated", "MailboxLogin", "Move", "Create", "Send"}
    )
    delegate: list[str] = sorted(AUDIT_ACTIONS["delegate"] - {"MailItemsAccessed", "FolderBind", "Move"})
    admin: list[str] = sorted(AUDIT_ACTIONS["admin"] - {"MailItemsAccessed", "FolderBind", "Move", "Copy"})

    @model_validator(mode="after")
    def _actions(self) -> AuditConfig:
        for kind in ("owner", "delegate", "admin"):
            unknown = sorted(set(getattr(self, kind)) - AUDIT_ACTIONS[kind])
            if unknown:
                raise ValueError(f"{kind}: unknown audit action(s) {', '.join(unknown)}")
        return self


class UsersConfig(Strict):
    scope: Literal["none", "all", "groups", "file"] = "none"
    groups: list[str] = Field(default=[], description="group object ids; transitive members are in scope")
    file: str | None = Field(default=None, description="a file of UPNs, one a line")
    exclude: list[str] = []
    archive: bool = True
    auto_expanding_archive: bool = False
    hold: bool = True
    max_concurrency: int = Field(default=8, ge=1, le=64)

    @model_validator(mode="after")
    def _scope(self) -> UsersConfig:
        if self.scope == "groups" and not self.groups:
            raise ValueError('scope = "groups" needs groups = ["<group id>", ...]')
        if self.scope == "file" and not self.file:
            raise ValueError('scope = "file" needs file = "<path to a file of UPNs>"')
        return self


class ConnectorConfig(Strict):
    """Purview data connector preparation (procedure = "purview-connector")."""

    source: str = "bloomberg-message"
    partner_app_id: str | None = None
    role_group: str = "ComplianceAdministrator"
    role_group_member: str | None = None
    add_role_group_member: bool = False
    import_scope: Literal["all", "litigation-hold-only"] = "all"
    mapping_file: str | None = None
    legacy_catchall: list[str] = Field(
        default=[], description="catch-all accounts of the retired route that `legacy cleanup` may act on"
    )

    @field_validator("partner_app_id")
    @classmethod
    def _app_id(cls, value: str | None) -> str | None:
        if value is not None and not GUID.match(value):
            raise ValueError(f"{value!r} is not an application (client) id (GUID)")
        return value

    @field_validator("role_group_member")
    @classmethod
    def _member(cls, value: str | None) -> str | None:
        return None if value is None else _upn(value)

    @field_validator("legacy_catchall")
    @classmethod
    def _legacy(cls, value: list[str]) -> list[str]:
        return [_upn(v) for v in value]


class OnPremConfig(Strict):
    server: str
    auth: Literal["kerberos", "negotiate", "ntlm", "basic"] = "kerberos"
    port: int | None = None
    ssl: bool = False
    cert_validation: bool = True
    username: str | None = None
    path: str = "PowerShell"
    sync_timeout: float = 3600.0

    @model_validator(mode="after")
    def _basic(self) -> OnPremConfig:
        if self.auth == "basic" and not self.ssl:
            raise ValueError('auth = "basic" is only allowed with ssl = true')
        return self


class Config(Strict):
    procedure: Literal["partner-ews", "purview-connector"] = "partner-ews"
    partner: str | None = None
    tenant: TenantConfig
    auth: AuthConfig = AuthConfig()
    catchall: CatchallConfig | None = None
    hold: HoldConfig = HoldConfig()
    audit: AuditConfig = AuditConfig()
    users: UsersConfig = UsersConfig()
    connector: ConnectorConfig = ConnectorConfig()
    onprem: OnPremConfig | None = None
    mailbox_wait_timeout: Annotated[float, Field(gt=0)] = 1800.0

    @model_validator(mode="after")
    def _procedure(self) -> Config:
        if self.procedure == "partner-ews" and self.catchall is None:
            raise ValueError('procedure "partner-ews" needs a [catchall] table')
        return self


class ConfigError(Exception):
    """Bad configuration: `lines` has one human line per problem."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines


def load_config(path: Path) -> Config:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file (create one with `m365archive init`)"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: {exc.strerror}"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    return parse_config(data, str(path))


def parse_config(data: dict[str, Any], origin: str = "config") -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "unknown key"
            elif err["type"] == "literal_error":
                message = f"must be one of {err['ctx']['expected']}, not {err['input']!r}"
            lines.append(f"{origin}: {where}: {message}")
        raise ConfigError(lines) from None
