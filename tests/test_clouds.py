from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from m365archive.sim.http import AUDIENCES
from m365archive.tenant.clouds import CLOUDS, PARTNER_INGESTION_ENDPOINT, Cloud, get_cloud


def test_every_cloud_is_in_the_table_once() -> None:
    assert list(CLOUDS) == ["global", "gcc", "gcc-high", "dod", "china"]
    assert all(name == cloud.name for name, cloud in CLOUDS.items())


@pytest.mark.parametrize(
    ("name", "login", "graph", "exchange", "compliance"),
    [
        (
            "global",
            "login.microsoftonline.com",
            "https://graph.microsoft.com",
            "https://outlook.office365.com",
            "https://ps.compliance.protection.outlook.com",
        ),
        (
            "gcc",
            "login.microsoftonline.com",
            "https://graph.microsoft.com",
            "https://outlook.office365.com",
            "https://ps.compliance.protection.outlook.com",
        ),
        (
            "gcc-high",
            "login.microsoftonline.us",
            "https://graph.microsoft.us",
            "https://outlook.office365.us",
            "https://ps.compliance.protection.office365.us",
        ),
        (
            "dod",
            "login.microsoftonline.us",
            "https://dod-graph.microsoft.us",
            "https://outlook-dod.office365.us",
            "https://l5.ps.compliance.protection.office365.us",
        ),
        (
            "china",
            "login.chinacloudapi.cn",
            "https://microsoftgraph.chinacloudapi.cn",
            "https://outlook.office365.cn",
            "https://ps.compliance.protection.partner.outlook.cn",
        ),
    ],
)
def test_endpoints_per_cloud(name: str, login: str, graph: str, exchange: str, compliance: str) -> None:
    cloud = get_cloud(name)
    assert (cloud.authority_host, cloud.graph, cloud.exchange, cloud.compliance) == (
        login,
        graph,
        exchange,
        compliance,
    )
    assert cloud.graph_scope == f"{graph}/.default"


@pytest.mark.parametrize(
    ("name", "exchange_scope", "compliance_scope"),
    [
        ("global", "https://outlook.office365.com/.default", "https://ps.compliance.protection.outlook.com/.default"),
        ("gcc-high", "https://outlook.office365.us/.default", "https://ps.compliance.protection.office365.us/.default"),
        # DoD: the Admin API page's host as audience; S&C's audience is the bare host (ScubaGear), not l5.
        ("dod", "https://outlook-dod.office365.us/.default", "https://ps.compliance.protection.office365.us/.default"),
        # 21Vianet: sent to outlook.office365.cn, token for partner.outlook.cn (see clouds.py [exo-cn-aud]).
        (
            "china",
            "https://partner.outlook.cn/.default",
            "https://ps.compliance.protection.partner.outlook.cn/.default",
        ),
    ],
)
def test_token_audiences_per_cloud(name: str, exchange_scope: str, compliance_scope: str) -> None:
    cloud = get_cloud(name)
    assert (cloud.exchange_scope, cloud.compliance_scope) == (exchange_scope, compliance_scope)


def test_no_remote_powershell_host_is_used_for_rest() -> None:
    for cloud in CLOUDS.values():
        for value in (cloud.exchange, cloud.exchange_scope, cloud.compliance_scope):
            assert "webmail.apps.mil" not in value, cloud.name
        assert cloud.exchange != "https://partner.outlook.cn", cloud.name


def test_the_simulator_expects_the_audiences_the_table_asks_for() -> None:
    for name, cloud in CLOUDS.items():
        assert AUDIENCES[name] == {
            "graph": cloud.graph,
            "exchange": cloud.exchange_scope.removesuffix("/.default"),
            "compliance": cloud.compliance_scope.removesuffix("/.default"),
        }


def test_only_commercial_has_the_documented_ingestion_endpoint() -> None:
    assert get_cloud("global").ingestion_endpoint == PARTNER_INGESTION_ENDPOINT
    assert PARTNER_INGESTION_ENDPOINT == (
        "https://office365ingestionsvc.gble1.protection.outlook.com/service/ThirdPartyIngestionService.svc"
    )
    assert [c.name for c in CLOUDS.values() if c.ingestion_endpoint is None] == [
        "gcc",
        "gcc-high",
        "dod",
        "china",
    ]


def test_hosts_are_https_without_trailing_slash() -> None:
    for cloud in CLOUDS.values():
        for url in (cloud.graph, cloud.exchange, cloud.compliance, cloud.purview_portal, cloud.azure_portal):
            assert url.startswith("https://") and not url.endswith("/"), (cloud.name, url)
        assert "/" not in cloud.authority_host


@pytest.mark.parametrize("spelling", ["GCC-High", "gcc_high", " gcc-high "])
def test_get_cloud_forgives_case_and_separators(spelling: str) -> None:
    assert get_cloud(spelling).name == "gcc-high"


def test_unknown_cloud_lists_the_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown cloud 'germany': choose one of global, gcc, gcc-high, dod, china"):
        get_cloud("germany")


def test_admin_consent_url_matches_the_reference_page_form() -> None:
    url = get_cloud("global").admin_consent_url(
        None, "8dfbc50b-2111-4d03-9b4d-dd0d00aae7a2", "https://portal.azure.com/"
    )
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https",
        "login.microsoftonline.com",
        "/common/oauth2/authorize",
    )
    assert parse_qs(parts.query) == {
        "client_id": ["8dfbc50b-2111-4d03-9b4d-dd0d00aae7a2"],
        "response_type": ["code"],
        "redirect_uri": ["https://portal.azure.com/"],
        "prompt": ["admin_consent"],
    }


def test_admin_consent_url_per_tenant_cloud_state_and_simulator_base() -> None:
    cloud: Cloud = get_cloud("gcc-high")
    url = cloud.admin_consent_url("contoso.onmicrosoft.us", "app", cloud.azure_portal, state="s 1")
    assert url.startswith("https://login.microsoftonline.us/contoso.onmicrosoft.us/oauth2/authorize?")
    assert parse_qs(urlsplit(url).query)["state"] == ["s 1"]

    sim = cloud.admin_consent_url("tid", "app", "http://127.0.0.1:9/done", login_base="http://127.0.0.1:9/")
    assert sim.startswith("http://127.0.0.1:9/tid/oauth2/authorize?")
