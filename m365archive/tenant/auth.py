"""Sign-in: one azure-core AsyncTokenCredential for every way an operator can authenticate.

azure.identity is imported inside the functions that need it, so `import m365archive.tenant.auth`
stays cheap (the CLI's --help path imports it).

Delegated sign-in (browser, device code) without `--client-id` uses Microsoft's own public clients,
one per resource, as their PowerShell modules do: "Microsoft Graph Command Line Tools" for Graph and
"Microsoft Exchange REST API Based PowerShell" for Exchange Online and Security & Compliance. A token
for one resource can't be had from the other's app, so the operator signs in once per app (the
persistent cache keeps both). With an app registration of your own, one sign-in covers both.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from m365archive.permissions import delegated_scopes
from m365archive.tenant.clouds import Cloud
from m365archive.wellknown import EXCHANGE_POWERSHELL_CLIENT_ID, GRAPH_POWERSHELL_CLIENT_ID

if TYPE_CHECKING:
    import asyncio
    from datetime import datetime

    from azure.core.credentials import AccessToken
    from azure.core.credentials_async import AsyncTokenCredential
    from azure.identity import (
        AuthenticationRecord,
        DeviceCodeCredential,
        InteractiveBrowserCredential,
        TokenCachePersistenceOptions,
    )


# Delegated Graph permissions the steps need (m365archive/permissions.py is the one table). Graph
# PowerShell's `.default` yields only what was consented to it before, so with that client we ask for
# these by name (consent is requested once).
GRAPH_DELEGATED_SCOPES = delegated_scopes()

CLIENT_SECRET_ENV = ("M365ARCHIVE_CLIENT_SECRET", "AZURE_CLIENT_SECRET")


class AuthError(Exception):
    """Sign-in can't be set up as asked; the message says how to fix it."""


class AuthMethod(StrEnum):
    BROWSER = "browser"
    DEVICE_CODE = "device_code"
    CERTIFICATE = "certificate"
    SECRET = "secret"
    MANAGED_IDENTITY = "managed_identity"
    AZURE_CLI = "azure_cli"
    ENVIRONMENT = "environment"
    AZURE_PIPELINES = "azure_pipelines"
    GITHUB_OIDC = "github_oidc"
    SIMULATOR = "simulator"


_DESCRIPTIONS = {
    AuthMethod.BROWSER: "browser sign-in",
    AuthMethod.DEVICE_CODE: "device code",
    AuthMethod.CERTIFICATE: "certificate",
    AuthMethod.SECRET: "client secret",
    AuthMethod.MANAGED_IDENTITY: "managed identity",
    AuthMethod.AZURE_CLI: "Azure CLI",
    AuthMethod.ENVIRONMENT: "environment credential",
    AuthMethod.AZURE_PIPELINES: "Azure Pipelines service connection",
    AuthMethod.GITHUB_OIDC: "GitHub Actions OIDC",
    AuthMethod.SIMULATOR: "simulator",
}


@dataclass
class SignIn:
    """How to sign in. Never holds a secret: secrets come from the environment or the keyring."""

    method: AuthMethod
    tenant_id: str
    client_id: str | None = None  # your app registration; required for certificate and secret
    certificate_path: str | Path | None = None  # PEM or PKCS12, with the private key
    certificate_password_env: str | None = None  # name of the variable holding the PFX password
    managed_identity_client_id: str | None = None  # user-assigned identity; None = system-assigned
    login_hint: str | None = None  # UPN pre-filled in the browser
    service_connection_id: str | None = None  # azure-pipelines: the Azure Resource Manager service connection
    allow_unencrypted_cache: bool = False
    cache_name: str = "m365archive"
    # False: never open a browser or print a device code; a command that needs a new sign-in fails
    # with "run `m365archive login`" (azure-identity's AuthenticationRequiredError) instead.
    interactive: bool = True


def describe(sign_in: SignIn) -> str:
    """One line for reports, e.g. "device code as contoso.onmicrosoft.com". Never a secret."""
    text = _DESCRIPTIONS[sign_in.method]
    if sign_in.method in (AuthMethod.CERTIFICATE, AuthMethod.SECRET) and sign_in.client_id:
        text += f" (app {sign_in.client_id})"
    elif sign_in.method is AuthMethod.MANAGED_IDENTITY and sign_in.managed_identity_client_id:
        text += f" ({sign_in.managed_identity_client_id})"
    elif sign_in.login_hint:
        text += f" ({sign_in.login_hint})"
    return f"{text} as {sign_in.tenant_id}"


