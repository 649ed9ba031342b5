"""The commented m365archive.toml that `m365archive init` writes, one per procedure."""

from __future__ import annotations

import re

PROCEDURES = ("purview-connector", "partner-ews")
DEFAULT_PROCEDURE = "purview-connector"

_HEADER = """# m365archive desired state. Validate and preview with:
#   m365archive setup --dry-run --report plan.md
#
# NOTE: Microsoft retired EWS-based partner ingestion (the route "partner-ews" prepares for)
# on 2024-12-30: https://learn.microsoft.com/purview/archive-partner-third-party-data
# Every plan says so. Today's route is Microsoft Purview data connectors ("purview-connector").

# "purview-connector": preparation for Microsoft Purview data connectors (today's route).
# "partner-ews": the documented five-step procedure of the retired route (catch-all mailbox, user
# mailboxes, partner handoff, connector consent). `m365archive init --procedure partner-ews` writes it.
procedure = "{procedure}"

# The partner you work with (see `m365archive partners --source bloomberg`).
# partner = "Veritas"

"""

_TENANT_AUTH = """[tenant]
id = "{tenant_id}"              # tenant id (GUID) or initial domain (contoso.onmicrosoft.com)
domain = "{domain}"
cloud = "global"               # global | gcc | gcc-high | dod | china

[auth]
# browser | device-code | certificate | secret | managed-identity | azure-cli | environment
method = "device-code"
# client_id = "00000000-0000-0000-0000-000000000000"   # your app registration (app-only sign-in)
# certificate = "path/to/cert.pem"                     # for method = "certificate"
# A client secret is never read from this file or a flag: set M365ARCHIVE_CLIENT_SECRET or keep it in
# the keyring (service "m365archive").
allow_unencrypted_token_cache = false   # only for headless machines without a secret store

"""

_CATCHALL = """[catchall]
upn = "thirdpartydata@{domain}"
display_name = "Third-party data"
usage_location = "US"          # two-letter country code; required before a licence is assigned
license = "any"                # a SKU part number (e.g. "ENTERPRISEPREMIUM") or "any" SKU with Exchange Online Plan 2
hidden_from_address_lists = true
archive = true
auto_expanding_archive = true  # can't be turned off once enabled
# Reviewers who get FullAccess (AutoMapping adds the mailbox to their Outlook).
full_access = [
  {{ user = "compliance.officer@{domain}", automapping = false }},
]

"""

_CONNECTOR = """[connector]
# The Purview data connector you will create (see `m365archive partners`).
source = "bloomberg-message"
# partner_app_id = "00000000-0000-0000-0000-000000000000"   # the connector's app, when it has its own
role_group = "ComplianceAdministrator"   # the role group a connector admin needs (Data Connector Admin)
# role_group_member = "compliance.officer@{domain}"        # who creates the connector
add_role_group_member = false
import_scope = "all"           # all | litigation-hold-only: which mailboxes the connector imports into
# mapping_file = "user-mapping.csv"   # partner user ids -> UPNs (`m365archive mapping export`)
# legacy_catchall = ["thirdpartydata@{domain}"]   # the retired route's catch-all, for `legacy cleanup` and `verify`

"""

_REST = """[hold]
kind = "litigation"            # litigation | retention-policy | none
duration_days = "unlimited"    # 1 to 36500 days, or "unlimited"
# retention_policy = "Third-party data"   # for kind = "retention-policy"

[audit]
enabled = true
# Owner, delegate and admin actions: Microsoft's defaults unless listed here. Microsoft's defaults means
# the logon type stays in the mailbox's DefaultAuditSet, and Microsoft adds new actions to it over time.
# Listing actions (Set-Mailbox -AuditOwner/-AuditDelegate/-AuditAdmin) takes that logon type off
# Microsoft's defaults, even when the list equals today's defaults. Today's defaults, for reference:
# owner = ["ApplyRecord", "HardDelete", "MoveToDeletedItems", "SoftDelete", "Update", "UpdateCalendarDelegation", "UpdateFolderPermissions", "UpdateInboxRules"]
# delegate = ["ApplyRecord", "Create", "HardDelete", "MoveToDeletedItems", "SendAs", "SendOnBehalf", "SoftDelete", "Update", "UpdateFolderPermissions", "UpdateInboxRules"]
# admin = ["ApplyRecord", "Create", "HardDelete", "MoveToDeletedItems", "SendAs", "SendOnBehalf", "SoftDelete", "Update", "UpdateCalendarDelegation", "UpdateFolderPermissions", "UpdateInboxRules"]

[users]
# Step 3: user mailboxes that receive imported items get an archive and a hold.
scope = "{scope}"                # none | all | groups | file
# groups = ["<group object id>"]   # transitive members
# file = "upns.txt"                # one UPN a line
exclude = []
archive = true
auto_expanding_archive = false
hold = true
max_concurrency = 8

# [verify]                     # `m365archive verify`: is the third-party data still arriving?
# sources = ["bloomberg-message"]   # the connectors whose folders are read (default: [connector] source)
# silent_after = "3d"          # a source or mailbox with nothing newer is silent (3d, 36h, 2w)
"""

RETIRED_NOTE = (
    "partner-ews prepares the route Microsoft retired on 2024-12-30 (EWS-based partner ingestion); every "
    "plan says so. Today's route is Purview data connectors: `m365archive init --procedure purview-connector`."
)

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}$", re.IGNORECASE)
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


class TemplateError(ValueError):
    """init's options can't make a config: the message says which option to give."""


def names(tenant: str | None, domain: str | None) -> tuple[str, str]:
    """(tenant id, domain) from init's options: the domain is --domain, else --tenant when it is one;
    never a placeholder. A tenant GUID alone can't name anyone's UPN, so it needs --domain."""
    if tenant is not None and not (_GUID.match(tenant) or _DOMAIN.match(tenant)):
        raise TemplateError(f"--tenant {tenant!r} is neither a tenant id (GUID) nor a domain")
    if domain is not None and not _DOMAIN.match(domain):
        raise TemplateError(f"--domain {domain!r} is not a domain name (e.g. contoso.onmicrosoft.com)")
    dom = domain or (tenant if tenant and _DOMAIN.match(tenant) else None)
    if dom is None:
        given = f"--tenant {tenant} is an id, so " if tenant else ""
        raise TemplateError(
            f"{given}init needs the domain the UPNs use: add --domain (e.g. --domain contoso.onmicrosoft.com)"
        )
    return (tenant or dom).lower(), dom.lower()


def render(*, tenant_id: str, domain: str, procedure: str = DEFAULT_PROCEDURE, scope: str = "none") -> str:
    if procedure not in PROCEDURES:
        raise TemplateError(f"--procedure must be one of {', '.join(PROCEDURES)}, not {procedure!r}")
    middle = _CATCHALL if procedure == "partner-ews" else _CONNECTOR
    template = _HEADER + _TENANT_AUTH + middle + _REST
    return template.format(tenant_id=tenant_id, domain=domain, procedure=procedure, scope=scope)
