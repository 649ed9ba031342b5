"""Issue 13 items 7 and 8: the simulator issues the tokens (claims from the scenario's principal), refuses
expired or revoked ones as Graph and Exchange do, the gateways re-acquire and resend once; writes the
token's permissions don't allow are refused."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from m365archive.result import ExitCode
from m365archive.sim.server import SimulatedTenant, simulated_tenant
from m365archive.tenant.exchange import Cmdlet, TransportError
from m365archive.tenant.exchange_rest import EXCHANGE_SCOPE, RestExchangeRunner
from m365archive.tenant.graph import GraphGateway
from m365archive.tenant.graph_types import GraphError, GraphRequest
from m365archive.tenant.simcredential import AsyncSimulatorCredential, SimulatorCredential, token_url
from tests.clihelp import m365

GRAPH = "https://graph.microsoft.com"
EXCHANGE = "https://outlook.office365.com"
# Simulated seconds (100 s of wall time) after which the services refuse a token; the tests advance the clock.
EARLY = 100_000.0
CATCHALL = "thirdpartydata@contoso.onmicrosoft.com"


def claims_of(token: str) -> dict[str, Any]:
    """What the product may do with a token: read its claims, never check them (it has no key)."""
    return dict(jwt.decode(token, options={"verify_signature": False}))


def bearer(sim: SimulatedTenant, resource: str) -> str:
    return SimulatorCredential(token_url(sim.url, sim.state.tenant_id)).get_token(f"{resource}/.default").token


def unsigned(claims: dict[str, Any]) -> str:
    """A token minted by the client itself, as the product used to (alg none)."""

    def b64(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."


def graph_get(sim: SimulatedTenant, token: str, path: str = "/subscribedSkus") -> httpx.Response:
    return httpx.get(f"{sim.url}/v1.0{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30)


def invoke(sim: SimulatedTenant, token: str, cmdlet: str = "Get-OrganizationConfig") -> httpx.Response:
    return httpx.post(
        f"{sim.url}/adminapi/beta/{sim.state.tenant_id}/InvokeCommand",
        json={"CmdletInput": {"CmdletName": cmdlet, "Parameters": {}}},
        headers={"Authorization": f"Bearer {token}", "X-AnchorMailbox": f"UPN:{sim.state.signed_in_user}"},
        timeout=30,
    )


# -- the issuer ------------------------------------------------------------------------------------------------


def test_the_discovery_document_names_the_token_endpoint_and_tokens_carry_the_principal() -> None:
    with simulated_tenant("fresh", time_scale=0.001) as sim:
        doc = httpx.get(sim.url + "/", timeout=10).json()
        assert doc["services"]["token"] == token_url(sim.url, sim.state.tenant_id)
        claims = claims_of(bearer(sim, GRAPH))
        assert claims["aud"] == GRAPH and claims["tid"] == sim.state.tenant_id
        assert claims["upn"] == sim.state.signed_in_user and claims["idtyp"] == "user" and claims["oid"]
        assert "User-PasswordProfile.ReadWrite.All" in claims["scp"].split()
        assert claims["exp"] - claims["iat"] == int(sim.state.knobs.token_lifetime)
        assert graph_get(sim, bearer(sim, GRAPH)).status_code == 200


def test_an_app_only_scenario_gets_an_app_token_with_roles(tmp_path: Path) -> None:
    with simulated_tenant("fresh", time_scale=0.001, principal_scopes=("Exchange.ManageAsApp",)) as sim:
        sim.state.signed_in_user = None
        claims = claims_of(bearer(sim, EXCHANGE))
        assert claims["idtyp"] == "app" and claims["appid"] and "upn" not in claims
        assert claims["roles"] == ["Exchange.ManageAsApp"]


def test_the_credential_caches_like_azure_identity_and_a_claims_request_bypasses_the_cache() -> None:
    with simulated_tenant("fresh", time_scale=0.001) as sim:
        credential = SimulatorCredential(token_url(sim.url, sim.state.tenant_id))
        first = credential.get_token(f"{GRAPH}/.default")
        assert credential.get_token(f"{GRAPH}/.default") is first and credential.fetched == 1
        fresh = credential.get_token(f"{GRAPH}/.default", claims='{"access_token":{"nbf":{"essential":true}}}')
        assert fresh.token != first.token and credential.fetched == 2


def test_a_token_the_client_minted_itself_is_refused() -> None:
    with simulated_tenant("fresh", time_scale=0.001) as sim:
        forged = unsigned({"aud": GRAPH, "tid": sim.state.tenant_id, "exp": 4_000_000_000})
        answer = graph_get(sim, forged)
        assert answer.status_code == 401 and answer.json()["error"]["code"] == "InvalidAuthenticationToken"
        assert invoke(sim, forged).status_code == 401


# -- server-side early expiry ----------------------------------------------------------------------------------


def test_the_naive_client_gets_graphs_and_exchanges_answer_for_an_expired_token() -> None:
    with simulated_tenant("fresh", time_scale=0.001, token_early_expiry=EARLY) as sim:
        graph, exchange = bearer(sim, GRAPH), bearer(sim, EXCHANGE)
        assert graph_get(sim, graph).status_code == 200 and invoke(sim, exchange).status_code == 200
        sim.state.clock.advance(EARLY + 1)
        answer = graph_get(sim, graph)
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "InvalidAuthenticationToken"
        assert answer.json()["error"]["message"] == "Lifetime validation failed, the token is expired."
        refused = invoke(sim, exchange)
        assert refused.status_code == 401 and 'error="invalid_token"' in refused.headers["WWW-Authenticate"]


def test_without_early_expiry_a_token_is_honoured_until_its_exp() -> None:
    with simulated_tenant("fresh", time_scale=0.001, token_early_expiry=0.0) as sim:
        graph, exchange = bearer(sim, GRAPH), bearer(sim, EXCHANGE)
        sim.state.clock.advance(EARLY * 100)
        assert graph_get(sim, graph).status_code == 200 and invoke(sim, exchange).status_code == 200


def _resends(sim: SimulatedTenant, service: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(refused request, the next request like it) for each 401 of `service` in the request log."""
    log = [e for e in sim.requests if e.get("service") == service]
    log.sort(key=lambda e: e["time"])

    def key(entry: dict[str, Any]) -> str:
        # A refused request's body is not read (authentication comes first), so it is matched by its target.
        return json.dumps([entry["method"], entry["path"], entry.get("query")])

    pairs = []
    for i, entry in enumerate(log):
        if entry["status"] == 401:
            following = [e for e in log[i + 1 :] if key(e) == key(entry)]
            assert following, f"a refused {entry['method']} {entry['path']} was never resent"
            pairs.append((entry, following[0]))
    return pairs