# (verification_uri, user_code, expires_on), as azure-identity's DeviceCodeCredential calls it
DeviceCodePrompt = Callable[[str, str, "datetime"], None]


def make_credential(
    sign_in: SignIn, cloud: Cloud, *, device_code_prompt: DeviceCodePrompt | None = None
) -> AsyncTokenCredential:
    """An async credential for `sign_in` against `cloud`'s login host.

    Raises AuthError for a configuration that can't work (missing client id or certificate, no
    client secret anywhere, no secret store for the token cache), before any network call.
    """
    method = AuthMethod(sign_in.method)
    if method is AuthMethod.SIMULATOR:
        from m365archive.tenant.simcredential import AsyncSimulatorCredential, token_url

        # A simulator's token endpoint is on its own origin, in Entra's shape (`/{tenant}/oauth2/v2.0/token`).
        return cast("AsyncTokenCredential", AsyncSimulatorCredential(token_url(cloud.login_url, sign_in.tenant_id)))
    if method is AuthMethod.MANAGED_IDENTITY:
        from azure.identity.aio import ManagedIdentityCredential

        # Managed identity tokens come from the host (IMDS, App Service...), not from a login host.
        return ManagedIdentityCredential(client_id=sign_in.managed_identity_client_id)
    if method is AuthMethod.AZURE_CLI:
        from azure.identity.aio import AzureCliCredential

        # `az cloud set` decides the cloud; `az login` the account.
        return AzureCliCredential(tenant_id=sign_in.tenant_id)
    if method is AuthMethod.ENVIRONMENT:
        from azure.identity.aio import EnvironmentCredential

        return EnvironmentCredential(authority=cloud.authority_host)
    if method is AuthMethod.AZURE_PIPELINES:
        return _pipelines_credential(sign_in, cloud)
    if method is AuthMethod.GITHUB_OIDC:
        return _github_oidc_credential(sign_in, cloud)
    if method is AuthMethod.CERTIFICATE:
        return _certificate_credential(sign_in, cloud)
    if method is AuthMethod.SECRET:
        return _secret_credential(sign_in, cloud)
    return _delegated_credential(sign_in, cloud, method, device_code_prompt)


def cache_options(sign_in: SignIn) -> TokenCachePersistenceOptions:
    """Persistent token cache options, or AuthError when tokens could only be kept in plain text.

    azure-identity finds out only at the first token request (and then raises ValueError from deep
    inside); we look for the secret store up front and say what to do.
    """
    from azure.identity import TokenCachePersistenceOptions

    if not sign_in.allow_unencrypted_cache:
        problem = secret_store_problem()
        if problem is not None:
            raise AuthError(
                "no secret store on this machine to keep sign-in tokens encrypted "
                f"({problem}); set allow_unencrypted_token_cache = true under [auth] in the config to keep "
                "tokens in a file readable only by you, or install/unlock a keyring (libsecret)"
            )
    return TokenCachePersistenceOptions(
        name=sign_in.cache_name, allow_unencrypted_storage=sign_in.allow_unencrypted_cache
    )


def secret_store_problem() -> str | None:
    """Why azure-identity can't encrypt its token cache here, or None when it can.

    Windows (DPAPI) and macOS (Keychain) always can. On Linux msal-extensions needs libsecret
    through PyGObject and a running Secret Service on D-Bus; its own `trial_run` checks both.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        from msal_extensions.libsecret import trial_run  # type: ignore[import-untyped]

        trial_run()
    except Exception as exc:  # ImportError (no PyGObject), GLib errors, its own RuntimeError
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return first_line
    return None


def find_client_secret(tenant_id: str, client_id: str) -> str:
    """The app's client secret from the environment, else from the keyring; AuthError if neither."""
    for name in CLIENT_SECRET_ENV:
        value = os.environ.get(name)
        if value:
            return value
    from m365archive import secrets

    keyring_note = ""
    try:
        stored = secrets.client_secret(tenant_id, client_id)
    except secrets.NoKeyringError:
        stored, keyring_note = None, " (no keyring backend on this machine)"
    if stored:
        return stored
    raise AuthError(
        f"no client secret for app {client_id}: set {' or '.join(CLIENT_SECRET_ENV)}, or store it in "
        f"the keyring as service {secrets.SERVICE!r}, user "
        f"{secrets.app_username(tenant_id, client_id)!r}{keyring_note}. "
        "Secrets are never read from the command line."
    )


