"""The Microsoft 365 clouds this tool can work in, and every endpoint it needs in each: one table.

Each value names its source; where sources disagree the choice is said and why (docs/fidelity.md,
"Part 2", rows cloud-*).

- [graph]  Microsoft Graph national cloud deployments, learn.microsoft.com/graph/deployments:
  login hosts (login.microsoftonline.com, login.microsoftonline.us, login.chinacloudapi.cn), Azure
  portals (portal.azure.com/.us/.cn) and Graph roots (graph.microsoft.com, graph.microsoft.us,
  dod-graph.microsoft.us, microsoftgraph.chinacloudapi.cn); "in a Microsoft 365 GCC environment,
  continue using the worldwide endpoints". The Graph token audience is the Graph root
  (learn.microsoft.com/graph/sdks/national-clouds: a .default scope must use the national root).
- [idhost] azure-identity AzureAuthorityHosts: AZURE_PUBLIC_CLOUD login.microsoftonline.com,
  AZURE_GOVERNMENT login.microsoftonline.us, AZURE_CHINA login.chinacloudapi.cn.
- [exo]    "Get started with the Exchange Online Admin API" (learn.microsoft.com/exchange/reference/
  admin-api-get-started), "Supported environments and base URLs": Microsoft 365 or GCC
  https://outlook.office365.com; GCC High https://outlook.office365.us; DoD
  https://outlook-dod.office365.us; 21Vianet https://outlook.office365.cn. These replace the remote
  PowerShell ConnectionUri hosts (webmail.apps.mil, partner.outlook.cn) this table used before:
  those are RPS hosts, not the REST endpoint. CISA ScubaGear (cisagov/ScubaGear
  EXORestHelper.psm1) uses outlook-dod.office365.us as both base and scope for DoD.
- [exo-cn-aud] 21Vianet Exchange token audience: Microsoft documents none for the REST endpoint.
  Public clients of Exchange in 21Vianet request https://partner.outlook.cn/.default and get a token
  (IMAP/SMTP/EWS samples, EXO-module wrappers with ExchangeEnvironmentName O365China); no public
  client requests outlook.office365.cn/.default and shows it working. We ask for partner.outlook.cn
  (an audience Entra is shown to issue in that cloud) and send to outlook.office365.cn: unverified.
- [scc]    Connect-IPPSSession -ConnectionUri (MicrosoftDocs/office-docs-powershell
  Connect-IPPSSession.md): ps.compliance.protection.outlook.com (commercial and GCC), GCC High
  ps.compliance.protection.office365.us, DoD l5.ps.compliance.protection.office365.us, 21Vianet
  ps.compliance.protection.partner.outlook.cn. The front door redirects each tenant to a regional
  host (discovered at run time).
- [scc-dod-aud] DoD S&C token audience: Microsoft documents none. ScubaGear's REST client
  (EXORestHelper.psm1 Get-ComplianceScope) asks for https://ps.compliance.protection.office365.us
  for DoD as for GCC High; we follow it (the only public REST client for DoD). 21Vianet's S&C
  audience (the ConnectionUri host) is unverified.
- [purview] Purview portal hosts: purview.microsoft.com (commercial, GCC); purview.microsoft.us for
  GCC High and DoD appears in Microsoft's and the community's admin tooling (Maester's
  Get-MtAdminPortalUrl, Purview readiness scripts) but not in a Learn table we could read. The
  21Vianet host is NOT verified: community tables disagree (purview.microsoftonline.cn,
  purview.microsoft.cn); we follow the microsoftonline.cn pattern of that cloud's other portals.
- [ingest] The partner ingestion endpoint is the one in "Work with a partner to archive third-party
  data", Step 4. The page names no endpoint for any other cloud, so the others are None. The route
  itself is retired (see m365archive.partners.RETIREMENT).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

# The one endpoint the reference page gives (Step 4). Commercial only.
PARTNER_INGESTION_ENDPOINT = (
    "https://office365ingestionsvc.gble1.protection.outlook.com/service/ThirdPartyIngestionService.svc"
)


@dataclass(frozen=True)
class Cloud:
    """One Microsoft 365 cloud: where to sign in, and the root of every service the tool calls."""

    name: str
    title: str
    authority_host: str  # a host, no scheme: what azure-identity's `authority` takes
    graph: str
    exchange: str
    compliance: str
    purview_portal: str
    azure_portal: str
    ingestion_endpoint: str | None
    exchange_audience: str = ""  # the token audience when it differs from the host ([exo-cn-aud])
    compliance_audience: str = ""  # likewise ([scc-dod-aud])

    @property
    def login_url(self) -> str:
        return f"https://{self.authority_host}"

    @property
    def graph_scope(self) -> str:
        return _default_scope(self.graph)

    @property
    def exchange_scope(self) -> str:
        return _default_scope(self.exchange_audience or self.exchange)

    @property
    def compliance_scope(self) -> str:
        return _default_scope(self.compliance_audience or self.compliance)

    def admin_consent_url(
        self,
        tenant: str | None,
        client_id: str,
        redirect_uri: str,
        state: str | None = None,
        *,
        login_base: str | None = None,
    ) -> str:
        """The admin-consent link in the reference page's form (Step 5), for this cloud.

        `tenant` None means "common", as on the page. `login_base` replaces the cloud's login URL
        (the simulator serves its consent page on loopback).
        """
        base = (login_base or self.login_url).rstrip("/")
        query = {
            "client_id": client_id,
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "prompt": "admin_consent",
        }
        if state is not None:
            query["state"] = state
        return f"{base}/{tenant or 'common'}/oauth2/authorize?{urlencode(query)}"


def _default_scope(resource: str) -> str:
    return resource.rstrip("/") + "/.default"


CLOUDS: dict[str, Cloud] = {
    cloud.name: cloud
    for cloud in (
        # [graph] [idhost] [exo] [scc] [purview] [ingest]
        Cloud(
            name="global",
            title="Microsoft 365 commercial",
            authority_host="login.microsoftonline.com",
            graph="https://graph.microsoft.com",
            exchange="https://outlook.office365.com",
            compliance="https://ps.compliance.protection.outlook.com",
            purview_portal="https://purview.microsoft.com",
            azure_portal="https://portal.azure.com",
            ingestion_endpoint=PARTNER_INGESTION_ENDPOINT,
        ),
        # GCC runs on the worldwide endpoints: [graph] (GCC note), [exo] (no ConnectionUri for GCC),
        # [scc] ("Microsoft 365 or Microsoft 365 GCC": defaults). [ingest]: the page names none.
        Cloud(
            name="gcc",
            title="GCC",
            authority_host="login.microsoftonline.com",
            graph="https://graph.microsoft.com",
            exchange="https://outlook.office365.com",
            compliance="https://ps.compliance.protection.outlook.com",
            purview_portal="https://purview.microsoft.com",
            azure_portal="https://portal.azure.com",
            ingestion_endpoint=None,
        ),
        # [graph] (L4 root, portal.azure.us) [idhost] AZURE_GOVERNMENT [exo] [scc] [purview]
        Cloud(
            name="gcc-high",
            title="GCC High",
            authority_host="login.microsoftonline.us",
            graph="https://graph.microsoft.us",
            exchange="https://outlook.office365.us",
            compliance="https://ps.compliance.protection.office365.us",
            purview_portal="https://purview.microsoft.us",
            azure_portal="https://portal.azure.us",
            ingestion_endpoint=None,
        ),
        # [graph] (L5 DOD root) [idhost] AZURE_GOVERNMENT [exo] [scc] [scc-dod-aud] [purview]
        Cloud(
            name="dod",
            title="DoD",
            authority_host="login.microsoftonline.us",
            graph="https://dod-graph.microsoft.us",
            exchange="https://outlook-dod.office365.us",
            compliance="https://l5.ps.compliance.protection.office365.us",
            purview_portal="https://purview.microsoft.us",
            azure_portal="https://portal.azure.us",
            ingestion_endpoint=None,
            compliance_audience="https://ps.compliance.protection.office365.us",
        ),
        # [graph] [idhost] AZURE_CHINA [exo] [exo-cn-aud] [scc]; purview_portal unverified (see [purview])
        Cloud(
            name="china",
            title="operated by 21Vianet",
            authority_host="login.chinacloudapi.cn",
            graph="https://microsoftgraph.chinacloudapi.cn",
            exchange="https://outlook.office365.cn",
            compliance="https://ps.compliance.protection.partner.outlook.cn",
            purview_portal="https://purview.microsoftonline.cn",
            azure_portal="https://portal.azure.cn",
            ingestion_endpoint=None,
            exchange_audience="https://partner.outlook.cn",
        ),
    )
}


def get_cloud(name: str) -> Cloud:
    """The cloud called `name` (case and `_`/`-` forgiven); ValueError naming the valid ones."""
    key = name.strip().lower().replace("_", "-")
    try:
        return CLOUDS[key]
    except KeyError:
        valid = ", ".join(CLOUDS)
        raise ValueError(f"unknown cloud {name!r}: choose one of {valid}") from None
