"""`login`, `logout`, `whoami`: sign-in as a first-class thing, as `az login` / `az account show` are.

- `login` signs in with the configured method now, so later commands don't prompt: browser and device
  code persist azure-identity's AuthenticationRecord (auth.save_record) next to its token cache; app-only
  methods just prove that a token can be had.
- `whoami` reads who is signed in from the tokens' own claims (tenant, principal, kind of sign-in,
  scopes or roles, expiry), per resource, without ever prompting.
- `logout` deletes the saved records and empties the token cache.

Against the simulator the tokens come from its token endpoint, with the scenario's signed-in principal's
claims, so `whoami` there shows what a real token would.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from m365archive.app.context import Env, sign_in_for
from m365archive.config import Config
from m365archive.errors import CommandError, Reason
from m365archive.tenant.tokens import token_claims

DELEGATED = ("browser", "device_code")


@dataclass
class TokenInfo:
    """What one access token says about the sign-in (from its claims; never the token itself)."""

    resource: str  # "Microsoft Graph", "Exchange Online"
    signed_in: bool
    audience: str = ""
    tenant: str = ""
    principal: str = ""  # a UPN, or "application <name>" for app-only
    kind: str = ""  # "delegated (user)" | "application"
    client_id: str = ""
    expires: str = ""  # ISO 8601 UTC
    expires_in_s: int = 0
    scopes: list[str] = field(default_factory=list)  # delegated permissions (scp)
    roles: list[str] = field(default_factory=list)  # application permissions (roles)
    problem: str = ""  # why there is no token (not signed in, refused)


@dataclass
class SignInStatus:
    tenant: str  # as configured
    cloud: str
    method: str
    simulator: bool
    tokens: list[TokenInfo]
    records: list[str] = field(default_factory=list)  # saved AuthenticationRecord files (login)

    @property
    def signed_in(self) -> bool:
        return bool(self.tokens) and all(t.signed_in for t in self.tokens)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["signed_in"] = self.signed_in
        return data


def token_info(resource: str, token: str, expires_on: int) -> TokenInfo:
    claims = token_claims(token)
    app_only = claims.get("idtyp") == "app" or ("roles" in claims and "scp" not in claims)
    if app_only:
        name = claims.get("app_displayname") or claims.get("appid") or claims.get("azp") or ""
        principal = f"application {name}".strip()
    else:
        principal = str(claims.get("upn") or claims.get("preferred_username") or claims.get("unique_name") or "")
    exp = int(claims.get("exp") or expires_on)
    return TokenInfo(
        resource=resource,
        signed_in=True,
        audience=str(claims.get("aud", "")),
        tenant=str(claims.get("tid", "")),
        principal=principal,
        kind="application" if app_only else "delegated (user)",
        client_id=str(claims.get("appid") or claims.get("azp") or ""),
        expires=datetime.fromtimestamp(exp, UTC).isoformat(timespec="seconds"),
        expires_in_s=max(0, exp - int(time.time())),
        scopes=sorted(str(claims.get("scp", "")).split()),
        roles=sorted(str(r) for r in claims.get("roles", []) or []),
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


async def _tokens(credential: Any, resources: list[tuple[str, str]]) -> list[TokenInfo]:
    infos = []
    for name, scope in resources:
        try:
            token = await credential.get_token(scope)
        except Exception as exc:  # azure-identity raises many types; each means "no token for this"
            from azure.identity import AuthenticationRequiredError  # azure-identity >= 1.17 has it

            if isinstance(exc, AuthenticationRequiredError):
                problem = "not signed in: run `m365archive login`"
            else:
                problem = _first_line(exc)
            infos.append(TokenInfo(resource=name, signed_in=False, problem=problem))
            continue
        infos.append(token_info(name, token.token, token.expires_on))
    return infos


async def _simulator_status(env: Env, config: Config) -> SignInStatus:
    from m365archive.tenant.session import SimulatorUnreachable, discover_simulator
    from m365archive.tenant.simcredential import AsyncSimulatorCredential, token_url

    assert env.sim_url is not None
    try:
        endpoints = await asyncio.to_thread(discover_simulator, env.sim_url)
    except SimulatorUnreachable as exc:
        raise CommandError(str(exc), Reason.ERROR, "start one with `m365archive sim serve --scenario fresh`") from None
    credential = AsyncSimulatorCredential(endpoints.token_url or token_url(env.sim_url, endpoints.tenant_id))
    tokens = await _tokens(
        credential, [("Microsoft Graph", endpoints.graph_scope), ("Exchange Online", endpoints.exchange_scope)]
    )
    return SignInStatus(config.tenant.id, config.tenant.cloud, "simulator", True, tokens)


async def _real_status(config: Config, *, interactive: bool) -> SignInStatus:
    from m365archive.tenant.auth import AuthError, describe, make_credential
    from m365archive.tenant.clouds import get_cloud

    cloud = get_cloud(config.tenant.cloud)
    sign_in = sign_in_for(config, interactive=interactive)
    try:
        credential = make_credential(sign_in, cloud)
    except AuthError as exc:
        raise CommandError(str(exc), Reason.AUTH) from None
    try:
        tokens = await _tokens(
            credential, [("Microsoft Graph", cloud.graph_scope), ("Exchange Online", cloud.exchange_scope)]
        )
    finally:
        await credential.close()
    return SignInStatus(config.tenant.id, cloud.name, describe(sign_in), False, tokens)


async def whoami(env: Env, config: Config) -> SignInStatus:
    """Who is signed in, per resource, from the tokens' claims; never prompts."""
    if env.sim_url:
        return await _simulator_status(env, config)
    return await _real_status(config, interactive=False)


