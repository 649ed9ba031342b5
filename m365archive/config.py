"""The desired state: m365archive.toml (plus flags), validated into one model.

Validation never sends a request and reports one line per bad field.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# Entra ID's user name rules ("Password policies and account restrictions in Microsoft Entra ID"):
# A-Z a-z 0-9 ' . - _ ! # ^ ~ before the @, at most 64 of them, no leading dot and no dot right
# before the @; at most 48 characters after it; 113 in all.
UPN_LOCAL = re.compile(r"^[A-Za-z0-9'._!#^~-]+$")
DOMAIN = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9-]{2,63}$")
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
DISPLAY_NAME_MAX = 256  # Entra ID's displayName limit
HOLD_DAYS_MAX = 36_500  # a hundred years: Litigation Hold durations beyond are typos, not policy
# ISO 3166-1 alpha-2 (officially assigned codes): Graph's usageLocation is one of these.
COUNTRIES = frozenset(
    re.findall(
        r"[A-Z]{2}",
        """AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS
    BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG
    EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR
    HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR
    LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG
    NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE
    SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA
    UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW""",
    )
)
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


def upn_problem(value: str) -> str | None:
    """Why `value` is not a user principal name Entra ID accepts, or None when it is one."""
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain:
        return f"{value!r} is not a user principal name (name@domain)"
    if len(local) > 64:
        return f"the part before @ is {len(local)} characters; Entra ID allows at most 64"
    if not UPN_LOCAL.match(local):
        bad = sorted({c for c in local if not UPN_LOCAL.match(c)})
        return (
            f"{value!r} contains {' '.join(repr(c) for c in bad)}; before the @ Entra ID allows only "
            "letters A-Z, digits and ' . - _ ! # ^ ~"
        )
    if local.startswith(".") or local.endswith("."):
        return f"{value!r}: the part before @ can't start or end with a dot"
    if len(domain) > 48:
        return f"the part after @ is {len(domain)} characters; Entra ID allows at most 48"
    if not DOMAIN.match(domain):
        return f"{value!r}: {domain!r} is not a domain name"
    return None


def _upn(value: str) -> str:
    problem = upn_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _guid(value: str, what: str) -> str:
    if not GUID.match(value):
        raise ValueError(f"{value!r} is not {what} (a GUID such as 00000000-0000-0000-0000-000000000000)")
    return value


class Strict(BaseModel):
    # strict: TOML has real booleans and numbers, so `archive = "yes"` or `duration_days = true` is a mistake
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, str_min_length=1)


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
        "browser",
        "device-code",
        "certificate",
        "secret",
        "managed-identity",
        "azure-cli",
        "environment",
        "azure-pipelines",
        "github-oidc",
    ] = "device-code"
    client_id: str | None = None
    certificate: str | None = None
    managed_identity_client_id: str | None = None
    service_connection_id: str | None = None  # azure-pipelines: the service connection's id
    allow_unencrypted_token_cache: bool = False

    @field_validator("client_id", "managed_identity_client_id")
    @classmethod
    def _ids(cls, value: str | None) -> str | None:
        return None if value is None else _guid(value, "an application (client) id")

    @field_validator("service_connection_id")
    @classmethod
    def _connection(cls, value: str | None) -> str | None:
        return None if value is None else _guid(value, "a service connection id")

    @model_validator(mode="after")
    def _federated(self) -> AuthConfig:
        # Federated sign-in from CI: the app registration is always named; Azure DevOps also names its connection.
        if self.method in ("azure-pipelines", "github-oidc") and not self.client_id:
            raise ValueError(f'method = "{self.method}" needs client_id = "<your app registration\'s client id>"')
        if self.method == "azure-pipelines" and not self.service_connection_id:
            raise ValueError(
                'method = "azure-pipelines" needs service_connection_id = "<the service connection\'s id>"'
            )
        return self


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
    # The documented procedure's Step 2 makes the catch-all an Exchange Administrator; false leaves the role
    # alone (a tenant that chose not to grant it, as `init --from-tenant` finds it).
    exchange_admin_role: bool = True

    @field_validator("upn")
    @classmethod
    def _catchall(cls, value: str) -> str:
        return _upn(value)

    @field_validator("display_name")
    @classmethod
    def _display_name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        if len(value) > DISPLAY_NAME_MAX:
            raise ValueError(f"is {len(value)} characters; Entra ID allows at most {DISPLAY_NAME_MAX}")
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError("must be one line without control characters")
        return value

    @field_validator("usage_location")
    @classmethod
    def _location(cls, value: str) -> str:
        if value.upper() not in COUNTRIES:
            raise ValueError(f"{value!r} is not an ISO 3166-1 two-letter country code (e.g. US, GB, DE)")
        return value.upper()

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

    @field_validator("duration_days", mode="before")
    @classmethod
    def _days(cls, value: Any) -> Any:
        wanted = f'must be a number of days from 1 to {HOLD_DAYS_MAX:,} or "unlimited"'
        if isinstance(value, str) and value.strip().lower() == "unlimited":
            return "unlimited"
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{wanted}, not {toml_repr(value)}")
        if not 1 <= value <= HOLD_DAYS_MAX:
            raise ValueError(f"{wanted}, not {value}")
        return value

    @model_validator(mode="after")
    def _policy(self) -> HoldConfig:
        if self.kind == "retention-policy" and not self.retention_policy:
            raise ValueError('kind = "retention-policy" needs retention_policy = "<policy name>"')
        return self

    @property
    def exchange_duration(self) -> str:
        return "Unlimited" if self.duration_days == "unlimited" else str(self.duration_days)


# Microsoft's default mailbox audit actions in Exchange Online today (exchange-facts `audit_actions`;
# MailItemsAccessed and Send are E5-only). Informational: "Microsoft's defaults" in the config means
# DefaultAuditSet, which Microsoft keeps current, not these lists.
MICROSOFT_AUDIT_DEFAULTS: dict[str, list[str]] = {
    "owner": sorted(
        AUDIT_ACTIONS["owner"] - {"MailItemsAccessed", "SearchQueryInitiated", "MailboxLogin", "Move", "Create", "Send"}
    ),
    "delegate": sorted(AUDIT_ACTIONS["delegate"] - {"MailItemsAccessed", "FolderBind", "Move"}),
    "admin": sorted(AUDIT_ACTIONS["admin"] - {"MailItemsAccessed", "FolderBind", "Move", "Copy"}),
}


class AuditConfig(Strict):
    enabled: bool = True
    # None (the default): Microsoft's defaults, i.e. the logon type stays in DefaultAuditSet. A list takes
    # that logon type off Microsoft-managed defaults (exchange-facts `audit_actions`).
    owner: list[str] | None = None
    delegate: list[str] | None = None
    admin: list[str] | None = None

    @model_validator(mode="after")
    def _actions(self) -> AuditConfig:
        for kind in ("owner", "delegate", "admin"):
            unknown = sorted(set(getattr(self, kind) or []) - AUDIT_ACTIONS[kind])
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

    @field_validator("groups")
    @classmethod
    def _groups(cls, value: list[str]) -> list[str]:
        return [_guid(v, "a group object id") for v in value]

    @field_validator("exclude")
    @classmethod
    def _exclude(cls, value: list[str]) -> list[str]:
        return [_upn(v) for v in value]

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
        return None if value is None else _guid(value, "an application (client) id")

    @field_validator("role_group_member")
    @classmethod
    def _member(cls, value: str | None) -> str | None:
        return None if value is None else _upn(value)

    @field_validator("legacy_catchall")
    @classmethod
    def _legacy(cls, value: list[str]) -> list[str]:
        return [_upn(v) for v in value]


DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([dhw])\s*$", re.IGNORECASE)
DURATION_UNITS = {"h": 1 / 24, "d": 1.0, "w": 7.0}


def parse_days(value: str) -> float:
    """ "3d", "36h", "2w" -> days; a ValueError saying what is expected otherwise."""
    match = DURATION.match(value)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"{value!r} is not a duration such as 3d, 36h or 2w")
    return float(match.group(1)) * DURATION_UNITS[match.group(2).lower()]


class VerifyConfig(Strict):
    """`m365archive verify`: which sources' arrivals to check, and after how long a mailbox counts as silent."""

    sources: list[str] = Field(default=[], description="connector names; default: connector.source")
    silent_after: str = "3d"

    @field_validator("silent_after")
    @classmethod
    def _silent(cls, value: str) -> str:
        parse_days(value)
        return value


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


