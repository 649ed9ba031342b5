"""The partner catalog and message-format facts of "Work with a partner to archive third-party data".

Everything here is copied from that page (shared/reference/work-with-partner-to-archive-third-party-
data.md), spelling included ("Factset" and "FactSet" both appear), plus the facts about its
retirement and today's route (Microsoft Purview data connectors) from the project's design notes.
The route on that page is retired: `retirement_notice()` opens every plan and report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

RETIREMENT = {
    "date": "2024-12-30",
    "url": "https://learn.microsoft.com/purview/archive-partner-third-party-data",
    "summary": (
        "EWS-based partner ingestion of third-party data was retired on 2024-12-30: no new EWS partner "
        "connectors can be set up and existing ones no longer import. Exchange Web Services itself is "
        "being disabled in Exchange Online from 2026-10-01 (permanent shutdown announced for "
        "2027-04-01). Non-EWS data connectors (Microsoft Purview data connectors) are unaffected."
    ),
}


def retirement_notice() -> str:
    """The paragraph at the top of every partner-ews plan and report."""
    return (
        "This procedure is retired. "
        + RETIREMENT["summary"]
        + " The steps below reproduce or verify the documented procedure (and clean up what it left "
        "behind); to import third-party data today, use a Microsoft Purview data connector. "
        f"See {RETIREMENT['url']}."
    )


@dataclass(frozen=True)
class Partner:
    name: str
    website: str
    sources: tuple[str, ...]


# Step 1, one entry per partner section, sources in the page's order.
PARTNERS: tuple[Partner, ...] = (
    Partner(
        name="17a-4 LLC",
        website="https://www.17a-4.com",
        sources=(
            "BlackBerry",
            "Bloomberg Data Streams",
            "Cisco Jabber",
            "FactSet",
            "HipChat",
            "InvestEdge",
            "LivePerson",
            "MessageLabs Data Streams",
            "OpenText",
            "Oracle/ATG 'click-to-call' Live Help",
            "Pivot IMTRADER",
            "Microsoft SharePoint",
            "MindAlign",
            "Sitrion One (Newsgator)",
            "Skype for Business (Lync/OCS)",
            "Skype for Business Online (Lync Online)",
            "SQL Databases",
            "Squawker",
            "Thomson Reuters Eikon Messenger",
        ),
    ),
    Partner(
        name="ArchiveSocial",
        website="https://www.archivesocial.com",
        sources=(
            "Facebook",
            "Flickr",
            "Instagram",
            "LinkedIn",
            "Pinterest",
            "Twitter",
            "YouTube",
            "Vimeo",
        ),
    ),
    Partner(
        name="Veritas",
        website="https://www.globanet.com",
        sources=(
            "AOL with Pivot Client",
            "BlackBerry Call Logs (v5, v10, v12)",
            "BlackBerry Messenger (v5, v10, v12)",
            "BlackBerry PIN (v5, v10, v12)",
            "BlackBerry SMS (v5, v10, v12)",
            "Bloomberg Chat",
            "Bloomberg Mail",
            "Box",
            "CipherCloud for Salesforce Chatter",
            "Cisco IM & Presence Server (v10, v10.5.1 SU1, v11.0, v11.5 SU2)",
            "Cisco Webex Teams",
            "Citrix Workspace & ShareFile",
            "CrowdCompass",
            "Custom-delimited text files",
            "Custom XML files",
            "Facebook (Pages)",
            "Factset",
            "FXConnect",
            "ICE Chat/YellowJacket",
            "Jive",
            "Macgregor XIP",
            "Microsoft Exchange Server",
            "Microsoft OneDrive for Business",
            "Microsoft Teams",
            "Microsoft Yammer",
            "Mobile Guard",
            "Pivot",
            "Salesforce Chatter",
            "Skype for Business Online",
            "Skype for Business, versions 2007 R2 - 2016 (on-premises)",
            "Slack Enterprise Grid",
            "Symphony",
            "Thomson Reuters Eikon",
            "Thomson Reuters Messenger",
            "Thomson Reuters Dealings 3000 / FX Trading",
            "Twitter",
            "UBS Chat",
            "YouTube",
        ),
    ),
    Partner(
        name="OpenText",
        website="https://www.opentext.com/what-we-do/products/opentext-product-offerings-catalog/rebranded-products/daegis",
        sources=(
            "Axs Encrypted",
            "Axs Exchange",
            "Axs Local Archive",
            "Axs PlaceHolder",
            "Axs Signed",
            "Bloomberg",
            "Thomson Reuters",
        ),
    ),
    Partner(
        name="Smarsh",
        website="https://www.smarsh.com",
        sources=(
            "AIM",
            "American Idol",
            "Apple Juice",
            "AOL with Pivot client",
            "Ares",
            "Bazaar Voice",
            "Bear Share",
            "Bit Torrent",
            "BlackBerry Call Logs (v5, v10, v12)",
            "BlackBerry Messenger (v5, v10, v12)",
            "BlackBerry PIN (v5, v10, v12)",
            "BlackBerry SMS (v5, v10, v12)",
            "Bloomberg Mail",
            "CellTrust",
            "Chat Import",
            "Chat Real Time Logging and Policy",
            "Chatter",
            "Cisco IM & Presence Server (v9.0.1, v9.1, v9.1.1 SU1, v10, v10.5.1 SU1)",
            "Cisco Unified Presence Server (v8.6.3, v8.6.4, v8.6.5)",
            "Collaboration Import",
            "Collaboration Real Time Logging",
            "Direct Connect",
            "Facebook",
            "FactSet",
            "FastTrack",
            "Gnutella",
            "Google+",
            "GoToMyPC",
            "Hopster",
            "HubConnex",
            "IBM Connections (v3.0.1, v4.0, v4.5, v4.5 CR3, v5)",
            "IBM Connections Chat Cloud",
            "IBM Connections Social Cloud",
            "IBM SameTime Advanced 8.5.2 IFR1",
            "IBM SameTime Communicate 9.0",
            "IBM SameTime Community (v8.0.2, v8.5.1 IFR2, v8.5.2 IFR1, v9.1)",
            "IBM SameTime Complete 9.0",
            "IBM SameTime Conference 9.0",
            "IBM SameTime Meeting 8.5.2 IFR1",
            "ICE/YellowJacket",
            "IM Import",
            "IM Real Time Logging and Policy",
            "Indii Messenger",
            "Instant Bloomberg",
            "IRC",
            "Jive",
            "Jive 6 Real Time Logging (v6, v7)",
            "Jive Import",
            "JXTA",
            "LinkedIn",
            "Microsoft Lync (2010, 2013)",
            "MFTP",
            "Microsoft Lync 2013 Voice",
            "Microsoft SharePoint (2010, 2013)",
            "Microsoft SharePoint Online",
            "Microsoft UC (Unified Communications)",
            "MindAlign",
            "Mobile Guard",
            "MSN",
            "My Space",
            "NEONetwork",
            "Microsoft 365 Lync Dedicated",
            "Microsoft 365 Shared IM",
            "Pinterest",
            "Pivot",
            "QQ",
            "Skype for Business 2015",
            "SoftEther",
            "Symphony",
            "Thomson Reuters Eikon",
            "Thomson Reuters Messenger",
            "Tor",
            "TTT",
            "Twitter",
            "WinMX",
            "Winny",
            "Yahoo",
            "Yammer",
            "YouTube",
        ),
    ),
    Partner(
        name="Verba",
        website="https://www.verba.com",
        sources=(
            "Avaya Aura Video",
            "Avaya Aura Voice",
            "Avtec Radio",
            "Bosch/Telex Radio",
            "BroadSoft Video",
            "BroadSoft Voice",
            "Centile Voice",
            "Cisco Jabber IM",
            "Cisco UC Video",
            "Cisco UC Voice",
            "Cisco UCCX/UCCE Video",
            "Cisco UCCX/UCCE Voice",
            "ESChat Radio",
            "Geoman Contact Expert",
            "IP Trade Voice",
            "Luware LUCS Contact Center",
            "Microsoft UC (Unified Communications)",
            "Mitel MiContact Center for Lync (prairieFyre)",
            "Oracle / Acme Packet Session Border Controller Video",
            "Oracle / Acme Packet Session Border Controller Voice",
            "Singtel Mobile Voice",
            "SIPREC Video",
            "SIPREC Voice",
            "Skype for Business / Lync IM",
            "Skype for Business / Lync Video",
            "Skype for Business / Lync Voice",
            "Speakerbus Voice",
            "Standard SIP/H.323 Video",
            "Standard SIP/H.323 Voice",
            "Truphone Voice",
            "TwistedPair Radio",
            "Windows Desktop Computer Screen",
        ),
    ),
)


def _words(text: str) -> list[str]:
    return re.findall(r"[0-9a-z]+", text.lower())


def find_partner(name: str) -> Partner | None:
    """The partner called `name`, forgiving case, punctuation and a missing suffix ("17a-4")."""
    wanted = "".join(_words(name))
    if not wanted:
        return None
    for partner in PARTNERS:
        if "".join(_words(partner.name)) == wanted:
            return partner
    for partner in PARTNERS:
        if "".join(_words(partner.name)).startswith(wanted):
            return partner
    return None


def source_matches(query: str, source: str) -> bool:
    """True when every word of `query` starts a word of `source`, in any order.

    Words, not substrings: "ice" finds "ICE Chat/YellowJacket" but not "Apple Juice". A query of
    several words also matches when written without its spaces ("yellow jacket", "linked in").
    """
    query_words = _words(query)
    if not query_words:
        return False
    source_words = _words(source)
    if all(any(word.startswith(q) for word in source_words) for q in query_words):
        return True
    return len(query_words) > 1 and "".join(query_words) in "".join(source_words)


def search(source_text: str) -> list[tuple[Partner, list[str]]]:
    """Each partner that supports a source matching `source_text`, with the matching sources."""
    found = []
    for partner in PARTNERS:
        sources = [source for source in partner.sources if source_matches(source_text, source)]
        if sources:
            found.append((partner, sources))
    return found


# --- "More information": the message format partner connectors must follow -------------------


@dataclass(frozen=True)
class MessageProperty:
    name: str
    mandatory: bool
    description: str
    example: str


# The table under "More information", text as on the page. A missing mandatory property means the
# item is not imported and the import returns an error naming the property.
MESSAGE_PROPERTIES: tuple[MessageProperty, ...] = (
    MessageProperty(
        "FROM",
        True,
        "The user who originally created or sent the item in the third-party data source. The partner "
        "connector attempts to map the user ID from the source item (for example a Twitter handle) to a "
        "user account for all participants (users in the FROM and TO fields). A copy of the message will "
        "be imported to the mailbox of every participant. If none of the participants from the item can "
        "be mapped to a user account, the item will be imported to the third-party archiving mailbox in "
        "Microsoft 365. The participant who's identified as the sender of the item must have an active "
        "mailbox in the organization that the item is being imported to. If the sender doesn't have an "
        "active mailbox, the following error is returned: One or more messages in the Request failed to "
        "be delivered to either From or Sender email address. You will need to resend your entire "
        "Request. Error: The request failed. The remote server returned an error: (401) Unauthorized.",
        "bob@contoso.com",
    ),
    MessageProperty(
        "TO",
        True,
        "The user who received an item, if applicable for an item in the data source.",
        "bob@contoso.com",
    ),
    MessageProperty(
        "SUBJECT",
        False,
        "The subject from the source item.",
        '"Mega deals with Contoso coming your way! #ContosoHolidayDeals"',
    ),
    MessageProperty(
        "DATE",
        True,
        "The date the item was originally created or posted in the customer data source. For example, "
        "that date when a Twitter message was tweeted.",
        "01 NOV 2015",
    ),
    MessageProperty(
        "BODY",
        False,
        "The contents of the message or post. For some data sources, the contents of this property could "
        "be the same as the content for the SUBJECT property. During the import process, the partner "
        "connector attempts to maintain full fidelity from the content source as possible. If possible "
        "files, graphics, or other content from the body of the source item is included in this "
        "property. Otherwise, content from the source item is included in the ATTACHMENT property. The "
        "contents of this property depends on the partner connector and on the capability of the source "
        "platform.",
        'Author: bob@contoso.com\nDate: 10 DEC 2014\nTweet: "Mega deals with Contoso coming your way! '
        '#ContosoHolidayDeals"\nDate: 01 NOV 2015',
    ),
    MessageProperty(
        "ATTACHMENT",
        False,
        "If an item in the data source (such as a tweet in Twitter or an instant messaging conversation) "
        "has an attached file or include images, the partner connect will first attempt to include "
        "attachments in the BODY property. If that isn't possible, then it's added to the ATTACHMENT "
        "property. Other examples of attachments include Likes in Facebook, metadata from the content "
        "source, and responses to a message or post.",
        "image.gif",
    ),
    MessageProperty(
        "MESSAGECLASS",
        True,
        "This is a multi-value property, which is created and populated by partner connector. The format "
        "of this property is IPM.NOTE.Source.Event. (This property must begin with IPM.NOTE. This format "
        "is similar to the one for the IPM.NOTE.X message class.) This property includes the following "
        "information: Source: Indicates the third-party data source; for example, Twitter, Facebook, or "
        "BlackBerry. Event: Indicates the type of activity that was performed in the third-party data "
        "source that produced the items; for example, a tweet in Twitter or a post in Facebook. Events "
        "are specific to the data source. One purpose of this property is to filter specific items based "
        "on the data source where an item originated or based on the type of event. For example, in an "
        "eDiscovery search you could create a search query to find all the tweets that were posted by a "
        "specific user.",
        "IPM.NOTE.Twitter.Tweet",
    ),
)

MESSAGE_CLASS_FORMAT = "IPM.NOTE.<Source>.<Event>"

INGESTION_ADVICE = (
    "When items are successfully imported to mailboxes in Microsoft 365, a unique identifier is returned "
    "back to the caller as part of the HTTP response. This identifier, called x-IngestionCorrelationID, "
    "can be used for subsequent troubleshooting purposes by partners for end-to-end tracking of items. "
    "It's recommended that partners capture this information and log it accordingly at their end."
)

# --- Today's route: Microsoft Purview data connectors (design notes) ---------------------------

MappingKind = Literal["email", "bloomberg-uuid", "phone"]


@dataclass(frozen=True)
class ImportFolder:
    """Where a connector puts the items it imports, as its public page names it.

    `parent` is "" for a folder at the mailbox's top level (beside the Inbox) or "Inbox" for a subfolder of
    the Inbox; `per_user`: each mapped user's own mailbox (False: one storage mailbox chosen in the portal).
    """

    name: str
    parent: str
    source: str  # the public page that names the folder
    per_user: bool = True

    @property
    def path(self) -> str:
        """The folder's path as Get-MailboxFolderStatistics writes FolderPath ("/Inbox/CellTrust")."""
        return "/" + "/".join(p for p in (self.parent, self.name) if p)