async def login(env: Env, config: Config, device_code_prompt: Any = None) -> SignInStatus:
    """Sign in now with the configured method; browser and device code save the account's record."""
    if env.sim_url:
        return await _simulator_status(env, config)
    from m365archive.tenant.auth import AuthError, delegated_client, delegated_logins, save_record
    from m365archive.tenant.clouds import get_cloud

    sign_in = sign_in_for(config, interactive=True)
    records: list[str] = []
    if sign_in.method.value in DELEGATED:
        cloud = get_cloud(config.tenant.cloud)
        for client_id, scopes in delegated_logins(sign_in, cloud):
            env.progress(f"signing in to {config.tenant.id} with app {client_id}")
            try:
                credential = delegated_client(sign_in, cloud, client_id, device_code_prompt, record=None)
                record = await asyncio.to_thread(credential.authenticate, scopes=list(scopes))
            except AuthError as exc:
                raise CommandError(str(exc), Reason.AUTH) from None
            except Exception as exc:  # azure-identity's many error types: all mean sign-in failed
                raise CommandError(f"sign-in failed: {_first_line(exc)}", Reason.AUTH) from None
            records.append(str(save_record(sign_in, client_id, record)))
    status = await _real_status(config, interactive=False)
    status.records = records
    return status


def logout(env: Env, config: Config) -> dict[str, Any]:
    """Forget the sign-in: the saved records for this tenant and the token cache's contents."""
    if env.sim_url:
        return {"records_removed": [], "caches_cleared": [], "note": "the simulator's tokens live only in memory"}
    from m365archive.tenant.auth import clear_token_cache, remove_records

    sign_in = sign_in_for(config, interactive=False)
    removed = [str(p) for p in remove_records(sign_in)]
    cleared = clear_token_cache(sign_in)
    note = ""
    if sign_in.method.value == "azure_cli":
        note = "this tool signs in through the Azure CLI: run `az logout` to sign out there"
    elif sign_in.method.value == "managed_identity":
        note = "a managed identity has no sign-in to forget"
    return {"records_removed": removed, "caches_cleared": cleared, "note": note}
