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