class AcceptedRisk(Strict):
    """A finding the organization accepts, by its id (shown in every report), with the reason."""

    id: str = Field(min_length=1, description="the finding's id, as the report shows it")
    reason: str = Field(min_length=1, description="why it is accepted (shown next to the finding)")


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
    verify: VerifyConfig = VerifyConfig()
    mailbox_wait_timeout: Annotated[float, Field(gt=0)] = 1800.0
    accepted_risks: list[AcceptedRisk] = []

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
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file (create one with `m365archive init`)"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: {exc.strerror}"]) from None
    try:
        text = decode_text(raw)
    except ValueError as exc:
        raise ConfigError([f"{path}: {exc}"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    return parse_config(data, str(path))


def decode_text(raw: bytes) -> str:
    """UTF-8 text, with or without a byte-order mark; anything else is a ValueError saying where."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ValueError(
            f"not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); save the file as UTF-8"
        ) from None


def toml_repr(value: Any) -> str:
    """A value as it was written in TOML: true/false, numbers bare, text quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return str(value)


_PLAIN = {
    "bool_type": "must be true or false (without quotes)",
    "int_type": "must be a whole number (without quotes)",
    "float_type": "must be a number (without quotes)",
    "string_type": "must be text in quotes",
    "list_type": 'must be a list, e.g. ["a", "b"]',
    "model_type": "must be a table",
    "dict_type": "must be a table",
    "missing": "is required",
    "int_from_float": "must be a whole number",
    "string_too_short": "must not be empty",
}


def _plain(err: Any) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    value = err.get("input")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "literal_error":
        return f"must be one of {ctx['expected']}, not {toml_repr(value)}"
    if kind in _PLAIN:
        return _PLAIN[kind] if kind in ("missing", "string_too_short") else f"{_PLAIN[kind]}, not {toml_repr(value)}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        words = {"greater_than_equal": "at least", "greater_than": "more than", "less_than_equal": "at most"}
        return f"must be {words.get(kind, 'less than')} {next(iter(ctx.values()))}, not {toml_repr(value)}"
    return str(err["msg"]).removeprefix("Value error, ")


def _where(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part + 1}]"  # people count list items from 1
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def parse_config(data: dict[str, Any], origin: str = "config") -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        lines: list[str] = []
        seen: set[str] = set()
        for err in exc.errors():
            # a union (int | "unlimited") reports once per branch: keep the field's first line only
            loc = tuple(
                p
                for p in err["loc"]
                if not (isinstance(p, str) and (p.startswith(("literal[", "function-")) or p in ("int", "str")))
            )
            where = _where(loc)
            if where in seen:
                continue
            seen.add(where)
            lines.append(f"{origin}: {where}: {_plain(err)}")
        raise ConfigError(lines) from None