@dataclass(frozen=True)
class PurviewConnector:
    """A Purview data connector, as far as tenant preparation is concerned.

    `mapping`: how imported items find their user's mailbox. Every connector maps automatically by an
    email property of the item; some also take a mapping CSV keyed by another identifier. Items whose
    user can't be mapped are not imported (there is no catch-all mailbox on this route).
    `folder`: where it imports, or None when no public source names one folder (`folder_note` says why).
    """

    name: str
    provider: str  # "Microsoft" or the partner that runs it
    mapping: tuple[MappingKind, ...] = ("email",)
    partner_app: bool = False  # needs a service principal for the partner's app id in the tenant
    litigation_hold_filter: bool = False  # can import "only users on Litigation hold"
    folder: ImportFolder | None = None
    folder_note: str = ""


_LEARN = "https://learn.microsoft.com/purview/"
NO_SINGLE_FOLDER = (
    "a family of connectors, one per data source: each source's page names its own folder, so no one folder "
    "can be checked for it"
)

PURVIEW_CONNECTORS: tuple[PurviewConnector, ...] = (
    PurviewConnector(
        "Bloomberg Message",
        "Microsoft",
        ("email", "bloomberg-uuid"),
        litigation_hold_filter=True,
        folder=ImportFolder("BloombergMessage", "", _LEARN + "archive-bloomberg-message-data"),
    ),
    PurviewConnector(
        "Instant Bloomberg",
        "Microsoft",
        ("email", "bloomberg-uuid"),
        litigation_hold_filter=True,
        folder=ImportFolder("InstantBloomberg", "", _LEARN + "archive-instant-bloomberg-data"),
    ),
    PurviewConnector("ICE Chat", "Microsoft", folder=ImportFolder("ICE Chat", "", _LEARN + "archive-icechat-data")),
    PurviewConnector(
        "LinkedIn",
        "Microsoft",
        # The page says both "imported to the inbox folder" (step 7) and "the LinkedIn subfolder in the inbox"
        # (More information); the subfolder is the more specific statement. One storage mailbox, not per user.
        folder=ImportFolder("LinkedIn", "Inbox", _LEARN + "archive-linkedin-data", per_user=False),
    ),
    PurviewConnector("Veritas Merge1", "Veritas", partner_app=True, folder_note=NO_SINGLE_FOLDER),
    PurviewConnector(
        "TeleMessage WhatsApp",
        "TeleMessage",
        ("email", "phone"),
        partner_app=True,
        folder=ImportFolder("WhatsApp Archiver", "", _LEARN + "archive-whatsapp-data"),
    ),
    PurviewConnector("17a-4 DataParser", "17a-4", partner_app=True, folder_note=NO_SINGLE_FOLDER),
    PurviewConnector(
        "CellTrust",
        "CellTrust",
        partner_app=True,
        folder=ImportFolder("CellTrust", "Inbox", _LEARN + "archive-celltrust-data"),
    ),
)


def connector_slug(text: str) -> str:
    """A connector's name as the config writes it: "Instant Bloomberg" -> "instant-bloomberg"."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def find_purview_connector(source: str) -> PurviewConnector | None:
    """The connector `source` names ("bloomberg-message", "Veritas Merge1", ...), or None."""
    wanted = connector_slug(source)
    return next((c for c in PURVIEW_CONNECTORS if connector_slug(c.name) == wanted), None)


# The retired partner route (reference page, "How the partner route imports"): items mapped to a user go to
# the Purges folder of the user's Recoverable Items (per user, not per source); items no user maps to go to
# the catch-all ("third-party data") mailbox's Inbox.
PARTNER_UNMAPPED_FOLDER = ImportFolder(
    "Inbox", "", "shared/reference/work-with-partner-to-archive-third-party-data.md (and RETIREMENT['url'])"
)

# Who can create a connector: the Data Connector Admin role (carried by role groups such as Organization
# Management, Compliance Administrator and Compliance Data Administrator; the step reads which do).
DATA_CONNECTOR_ADMIN_ROLE = "Data Connector Admin"