def _items_resent_once(sim: SimulatedTenant) -> None:
    """Each Exchange $batch item refused for its token is sent once more, and that send is not refused."""
    sends = [
        (key, status)
        for e in sorted(sim.requests, key=lambda e: e["time"])
        if e["path"].endswith("$batch")
        for key, status in zip(e.get("items", []), e.get("itemStatuses", []), strict=True)
    ]
    for n, (key, status) in enumerate(sends):
        if status == 401:
            following = [s for k, s in sends[n + 1 :] if k == key]
            assert following and following[0] != 401, f"a refused $batch item was not resent once: {key}"


def test_the_gateways_reacquire_and_resend_once() -> None:
    with simulated_tenant("fresh", time_scale=0.001, token_early_expiry=EARLY) as sim:
        credential = AsyncSimulatorCredential(token_url(sim.url, sim.state.tenant_id))

        async def body() -> None:
            gateway = GraphGateway(sim.url + "/v1.0", credential, scopes=[f"{GRAPH}/.default"], retry_delay=0.0)
            runner = RestExchangeRunner(sim.url, sim.state.tenant_id, credential, scope=EXCHANGE_SCOPE)
            try:
                assert await gateway.subscribed_skus()
                assert (await runner.invoke(Cmdlet("Get-OrganizationConfig", {}))).ok
                sim.state.clock.advance(EARLY + 1)
                assert await gateway.subscribed_skus()  # refused, re-acquired, resent
                outcomes = await runner.invoke_many([Cmdlet("Get-OrganizationConfig", {})] * 2)  # a $batch
                assert all(o.ok for o in outcomes)
                assert gateway.token_resends == 1 and runner.stats.token_resends == 1
            finally:
                await gateway.aclose()
                await runner.aclose()

        asyncio.run(body())
        for service in ("graph", "exchange"):
            [(refused, resent)] = _resends(sim, service)
            assert resent["status"] == 200 and resent["tokenId"] != refused["tokenId"]


