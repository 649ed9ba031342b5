"""The commented m365archive.toml that `m365archive init` writes."""

from __future__ import annotations

TEMPLATE = """# m365archive desired state. Validate and preview with:
#   m365archive setup --dry-run --report plan.md
#
# NOTE: Microsoft retired EWS-based partner ingestion (the route "partner-ews" prepares for)
# on 2024-12-30: https://learn.microsoft.com/purview/archive-partner-third-party-data
# Every plan says so. Today's route is Microsoft Purview data connectors ("purview-connector").

# "partner-ews": the documented five-step procedure (catch-all mailbox, user mailboxes,
# partner handoff, connector consent). "purview-connector": preparation for Purview data connectors.
procedure = "{procedure}"

# The partner you work with (see `m365archive partners --source bloomberg`).
# partner = "Veritas"

[tenant]
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

[catchall]
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

[hold]
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
"""


def render(
    *,
    tenant_id: str = "contoso.onmicrosoft.com",
    domain: str = "contoso.onmicrosoft.com",
    procedure: str = "partner-ews",
    scope: str = "none",
) -> str:
    return TEMPLATE.format(tenant_id=tenant_id, domain=domain, procedure=procedure, scope=scope)
