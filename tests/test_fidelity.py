"""Issue 12, "nothing is ok unless the service confirmed it": each behaviour the review found, against the
strict simulator (the product converges), the naive request (it gets the real service's answer) and, with the
behaviour's knob off, the lenient simulator (so each test can fail). Sources: docs/fidelity.md."""

from __future__ import annotations

import pytest

from m365archive.steps.connector_readiness import group_id, role_name
from m365archive.tenant.exchange_rest import APP_ANCHOR, anchor_for, regional_base
from m365archive.tenant.hostmap import mapped_origin

TENANT = "0b5c1d2e-0000-4000-8000-00000000c0de"
FRONT = "https://ps.compliance.protection.outlook.com"


@pytest.mark.parametrize(
    ("front", "location", "expected"),
    [
        # CIPP-API New-ExoRequest.ps1: the Location host's first label + the compliance suffix.
        (FRONT, f"https://nam12b.admin.protection.outlook.com/adminapi/beta/{TENANT}/EXOBanner", "nam12b"),
        # Monkey365 Get-MonkeySecCompBackendUri: `admin` -> `ps.compliance` in the Location host: the same host.
        (FRONT, "https://eur02b.admin.protection.outlook.com/AdminApi/v1.0/x/EXOModuleFile", "eur02b"),
        # A Location already on a regional compliance host.
        (FRONT, "https://gcc02b.ps.compliance.protection.outlook.com/adminapi/beta/x/InvokeCommand", "gcc02b"),
        # Labels are case-insensitive host names.
        (FRONT, "https://NAM13B.Admin.Protection.Outlook.com/", "nam13b"),
    ],
)
def test_the_regional_host_is_the_location_label_plus_the_front_door_host(
    front: str, location: str, expected: str
) -> None:
    assert regional_base(front, location) == f"https://{expected}.ps.compliance.protection.outlook.com"


def test_government_and_china_regional_hosts_follow_the_same_rule_unverified() -> None:
    # Unverified: no public source shows these clouds' redirects; the rule is ScubaGear's (label + front door host).
    gcch = "https://ps.compliance.protection.office365.us"
    assert regional_base(gcch, "https://gcch01.admin.protection.office365.us/x") == (
        "https://gcch01.ps.compliance.protection.office365.us"
    )
    china = "https://ps.compliance.protection.partner.outlook.cn"
    assert regional_base(china, "https://chn01.admin.protection.partner.outlook.cn/x").startswith("https://chn01.")


def test_a_location_on_the_front_door_itself_names_no_region() -> None:
    assert regional_base(FRONT, "/adminapi/beta/x/InvokeCommand") == FRONT
    assert regional_base(FRONT, f"{FRONT}/adminapi/beta/x") == FRONT


def test_host_map_matches_the_host_and_hosts_under_it_only() -> None:
    host_map = {"ps.compliance.protection.outlook.com": "http://127.0.0.1:1", "outlook.com": "http://127.0.0.1:2"}
    assert mapped_origin("nam12b.ps.compliance.protection.outlook.com", host_map) == "http://127.0.0.1:1"
    assert mapped_origin("ps.compliance.protection.outlook.com", host_map) == "http://127.0.0.1:1"
    assert mapped_origin("admin.protection.outlook.com", host_map) == "http://127.0.0.1:2"
    assert mapped_origin("xps.compliance.protection.outlook.org", host_map) is None


def test_app_only_tokens_anchor_on_the_system_mailbox_never_on_a_display_name() -> None:
    app = {"tid": TENANT, "app_displayname": "m365archive-automation", "appid": "1", "idtyp": "app"}
    assert anchor_for(app, TENANT) == f"{APP_ANCHOR}{TENANT}"
    assert APP_ANCHOR == "APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@"
    user = {"tid": TENANT, "upn": "admin@contoso.onmicrosoft.com"}
    assert anchor_for(user, TENANT) == "UPN:admin@contoso.onmicrosoft.com"
    assert anchor_for({"tid": TENANT, "unique_name": "m365archive-automation"}, TENANT).startswith("APP:")


def test_roles_match_on_the_last_segment_of_their_identity() -> None:
    qualified = f"FFO.extest.microsoft.com/Microsoft Exchange Hosted Organizations/{TENANT}/Data Connector Admin"
    assert role_name(qualified) == "Data Connector Admin"
    assert role_name("Data Connector Admin") == "Data Connector Admin"
    guid = "5f1c0b6e-0000-4000-8000-000000000001"
    assert group_id({"Name": "OrganizationManagement", "ExchangeObjectId": guid, "Guid": "other"}) == guid
    assert group_id({"Name": "OrganizationManagement", "Guid": guid}) == guid