def test_a_write_that_is_not_safe_to_repeat_is_not_resent_and_not_confirmed() -> None:
    with simulated_tenant("fresh", time_scale=0.001, token_early_expiry=EARLY) as sim:
        credential = AsyncSimulatorCredential(token_url(sim.url, sim.state.tenant_id))

        async def body() -> GraphError:
            gateway = GraphGateway(sim.url + "/v1.0", credential, scopes=[f"{GRAPH}/.default"], retry_delay=0.0)
            try:
                await gateway.subscribed_skus()
                sim.state.clock.advance(EARLY + 1)
                create = GraphRequest("POST", "/servicePrincipals", {"appId": "8dfbc50b-2111-4d03-9b4d-dd0d00aae7a2"})
                with pytest.raises(GraphError) as caught:
                    await gateway.send(create, resend=False)
                assert gateway.token_resends == 0
                return caught.value
            finally:
                await gateway.aclose()

        error = asyncio.run(body())
        assert error.status == 401 and "not resent" in error.message and "not confirmed" in error.message
        assert [e["status"] for e in sim.requests if e["method"] == "POST" and e.get("service") == "graph"] == [401]


def test_a_resend_refused_again_is_an_auth_failure_not_a_loop() -> None:
    with simulated_tenant("fresh", time_scale=0.001, token_early_expiry=EARLY) as sim:
        credential = AsyncSimulatorCredential(token_url(sim.url, sim.state.tenant_id))

        async def body() -> None:
            runner = RestExchangeRunner(sim.url, sim.state.tenant_id, credential, scope=EXCHANGE_SCOPE)
            try:
                assert (await runner.invoke(Cmdlet("Get-OrganizationConfig", {}))).ok
                sim.state.knobs.token_early_expiry = 1e-9  # every token is refused at once, new ones too
                sim.state.clock.advance(1.0)
                with pytest.raises(TransportError) as caught:
                    await runner.invoke(Cmdlet("Get-OrganizationConfig", {}))
                assert caught.value.auth and runner.stats.token_resends == 1
            finally:
                await runner.aclose()

        asyncio.run(body())
        assert [e["status"] for e in sim.requests if e.get("service") == "exchange"] == [200, 401, 401]


def test_an_apply_with_early_expiry_completes_in_one_run_resending_once_per_refusal(tmp_path: Path) -> None:
    # Tokens are refused 0.5 s (wall) after they were issued: a fresh setup lasts longer than that on Graph
    # and on Exchange, and a resend takes far less.
    with simulated_tenant(
        "fresh", time_scale=0.001, token_early_expiry=500.0, mailbox_provisioning_delay=2000.0
    ) as sim:
        run = m365(sim.url, "setup", "--yes", "--password-file", str(tmp_path / "pw"))
        assert run.code == ExitCode.OK, run.stdout + run.stderr
        for service in ("graph", "exchange"):
            pairs = _resends(sim, service)
            assert pairs, f"no token was refused on {service}"
            for refused, resent in pairs:
                assert resent["status"] != 401 and resent["tokenId"] != refused["tokenId"]
        _items_resent_once(sim)
        again = m365(sim.url, "setup", "--dry-run", "--detailed-exitcode")
        assert again.code == ExitCode.OK, again.stdout + again.stderr


# -- permissions -----------------------------------------------------------------------------------------------


def _reset_password(sim: SimulatedTenant) -> httpx.Response:
    """PATCH a password of a user who holds the Exchange Administrator role (the catch-all after setup)."""
    user = next(iter(sim.state.users.values()))
    from m365archive.sim.state import RoleAssignment

    with sim.state.lock:
        sim.state.role_assignments["ra"] = RoleAssignment("ra", user.id, "29232cdf-9323-42fd-ade2-1d097af3e4de")
    return httpx.patch(
        f"{sim.url}/v1.0/users/{user.id}",
        json={"passwordProfile": {"password": "Xx-1234567890-yY", "forceChangePasswordNextSignIn": False}},
        headers={"Authorization": f"Bearer {bearer(sim, GRAPH)}"},
        timeout=30,
    )


