"""Weighty facts a change board reads before approving, each with its public source. Steps attach them
to the changes they concern as warnings; the report lists them before the changes."""

from __future__ import annotations

AUTO_EXPANDING_ONE_WAY = (
    "Auto-expanding archiving can't be turned off once enabled for a mailbox "
    "(source: https://learn.microsoft.com/powershell/module/exchange/enable-mailbox, -AutoExpandingArchive)."
)
AUTO_EXPANDING_LIMITS = (
    "An auto-expanding archive grows to at most 1.5 TB in all, is supported only for a growth rate up to 1 GB a "
    "day, and its extra storage can take up to 30 days to be provisioned "
    "(source: https://learn.microsoft.com/purview/autoexpanding-archiving)."
)
ARCHIVE_FOR_ONE_USER = (
    "A user's archive mailbox is intended for just that user: Microsoft may deny additional archive storage to an "
    "archive that stores other users' data, as the catch-all mailbox of the documented procedure does "
    "(source: https://learn.microsoft.com/purview/autoexpanding-archiving)."
)
COMMUNICATION_COMPLIANCE = (
    "Communication compliance can't be applied to the third-party data partner connectors import: review it "
    "with eDiscovery, retention and Litigation Hold instead "
    "(source: https://learn.microsoft.com/purview/archive-partner-third-party-data, the page's Important note)."
)
