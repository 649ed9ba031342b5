"""Microsoft's well-known ids the product uses, in one table, each with where it is published.

Role template ids, app (client) ids and fixed GUIDs are the same in every tenant and cloud. Licence
SKUs and service plans (commercial and Government) are data, m365archive/data/service-plans.json with
its source, read by m365archive.licences. Everything else in the product imports these names rather
than repeating the GUIDs.
"""

from __future__ import annotations

# -- Entra role templates (https://learn.microsoft.com/entra/identity/role-based-access-control/permissions-reference)
EXCHANGE_ADMINISTRATOR_ROLE = "29232cdf-9323-42fd-ade2-1d097af3e4de"

# -- applications
# The third-party data connector app that Step 5 asks an admin to consent to
# (https://learn.microsoft.com/purview/archive-partner-third-party-data).
CONNECTOR_APP_ID = "8dfbc50b-2111-4d03-9b4d-dd0d00aae7a2"
# "Microsoft Graph Command Line Tools", Connect-MgGraph's default public client
# (https://learn.microsoft.com/powershell/microsoftgraph/authentication-commands).
GRAPH_POWERSHELL_CLIENT_ID = "14d82eec-204b-4c2f-b7e8-296a70dab67e"
# "Microsoft Exchange REST API Based PowerShell", Connect-ExchangeOnline / Connect-IPPSSession's public client
# (microsoft/ExchangeOnlineManagement module source; CIPP-API and ScubaGear name the same id).
EXCHANGE_POWERSHELL_CLIENT_ID = "fb78d390-0c51-40cd-8e17-fdbfab77341b"

# -- fixed GUIDs
# The system mailbox the ExchangeOnlineManagement module anchors app-only connections on (X-AnchorMailbox).
EXCHANGE_APP_SYSTEM_MAILBOX = "bb558c35-97f1-4cb9-8ff7-d53741dc928c"
# What Get-Mailbox shows as ArchiveGuid for a mailbox without an archive.
NULL_GUID = "00000000-0000-0000-0000-000000000000"

# Entra built-in role template ids (Microsoft Entra built-in roles reference,
# https://learn.microsoft.com/entra/identity/role-based-access-control/permissions-reference).
ENTRA_ROLE_TEMPLATES: dict[str, str] = {
    "Global Administrator": "62e90394-69f5-4237-9190-012177145e10",
    "Global Reader": "f2ef992c-3afb-46b9-b7cf-a126ee74c451",
    "Privileged Authentication Administrator": "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",
    "Privileged Role Administrator": "e8611ab8-c189-46e8-94e1-60213ab1f814",
    "User Administrator": "fe930be7-5e62-47db-91af-98c3a49a38b1",
    "License Administrator": "4d6ac14f-3453-41d0-bef9-a3e0c569773a",
    "Exchange Administrator": EXCHANGE_ADMINISTRATOR_ROLE,
    "Exchange Recipient Administrator": "31392ffb-586c-42d1-9346-e59415a2cc4e",
    "Compliance Administrator": "17315797-102d-40b4-93e0-432062caca18",
    "Compliance Data Administrator": "e6d1a23a-da11-4be4-9570-befc86d067a7",
    "Cloud Application Administrator": "158c047a-c907-4556-b7ef-446551a6b5f7",
    "Application Administrator": "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
}