def test_the_default_principal_may_reset_an_administrators_password() -> None:
    with simulated_tenant("fresh", time_scale=0.001) as sim:
        assert _reset_password(sim).status_code == 204


@pytest.mark.parametrize(
    ("scopes", "roles"),
    [
        (("User.ReadWrite.All",), ("Global Administrator",)),  # no password scope
        (("User-PasswordProfile.ReadWrite.All",), ("User Administrator",)),  # not privileged for an admin
    ],
)
def test_a_password_reset_the_token_does_not_allow_gets_graphs_403(
    scopes: tuple[str, ...], roles: tuple[str, ...]
) -> None:
    with simulated_tenant("fresh", time_scale=0.001, principal_scopes=scopes, principal_roles=roles) as sim:
        answer = _reset_password(sim)
        assert answer.status_code == 403
        assert answer.json()["error"]["code"] == "Authorization_RequestDenied"
        assert answer.json()["error"]["message"] == "Insufficient privileges to complete the operation."


def test_without_the_permission_check_any_valid_token_may_write() -> None:
    with simulated_tenant(
        "fresh", time_scale=0.001, principal_scopes=("User.Read.All",), principal_roles=(), permission_check=False
    ) as sim:
        assert _reset_password(sim).status_code == 204


def test_setup_with_too_few_scopes_is_refused_by_the_service(tmp_path: Path) -> None:
    with simulated_tenant(
        "fresh", time_scale=0.001, principal_scopes=("User.Read.All", "Organization.Read.All")
    ) as sim:
        # setup's plan-time permission check stops it before the service has to (exit 7, nothing sent) ...
        run = m365(sim.url, "setup", "--yes", "--password-file", str(tmp_path / "pw"))
        assert run.code == ExitCode.PREREQUISITE, run.stdout + run.stderr
        assert "User.ReadWrite.All missing" in run.stdout + run.stderr
        assert sim.state.user_by_upn(CATCHALL) is None and sim.writes() == []
        # ... and the service refuses the write itself all the same
        answer = httpx.post(
            f"{sim.url}/v1.0/users",
            json={"accountEnabled": True, "displayName": "x", "mailNickname": "x", "userPrincipalName": CATCHALL},
            headers={"Authorization": f"Bearer {bearer(sim, GRAPH)}"},
            timeout=30,
        )
        assert answer.status_code == 403 and answer.json()["error"]["code"] == "Authorization_RequestDenied"


def _app_only_call(sim: SimulatedTenant) -> int:
    sim.state.signed_in_user = None  # the scenario's principal is an application
    token = bearer(sim, EXCHANGE)
    return httpx.post(
        f"{sim.url}/adminapi/beta/{sim.state.tenant_id}/InvokeCommand",
        json={"CmdletInput": {"CmdletName": "Get-OrganizationConfig", "Parameters": {}}},
        headers={
            "Authorization": f"Bearer {token}",
            "X-AnchorMailbox": f"APP:SystemMailbox{{bb558c35-97f1-4cb9-8ff7-d53741dc928c}}@{sim.state.tenant_id}",
        },
        timeout=30,
    ).status_code


def test_app_only_exchange_needs_manage_as_app_and_an_entra_role() -> None:
    with simulated_tenant("fresh", time_scale=0.001) as sim:
        assert _app_only_call(sim) == 200  # default: Exchange.ManageAsApp and Global Administrator
    with simulated_tenant("fresh", time_scale=0.001, principal_scopes=("User.Read.All",)) as sim:
        assert _app_only_call(sim) == 401  # no Exchange.ManageAsApp
    with simulated_tenant(
        "fresh", time_scale=0.001, principal_scopes=("Exchange.ManageAsApp",), principal_roles=()
    ) as sim:
        assert _app_only_call(sim) == 403  # ManageAsApp without an Entra role
    with simulated_tenant("fresh", time_scale=0.001, principal_roles=(), permission_check=False) as sim:
        assert _app_only_call(sim) == 200