def _require_client_id(sign_in: SignIn) -> str:
    if not sign_in.client_id:
        raise AuthError(
            f"{_DESCRIPTIONS[sign_in.method]} sign-in needs --client-id: the application (client) id "
            "of your app registration"
        )
    return sign_in.client_id


def _certificate_credential(sign_in: SignIn, cloud: Cloud) -> AsyncTokenCredential:
    from azure.identity.aio import CertificateCredential

    client_id = _require_client_id(sign_in)
    if sign_in.certificate_path is None:
        raise AuthError("certificate sign-in needs --certificate PATH (PEM or PFX with its private key)")
    path = Path(sign_in.certificate_path).expanduser()
    if not path.is_file():
        raise AuthError(f"certificate file not found: {path}")
    password: str | None = None
    if sign_in.certificate_password_env:
        password = os.environ.get(sign_in.certificate_password_env)
        if password is None:
            raise AuthError(f"environment variable {sign_in.certificate_password_env} is not set")
    try:
        return CertificateCredential(
            sign_in.tenant_id,
            client_id,
            certificate_path=str(path),
            password=password,
            authority=cloud.authority_host,
            cache_persistence_options=cache_options(sign_in),
        )
    except ValueError as exc:  # unreadable file, wrong password, no private key
        raise AuthError(f"can't use certificate {path}: {exc}") from exc


def _secret_credential(sign_in: SignIn, cloud: Cloud) -> AsyncTokenCredential:
    from azure.identity.aio import ClientSecretCredential

    client_id = _require_client_id(sign_in)
    return ClientSecretCredential(
        sign_in.tenant_id,
        client_id,
        find_client_secret(sign_in.tenant_id, client_id),
        authority=cloud.authority_host,
        cache_persistence_options=cache_options(sign_in),
    )


# Azure Pipelines hands a job its OIDC request token as System.AccessToken, mapped into the environment
# explicitly (`env: SYSTEM_ACCESSTOKEN: $(System.AccessToken)`); azure-identity's AzurePipelinesCredential takes it.
PIPELINES_TOKEN_ENV = "SYSTEM_ACCESSTOKEN"
# GitHub Actions gives a job with `permissions: id-token: write` these two variables to ask for an OIDC token.
GITHUB_OIDC_ENV = ("ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN")
# The audience Entra's workload identity federation expects (azure/login asks for the same).
FEDERATION_AUDIENCE = "api://AzureADTokenExchange"


def _pipelines_credential(sign_in: SignIn, cloud: Cloud) -> AsyncTokenCredential:
    """Workload identity federation from an Azure DevOps service connection: no secret is stored anywhere."""
    from azure.identity.aio import AzurePipelinesCredential

    client_id = _require_client_id(sign_in)
    if not sign_in.service_connection_id:
        raise AuthError(
            "azure-pipelines sign-in needs service_connection_id under [auth]: the id of the Azure Resource "
            "Manager service connection (workload identity federation) the pipeline uses"
        )
    token = os.environ.get(PIPELINES_TOKEN_ENV)
    if not token:
        raise AuthError(
            f"azure-pipelines sign-in needs {PIPELINES_TOKEN_ENV} in the environment: map it in the step "
            f"(env: {PIPELINES_TOKEN_ENV}: $(System.AccessToken))"
        )
    return AzurePipelinesCredential(
        tenant_id=sign_in.tenant_id,
        client_id=client_id,
        service_connection_id=sign_in.service_connection_id,
        system_access_token=token,
        authority=cloud.authority_host,
    )


