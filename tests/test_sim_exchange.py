"""The simulated Exchange Online / Security & Compliance admin API on the wire (raw httpx)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from m365archive.sim.exchange import service_for
from m365archive.sim.hosts import host_map, regional_host
from m365archive.sim.scenario import build_state
from m365archive.sim.server import SimulatedTenant, simulated_tenant
from m365archive.sim.state import KNOWN_SKUS, User, new_id
from m365archive.tenant.hostmap import SyncHostMapTransport
from m365archive.tenant.simcredential import SimulatorCredential, token_url

ADELE = "adele.vance@contoso.onmicrosoft.com"
LEE = "lee.gu@contoso.onmicrosoft.com"  # Exchange Online Plan 1 only
OFFICER = "compliance.officer@contoso.onmicrosoft.com"


class Wire:
    """Raw calls to one simulator side."""

    def __init__(self, sim: SimulatedTenant, service: str = "exchange") -> None:
        self.sim = sim
        state = sim.state
        resource = (
            "https://outlook.office365.com" if service == "exchange" else "https://ps.compliance.protection.outlook.com"
        )
        token = SimulatorCredential(token_url(sim.url, state.tenant_id)).get_token(f"{resource}/.default").token
        self.headers = {"Authorization": f"Bearer {token}", "X-AnchorMailbox": f"UPN:{state.signed_in_user}"}
        # Security & Compliance by its real regional host name, sent to the simulator through its host map.
        host = sim.url if service == "exchange" else f"https://{regional_host(state)}"
        self.base = f"{host}/adminapi/beta/{state.tenant_id}"
        self.client = httpx.Client(transport=SyncHostMapTransport(host_map(state, sim.url)), timeout=30)

    def invoke(self, name: str, params: dict[str, Any] | None = None, **headers: str) -> httpx.Response:
        body = {"CmdletInput": {"CmdletName": name, "Parameters": params or {}}}
        return self.client.post(f"{self.base}/InvokeCommand", json=body, headers={**self.headers, **headers})

    def batch(self, items: list[tuple[str, dict[str, Any]]], *, continue_on_error: bool = True) -> httpx.Response:
        """A $batch as the module sends it: continue-on-error, and the full header set on every item."""
        prefer = "odata.continue-on-error"
        requests = [
            {
                "id": str(i),
                "method": "POST",
                "url": f"{self.base}/InvokeCommand",
                "headers": {**self.headers, "Prefer": f"odata.maxpagesize=1000;{prefer}"},
                "body": {"CmdletInput": {"CmdletName": name, "Parameters": params}},
            }
            for i, (name, params) in enumerate(items)
        ]
        headers = {**self.headers, "Prefer": prefer} if continue_on_error else self.headers
        return self.client.post(f"{self.base}/$batch", json={"requests": requests}, headers=headers)


def logged(sim: SimulatedTenant, count: int) -> list[dict[str, Any]]:
    """The request log once it holds `count` entries (it is written just after each response is sent)."""
    deadline = time.monotonic() + 5
    while len(sim.requests) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return sim.requests


def details(response: httpx.Response) -> list[str]:
    error = response.json()["error"]
    return str(error["details"][0]["message"]).split("|")


def test_invoke_command_wire_format(sim: SimulatedTenant) -> None:
    wire = Wire(sim)
    before = len(sim.requests)
    r = wire.invoke("Get-Mailbox", {"Identity": ADELE})
    assert r.status_code == 200 and r.headers["request-id"]
    body = r.json()
    assert body["@odata.context"].endswith("/$metadata#Collection(Exchange.GenericHashTable)")
    [mbx] = body["value"]
    user = sim.state.user_by_upn(ADELE)
    assert user is not None
    assert mbx["ExternalDirectoryObjectId"] == user.id and mbx["UserPrincipalName"] == ADELE
    for key in ("Guid", "ExchangeGuid", "Alias", "RecipientTypeDetails", "ArchiveGuid", "LitigationHoldDuration"):
        assert key in mbx
    assert mbx["ArchiveStatus"] == "None" and mbx["ArchiveGuid"] == "00000000-0000-0000-0000-000000000000"
    entry = logged(sim, before + 1)[before]
    assert entry["cmdlet"] == "Get-Mailbox" and entry["parameters"] == {"Identity": ADELE}


def test_paging_with_next_link_re_post() -> None:
    state = build_state({"tenant": {"domain": "paging.onmicrosoft.com"}, "generate": {"users": 25, "seed": 1}})
    with simulated_tenant(state, time_scale=0.001) as sim:
        wire = Wire(sim)
        url: str | None = f"{wire.base}/InvokeCommand"
        body = {"CmdletInput": {"CmdletName": "Get-Mailbox", "Parameters": {"ResultSize": "Unlimited"}}}
        pages: list[list[str]] = []
        while url:
            r = httpx.post(url, json=body, headers={**wire.headers, "Prefer": "odata.maxpagesize=10"})
            assert r.status_code == 200
            pages.append([m["Guid"] for m in r.json()["value"]])
            url = r.json().get("@odata.nextLink")
            assert url is None or "$skiptoken=" in url
        assert [len(p) for p in pages] == [10, 10, 5]
        assert len({g for p in pages for g in p}) == 25
        # ResultSize caps the total across pages; the default is 1000 with a warning past it.
        r = wire.invoke("Get-Mailbox", {"ResultSize": 12}, Prefer="odata.maxpagesize=10")
        nxt = httpx.post(
            r.json()["@odata.nextLink"],
            json={"CmdletInput": {"CmdletName": "Get-Mailbox", "Parameters": {"ResultSize": 12}}},
            headers=wire.headers,
        )
        assert len(r.json()["value"]) == 10 and len(nxt.json()["value"]) == 2 and "@odata.nextLink" not in nxt.json()


def test_filters_the_product_uses(sim: SimulatedTenant) -> None:
    wire = Wire(sim)
    shared = wire.invoke("Get-Mailbox", {"Filter": "RecipientTypeDetails -eq 'SharedMailbox'"}).json()["value"]
    assert [m["Alias"] for m in shared] == ["reception"]
    users = wire.invoke(
        "Get-Mailbox", {"Filter": "RecipientTypeDetails -eq 'UserMailbox' -and ArchiveStatus -eq 'None'"}
    )
    assert len(users.json()["value"]) == 5
    held = wire.invoke(
        "Get-Mailbox", {"Filter": "LitigationHoldEnabled -eq $false", "RecipientTypeDetails": ["UserMailbox"]}
    )
    assert len(held.json()["value"]) == 5
    bad = wire.invoke("Get-Mailbox", {"Filter": "Department -eq 'Sales'"})
    assert bad.status_code == 400 and "is not a recognized filterable property" in details(bad)[2]
    bad = wire.invoke("Get-Mailbox", {"Filter": "ArchiveStatus -gt 1"})
    assert bad.status_code == 400 and "Invalid filter syntax" in details(bad)[2]


def test_not_found_carries_the_exchange_details(sim: SimulatedTenant) -> None:
    r = Wire(sim).invoke("Set-Mailbox", {"Identity": "ghost@contoso.onmicrosoft.com", "AuditEnabled": True})
    assert r.status_code == 404
    error = r.json()["error"]
    assert error["code"] == "NotFound" and error["message"].startswith("|Microsoft.Exchange.Configuration.Tasks.")
    ex_id, exception, text = details(r)
    assert ex_id.startswith("Ex") and len(ex_id) == 8
    assert exception == "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException"
    assert text.startswith("The operation couldn't be performed because object 'ghost@contoso.onmicrosoft.com'")
    assert text.endswith(".PROD.OUTLOOK.COM'.")


def test_binding_refusals_reach_the_wire(sim: SimulatedTenant) -> None:
    wire = Wire(sim)
    r = wire.invoke("Set-Mailbox", {"Identity": ADELE, "DomainController": "dc1"})
    assert r.status_code == 400
    assert details(r)[1:] == [
        "System.Management.Automation.ParameterBindingException",
        "A parameter cannot be found that matches parameter name 'DomainController'.",
    ]
    r = wire.invoke("New-RetentionCompliancePolicy", {"Name": "x"})
    assert r.status_code == 400 and "is not recognized" in details(r)[2]


def test_tokens_and_tenants(sim: SimulatedTenant) -> None:
    wire = Wire(sim)
    body = {"CmdletInput": {"CmdletName": "Get-OrganizationConfig", "Parameters": {}}}
    assert httpx.post(f"{wire.base}/InvokeCommand", json=body).status_code == 401
    graph = (
        SimulatorCredential(token_url(sim.url, sim.state.tenant_id))
        .get_token("https://graph.microsoft.com/.default")
        .token
    )
    r = httpx.post(f"{wire.base}/InvokeCommand", json=body, headers={"Authorization": f"Bearer {graph}"})
    assert r.status_code == 401 and "WWW-Authenticate" in r.headers
    compliance = Wire(sim, "compliance")
    r = compliance.client.post(f"{compliance.base}/InvokeCommand", json=body, headers=wire.headers)
    assert r.status_code == 401  # an Exchange token is not a compliance token
    by_domain = f"{sim.url}/adminapi/beta/{sim.state.domain}/InvokeCommand"
    assert httpx.post(by_domain, json=body, headers=wire.headers).status_code == 200
    other = f"{sim.url}/adminapi/beta/{new_id()}/InvokeCommand"
    assert httpx.post(other, json=body, headers=wire.headers).status_code == 404


def test_batch_wire_format_and_limit(sim: SimulatedTenant) -> None:
    wire = Wire(sim)
    before = len(sim.requests)
    r = wire.batch(
        [
            ("Get-Mailbox", {"Identity": ADELE}),
            ("Get-Mailbox", {"Identity": "ghost"}),
            ("Set-Mailbox", {"Identity": ADELE, "HiddenFromAddressListsEnabled": True}),
        ]
    )
    assert r.status_code == 200
    responses = r.json()["responses"]
    assert [x["id"] for x in responses] == ["0", "1", "2"]
    assert [x["status"] for x in responses] == [200, 404, 200]
    assert responses[0]["body"]["value"][0]["UserPrincipalName"] == ADELE
    assert "ManagementObjectNotFoundException" in responses[1]["body"]["error"]["details"][0]["message"]
    assert logged(sim, before + 1)[before]["cmdlets"] == ["Get-Mailbox", "Get-Mailbox", "Set-Mailbox"]
    assert sim.state.mailbox_for(ADELE).hidden_from_address_lists  # type: ignore[union-attr]
    r = wire.batch([("Get-OrganizationConfig", {})] * 11)
    assert r.status_code == 400 and "maximum is 10" in r.json()["error"]["message"]
    assert wire.batch([("Get-OrganizationConfig", {})] * 10).status_code == 200


def test_archive_and_auto_expanding_archive_rules(sim: SimulatedTenant) -> None:
    sim.state.knobs.archive_status_none_share = 0.0  # the status reads true here (unreliable status: fidelity_part2)
    wire = Wire(sim)
    both = wire.invoke("Enable-Mailbox", {"Identity": ADELE, "Archive": True, "AutoExpandingArchive": True})
    assert both.status_code == 400 and "Parameter set cannot be resolved" in details(both)[2]
    early = wire.invoke("Enable-Mailbox", {"Identity": ADELE, "AutoExpandingArchive": True})
    assert early.status_code == 400 and "doesn't have an archive" in details(early)[2]
    created = wire.invoke("Enable-Mailbox", {"Identity": ADELE, "Archive": True})
    assert created.status_code == 200 and created.json()["value"][0]["ArchiveStatus"] == "Active"
    again = wire.invoke("Enable-Mailbox", {"Identity": ADELE, "Archive": True})
    assert again.status_code == 400 and "already has an archive" in details(again)[2]
    assert wire.invoke("Enable-Mailbox", {"Identity": ADELE, "AutoExpandingArchive": True}).status_code == 200
    twice = wire.invoke("Enable-Mailbox", {"Identity": ADELE, "AutoExpandingArchive": True})
    assert twice.status_code == 400 and "already been enabled" in details(twice)[2]
    # One-way: there is no parameter to turn it off.
    off = wire.invoke("Set-Mailbox", {"Identity": ADELE, "AutoExpandingArchive": False})
    assert off.status_code == 400 and "cannot be found" in details(off)[2]
    plain = wire.invoke("Enable-Mailbox", {"Identity": OFFICER})
    assert "Archive ParameterSet Enforcement Agent" in details(plain)[2]
    [mbx] = wire.invoke("Get-Mailbox", {"Identity": ADELE}).json()["value"]
    assert mbx["AutoExpandingArchiveEnabled"] is True and mbx["ArchiveGuid"] != "00000000-0000-0000-0000-000000000000"


def test_synced_user_is_refused_a_cloud_archive() -> None:
    state = build_state(
        {
            "tenant": {"domain": "hybrid.onmicrosoft.com"},
            "skus": [{"part_number": "EXCHANGEENTERPRISE", "enabled": 5}],
            "users": [{"upn": "sam@hybrid.onmicrosoft.com", "licenses": ["EXCHANGEENTERPRISE"], "synced": True}],
        }
    )
    with simulated_tenant(state, time_scale=0.001) as sim:
        r = Wire(sim).invoke("Enable-Mailbox", {"Identity": "sam@hybrid.onmicrosoft.com", "Archive": True})
        assert r.status_code == 400
        assert details(r)[2] == (
            "The following error occurred during validation in agent 'Windows LiveId Agent': 'Can't enable the "
            "archive for 'sam@hybrid.onmicrosoft.com' because this user object is synchronized with the on-premises "
            "directory. To enable a cloud-based archive mailbox for this user, you must use your on-premises "
            "Exchange admin center or Exchange Management Shell.'"
        )


def test_litigation_hold_needs_plan_2(sim: SimulatedTenant) -> None:
    wire = Wire(sim)
    refused = wire.invoke("Set-Mailbox", {"Identity": LEE, "LitigationHoldEnabled": True})
    assert refused.status_code == 400
    assert details(refused)[2] == (
        f"The action 'Set-Mailbox', 'LitigationHoldEnabled', can't be performed on the user '{LEE}'. Your Microsoft "
        "Exchange Online license doesn't permit you to put a litigation hold on this mailbox."
    )
    ok = wire.invoke("Set-Mailbox", {"Identity": ADELE, "LitigationHoldEnabled": True, "LitigationHoldDuration": 2555})
    assert ok.status_code == 200
    [mbx] = wire.invoke("Get-Mailbox", {"Identity": ADELE}).json()["value"]
    assert mbx["LitigationHoldEnabled"] is True and mbx["LitigationHoldDuration"] == "2555.00:00:00"
    assert mbx["LitigationHoldOwner"] == sim.state.signed_in_user and mbx["LitigationHoldDate"]
    wire.invoke(
        "Set-Mailbox",
        {"Identity": ADELE, "LitigationHoldDuration": "Unlimited", "AuditOwner": {"Add": ["MailboxLogin"]}},
    )
    [mbx] = wire.invoke("Get-Mailbox", {"Identity": ADELE}).json()["value"]
    assert mbx["LitigationHoldDuration"] == "Unlimited" and "MailboxLogin" in mbx["AuditOwner"]


def test_mailbox_appears_after_the_provisioning_delay(sim: SimulatedTenant) -> None:
    state = sim.state
    sku_id = KNOWN_SKUS["EXCHANGEENTERPRISE"][0]
    state.knobs.mailbox_provisioning_delay = 3600.0  # an hour of simulated time: 3.6 s real at this scale
    with state.lock:
        user = state.add_user(
            User(
                id=new_id(),
                user_principal_name="new.hire@contoso.onmicrosoft.com",
                display_name="New Hire",
                assigned_licenses=[sku_id],
            )
        )
        state.ensure_mailbox(user)
    wire = Wire(sim)
    assert wire.invoke("Get-Mailbox", {"Identity": user.user_principal_name}).status_code == 404
    listed = wire.invoke("Get-Mailbox", {"ResultSize": "Unlimited"}).json()["value"]
    assert user.id not in {m["ExternalDirectoryObjectId"] for m in listed}
    state.clock.advance(state.knobs.mailbox_provisioning_delay + 1)
    assert wire.invoke("Get-Mailbox", {"Identity": user.user_principal_name}).status_code == 200


def test_mailbox_permissions(sim: SimulatedTenant) -> None:
    wire = Wire(sim)
    grant = {"Identity": ADELE, "User": OFFICER, "AccessRights": ["FullAccess"], "AutoMapping": False}
    assert wire.invoke("Add-MailboxPermission", grant).status_code == 200
    again = wire.invoke("Add-MailboxPermission", grant)
    assert again.status_code == 200 and "already present" in again.json()["@adminapi.warnings"][0]
    perms = wire.invoke("Get-MailboxPermission", {"Identity": ADELE}).json()["value"]
    assert [p["User"] for p in perms] == ["NT AUTHORITY\\SELF", OFFICER]
    bad = wire.invoke("Add-MailboxPermission", {**grant, "AccessRights": ["SendAs"]})
    assert bad.status_code == 400 and "ValidateSet" in details(bad)[2]
    unknown = wire.invoke("Add-MailboxPermission", {**grant, "User": "nobody@contoso.onmicrosoft.com"})
    assert unknown.status_code == 404
    removed = wire.invoke(
        "Remove-MailboxPermission",
        {"Identity": ADELE, "User": OFFICER, "AccessRights": ["FullAccess"], "Confirm": False},
    )
    assert removed.status_code == 200
    gone = wire.invoke("Remove-MailboxPermission", {"Identity": ADELE, "User": OFFICER, "AccessRights": ["FullAccess"]})
    assert "ACE doesn't exist" in gone.json()["@adminapi.warnings"][0]


def test_org_and_audit_config(sim: SimulatedTenant) -> None:
    wire = Wire(sim)
    assert wire.invoke("Get-OrganizationConfig").json()["value"][0]["AuditDisabled"] is False
    assert wire.invoke("Set-OrganizationConfig", {"AuditDisabled": True}).status_code == 200
    assert wire.invoke("Get-OrganizationConfig").json()["value"][0]["AuditDisabled"] is True
    assert wire.invoke("Get-AdminAuditLogConfig").json()["value"][0]["UnifiedAuditLogIngestionEnabled"] is True
    assert wire.invoke("Get-OrganizationConfig", {"DomainController": "dc"}).status_code == 400
    users = wire.invoke("Get-User", {"ResultSize": "Unlimited"}).json()["value"]
    assert {u["RecipientTypeDetails"] for u in users} == {"User", "UserMailbox", "SharedMailbox"}
    recipient = wire.invoke("Get-Recipient", {"Identity": ADELE}).json()["value"][0]
    assert recipient["RecipientType"] == "UserMailbox"
    exo = wire.invoke("Get-EXOMailbox", {"Identity": ADELE, "PropertySets": ["Archive"]}).json()["value"][0]
    assert "ArchiveStatus" in exo and "LitigationHoldEnabled" not in exo


def test_throttling_answers_429_with_retry_after() -> None:
    with simulated_tenant("fresh", time_scale=0.001, exchange_rate=0.5, exchange_burst=3) as sim:
        wire = Wire(sim)
        statuses = [wire.invoke("Get-OrganizationConfig").status_code for _ in range(5)]
        assert statuses[:3] == [200, 200, 200] and 429 in statuses[3:]
        r = wire.invoke("Get-OrganizationConfig")
        assert r.status_code == 429 and float(r.headers["Retry-After"]) > 0
        assert r.json()["error"]["code"] == "TooManyRequests" and "throttled" in details(r)[2]
        items = wire.batch([("Get-OrganizationConfig", {})] * 4).json()["responses"]
        assert {x["status"] for x in items} == {429}
        assert all("Retry-After" in x["headers"] for x in items if x["status"] == 429)
        svc = service_for(sim.state)
        assert svc is not None and svc.stats["throttled"] >= 2


def test_concurrency_cap() -> None:
    with simulated_tenant("fresh", time_scale=0.001, exchange_concurrency=2) as sim:
        svc = service_for(sim.state)
        assert svc is not None
        svc.cmdlet_ms = (500.0, 500.0)
        wire = Wire(sim)

        async def burst() -> list[httpx.Response]:
            body = {"CmdletInput": {"CmdletName": "Get-OrganizationConfig", "Parameters": {}}}
            async with httpx.AsyncClient(headers=wire.headers, timeout=30) as client:
                return await asyncio.gather(*(client.post(f"{wire.base}/InvokeCommand", json=body) for _ in range(6)))

        responses = asyncio.run(burst())
        refused = [r for r in responses if r.status_code == 429]
        assert len([r for r in responses if r.status_code == 200]) == 2 and len(refused) == 4
        assert "maximum number of concurrent requests" in details(refused[0])[2]
        assert refused[0].headers["Retry-After"]
        assert svc.peak_in_flight["exchange"] == 2


@pytest.fixture(scope="module")
def thousand() -> Any:
    state = build_state({"tenant": {"domain": "policy.onmicrosoft.com"}, "generate": {"users": 1001, "seed": 2}})
    # the limit is what is tested here: distribution is instant (pending distribution: test_fidelity_part2)
    with simulated_tenant(state, time_scale=0.001, retention_distribution_delay=0.0) as sim:
        yield sim


def test_retention_policy_holds_at_most_1000_mailboxes(thousand: SimulatedTenant) -> None:
    wire = Wire(thousand, "compliance")
    upns = [u.user_principal_name for u in thousand.state.users.values() if u.id in thousand.state.mailboxes]
    assert len(upns) == 1001
    over = wire.invoke("New-RetentionCompliancePolicy", {"Name": "Too big", "ExchangeLocation": upns})
    assert over.status_code == 400 and "at most 1000 mailboxes" in details(over)[2]
    ok = wire.invoke("New-RetentionCompliancePolicy", {"Name": "Big", "ExchangeLocation": upns[:1000]})
    assert ok.status_code == 200 and len(ok.json()["value"][0]["ExchangeLocation"]) == 1000
    add = wire.invoke("Set-RetentionCompliancePolicy", {"Identity": "Big", "AddExchangeLocation": upns[1000:]})
    assert add.status_code == 400 and "at most 1000" in details(add)[2]
    swap = wire.invoke(
        "Set-RetentionCompliancePolicy",
        {"Identity": "Big", "RemoveExchangeLocation": upns[:1], "AddExchangeLocation": upns[1000:]},
    )
    assert swap.status_code == 200
    rule = wire.invoke(
        "New-RetentionComplianceRule",
        {"Name": "Big rule", "Policy": "Big", "RetentionDuration": 2555, "RetentionComplianceAction": "Keep"},
    )
    assert rule.status_code == 200 and rule.json()["value"][0]["RetentionDuration"] == "2555"
    [policy] = wire.invoke("Get-RetentionCompliancePolicy", {"Identity": "Big"}).json()["value"]
    names = [loc["Name"] for loc in policy["ExchangeLocation"]]  # location objects, read through .Name
    assert upns[1000] in names and upns[0] not in names
    assert wire.invoke("Remove-RetentionCompliancePolicy", {"Identity": "Big"}).status_code == 200
    assert wire.invoke("Get-RetentionComplianceRule", {"Identity": "Big rule"}).status_code == 404


def test_role_group_members(sim: SimulatedTenant) -> None:
    wire = Wire(sim, "compliance")
    groups = {g["Name"]: g for g in wire.invoke("Get-RoleGroup").json()["value"]}
    group = groups["ComplianceAdministrator"]["ExchangeObjectId"]  # built-in groups: by unique id (see test_fidelity)
    assert wire.invoke("Add-RoleGroupMember", {"Identity": group, "Member": OFFICER}).status_code == 200
    members = wire.invoke("Get-RoleGroupMember", {"Identity": group}).json()["value"]
    assert [m["Identity"] for m in members] == [OFFICER]
    again = wire.invoke("Add-RoleGroupMember", {"Identity": group, "Member": OFFICER})
    assert again.status_code == 400 and "already a member" in details(again)[2]
    unknown = wire.invoke("Add-RoleGroupMember", {"Identity": group, "Member": "nobody@contoso.onmicrosoft.com"})
    assert unknown.status_code == 404 and details(unknown)[1].endswith("ManagementObjectNotFoundException")
    assert wire.invoke("Get-RoleGroupMember", {"Identity": "NoSuchGroup"}).status_code == 404