def github_oidc_token(audience: str = FEDERATION_AUDIENCE) -> str:
    """The job's GitHub Actions OIDC token for `audience` (called by azure-identity when it needs a token)."""
    import json
    import urllib.parse
    import urllib.request

    url, bearer = (os.environ.get(name, "") for name in GITHUB_OIDC_ENV)
    if not url or not bearer:
        raise AuthError("no GitHub Actions OIDC token: the job needs `permissions: id-token: write`")
    separator = "&" if "?" in url else "?"
    request = urllib.request.Request(
        f"{url}{separator}audience={urllib.parse.quote(audience)}", headers={"Authorization": f"bearer {bearer}"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        value = json.loads(answer.read()).get("value")
    if not value:
        raise AuthError("GitHub Actions answered without an OIDC token")
    return str(value)


def _github_oidc_credential(sign_in: SignIn, cloud: Cloud) -> AsyncTokenCredential:
    """A client assertion over the GitHub Actions OIDC token (a federated credential on the app registration)."""
    from azure.identity.aio import ClientAssertionCredential

    client_id = _require_client_id(sign_in)
    if not all(os.environ.get(name) for name in GITHUB_OIDC_ENV):
        raise AuthError(
            "github-oidc sign-in runs in a GitHub Actions job with `permissions: id-token: write` "
            f"({' and '.join(GITHUB_OIDC_ENV)} are not set)"
        )
    return ClientAssertionCredential(sign_in.tenant_id, client_id, github_oidc_token, authority=cloud.authority_host)


class _SyncCredential(Protocol):
    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken: ...

    def close(self) -> None: ...


class AsyncAdapter:
    """An AsyncTokenCredential around a sync one (azure.identity.aio has no browser/device code).

    Each get_token runs in a worker thread, so the event loop keeps going while the operator signs in.
    A lock keeps concurrent requests from opening two browser windows at once.
    """

    def __init__(self, credential: _SyncCredential) -> None:
        self.credential = credential
        self._lock: asyncio.Lock | None = None

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        import asyncio  # here, not at the top: asyncio alone costs ~30 ms of CLI start-up

        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            return await asyncio.to_thread(self.credential.get_token, *scopes, **kwargs)

    async def close(self) -> None:
        import asyncio

        await asyncio.to_thread(self.credential.close)

    async def __aenter__(self) -> AsyncAdapter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class PerResourceCredential:
    """Delegated sign-in with Microsoft's public clients: Graph PowerShell's app for Graph scopes,
    the Exchange module's app for everything else (Exchange Online, Security & Compliance)."""

    def __init__(self, cloud: Cloud, factory: Callable[[str], AsyncAdapter]) -> None:
        self.cloud = cloud
        self._factory = factory
        self._credentials: dict[str, AsyncAdapter] = {}

    def client_for(self, scope: str) -> str:
        if scope.lower().startswith(self.cloud.graph.lower()):
            return GRAPH_POWERSHELL_CLIENT_ID
        return EXCHANGE_POWERSHELL_CLIENT_ID

    def scopes_for(self, client_id: str, scopes: tuple[str, ...]) -> tuple[str, ...]:
        if client_id == GRAPH_POWERSHELL_CLIENT_ID and scopes == (self.cloud.graph_scope,):
            return tuple(f"{self.cloud.graph}/{name}" for name in GRAPH_DELEGATED_SCOPES)
        return scopes

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        client_id = self.client_for(scopes[0] if scopes else "")
        credential = self._credentials.get(client_id)
        if credential is None:
            credential = self._credentials[client_id] = self._factory(client_id)
        return await credential.get_token(*self.scopes_for(client_id, scopes), **kwargs)

    async def close(self) -> None:
        for credential in self._credentials.values():
            await credential.close()

    async def __aenter__(self) -> PerResourceCredential:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def delegated_client(
    sign_in: SignIn,
    cloud: Cloud,
    client_id: str,
    device_code_prompt: DeviceCodePrompt | None = None,
    *,
    record: AuthenticationRecord | None = None,
) -> InteractiveBrowserCredential | DeviceCodeCredential:
    """The sync azure-identity credential for one public client, with the persistent cache and the
    saved AuthenticationRecord (so a later command finds the signed-in account without a prompt)."""
    from azure.identity import DeviceCodeCredential, InteractiveBrowserCredential

    common: dict[str, Any] = {
        "tenant_id": sign_in.tenant_id,
        "client_id": client_id,
        "authority": cloud.authority_host,
        "cache_persistence_options": cache_options(sign_in),
        "disable_automatic_authentication": not sign_in.interactive,
    }
    record = record if record is not None else load_record(sign_in, client_id)
    if record is not None and record.authority.lower() == cloud.authority_host.lower():
        # The record names the client and authority itself (azure-identity refuses both given twice); a
        # record from another cloud's login host is ignored, and the operator signs in again.
        common["authentication_record"] = record
        del common["authority"]
    if AuthMethod(sign_in.method) is AuthMethod.BROWSER:
        return InteractiveBrowserCredential(login_hint=sign_in.login_hint, **common)
    if device_code_prompt is not None:
        common["prompt_callback"] = device_code_prompt
    return DeviceCodeCredential(**common)


def delegated_logins(sign_in: SignIn, cloud: Cloud) -> list[tuple[str, tuple[str, ...]]]:
    """(client id, scopes) for each interactive sign-in `login` performs: one with your own app; with
    Microsoft's public clients one for Graph (the steps' delegated scopes) and one for Exchange Online
    and Security & Compliance (a token for one resource can't be had from the other's app)."""
    graph = tuple(f"{cloud.graph}/{name}" for name in GRAPH_DELEGATED_SCOPES)
    if sign_in.client_id:
        return [(sign_in.client_id, graph)]
    return [(GRAPH_POWERSHELL_CLIENT_ID, graph), (EXCHANGE_POWERSHELL_CLIENT_ID, (cloud.exchange_scope,))]


def _delegated_credential(
    sign_in: SignIn, cloud: Cloud, method: AuthMethod, device_code_prompt: DeviceCodePrompt | None
) -> AsyncTokenCredential:
    cache_options(sign_in)  # no secret store: say so now, before any prompt

    def build(client_id: str) -> AsyncAdapter:
        return AsyncAdapter(delegated_client(sign_in, cloud, client_id, device_code_prompt))

    if sign_in.client_id:
        return cast("AsyncTokenCredential", build(sign_in.client_id))
    return cast("AsyncTokenCredential", PerResourceCredential(cloud, build))


# --- The signed-in account between commands (`login` / `logout`) -------------------------------------
#
# azure-identity keeps tokens in its persistent cache (encrypted by the platform's secret store, or a
# file readable only by you when allowed); which account to use from it is an AuthenticationRecord
# (no secret: home account id, username, authority, tenant, client), which the application stores.
# We keep one record per tenant and client in the state directory, written owner-only.

RECORDS_DIR = "sign-in"


def record_path(sign_in: SignIn, client_id: str) -> Path:
    from m365archive.paths import data_dir

    tenant = re.sub(r"[^a-z0-9._-]", "_", sign_in.tenant_id.lower())
    return data_dir() / RECORDS_DIR / f"{tenant}.{client_id}.json"


def load_record(sign_in: SignIn, client_id: str) -> AuthenticationRecord | None:
    """The saved record, or None (none saved, or unreadable: then sign-in simply prompts again)."""
    from azure.identity import AuthenticationRecord

    path = record_path(sign_in, client_id)
    try:
        return AuthenticationRecord.deserialize(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_record(sign_in: SignIn, client_id: str, record: AuthenticationRecord) -> Path:
    from m365archive.files import private_dir, write_private

    path = record_path(sign_in, client_id)
    private_dir(path.parent)
    write_private(path, record.serialize())
    return path


def remove_records(sign_in: SignIn) -> list[Path]:
    """Delete this tenant's saved records (every client); the paths removed."""
    removed = []
    for client_id in {GRAPH_POWERSHELL_CLIENT_ID, EXCHANGE_POWERSHELL_CLIENT_ID, sign_in.client_id or ""} - {""}:
        path = record_path(sign_in, client_id)
        if path.exists():
            path.unlink()
            removed.append(path)
    return removed


def clear_token_cache(sign_in: SignIn) -> list[str]:
    """Empty azure-identity's persistent token cache named `sign_in.cache_name` (both of its halves: the
    continuous-access-evaluation one and the other) and delete its file. Returns where it cleared.

    The cache is opened exactly as azure-identity opens it (its `_get_persistence`: DPAPI file on
    Windows, Keychain on macOS, libsecret on Linux with the plain file as fallback), so the same store is
    emptied whichever of them was used. Every tenant's tokens in that cache go, as `az logout` does.
    """
    from azure.identity._constants import CACHE_CAE_SUFFIX, CACHE_NON_CAE_SUFFIX
    from azure.identity._persistent_cache import _get_persistence

    cleared = []
    for suffix in (CACHE_NON_CAE_SUFFIX, CACHE_CAE_SUFFIX):
        persistence = _get_persistence(
            allow_unencrypted=True, account_name="MSALCache", cache_name=sign_in.cache_name + suffix
        )
        location = Path(persistence.get_location())
        if not location.exists():
            continue
        persistence.save("{}")  # the secret itself (libsecret/Keychain), or the file's contents
        location.unlink(missing_ok=True)  # the file, or the timestamp file the secret stores reload by
        cleared.append(str(location))
    return cleared
