from __future__ import annotations

import asyncio
import datetime
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import pytest
from azure.core.credentials import AccessToken
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from keyring.backend import KeyringBackend
from keyring.backends import fail

from m365archive import secrets
from m365archive.tenant import auth
from m365archive.tenant.auth import (
    EXCHANGE_POWERSHELL_CLIENT_ID,
    GRAPH_POWERSHELL_CLIENT_ID,
    AsyncAdapter,
    AuthError,
    AuthMethod,
    PerResourceCredential,
    SignIn,
    describe,
    make_credential,
)
from m365archive.tenant.clouds import get_cloud
from m365archive.tenant.simcredential import AsyncSimulatorCredential

TENANT = "11111111-2222-3333-4444-555555555555"
APP = "99999999-8888-7777-6666-555555555555"
GCC_HIGH = get_cloud("gcc-high")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in (
        *auth.CLIENT_SECRET_ENV,
        "AZURE_CLIENT_ID",
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_CERTIFICATE_PATH",
    ):
        monkeypatch.delenv(name, raising=False)
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(previous)


@pytest.fixture
def secret_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend the machine has a working secret store (this test machine may not)."""
    monkeypatch.setattr(auth, "secret_store_problem", lambda: None)


class Recorder:
    """Stands in for an azure.identity class: records how make_credential built it."""

    calls: list[tuple[tuple[Any, ...], dict[str, Any]]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        type(self).calls.append((args, kwargs))


def recorder(monkeypatch: pytest.MonkeyPatch, target: str) -> type[Recorder]:
    cls = type("Recorded", (Recorder,), {"calls": []})
    monkeypatch.setattr(target, cls)
    return cls


class OneSecretKeyring(KeyringBackend):
    priority = 1
    stored: dict[tuple[str, str], str]

    def __init__(self) -> None:
        super().__init__()
        self.stored = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.stored.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.stored[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.stored.pop((service, username))


# --- import cost --------------------------------------------------------------------------------


def test_importing_auth_loads_no_sdk() -> None:
    code = (
        "import json, sys; import m365archive.tenant.auth; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('azure', 'msal', 'msal_extensions', 'keyring', 'asyncio'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == []


# --- simulator ----------------------------------------------------------------------------------


def test_simulator_credential_asks_the_token_endpoint_for_the_tenant() -> None:
    # Tokens come from the simulator (tests/test_tokens.py); the credential names its v2.0 token endpoint.
    credential = make_credential(SignIn(AuthMethod.SIMULATOR, TENANT), GCC_HIGH)
    assert isinstance(credential, AsyncSimulatorCredential)
    assert credential.token_endpoint == f"{GCC_HIGH.login_url}/{TENANT}/oauth2/v2.0/token"


# --- app-only: client secret --------------------------------------------------------------------


@pytest.mark.usefixtures("secret_store")
@pytest.mark.parametrize("variable", ["M365ARCHIVE_CLIENT_SECRET", "AZURE_CLIENT_SECRET"])
def test_client_secret_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    monkeypatch.setenv(variable, "from-env")
    built = recorder(monkeypatch, "azure.identity.aio.ClientSecretCredential")

    make_credential(SignIn(AuthMethod.SECRET, TENANT, client_id=APP), GCC_HIGH)

    (args, kwargs), *_ = built.calls
    assert args == (TENANT, APP, "from-env")
    assert kwargs["authority"] == "login.microsoftonline.us"
    assert kwargs["cache_persistence_options"].name == "m365archive"


@pytest.mark.usefixtures("secret_store")
def test_client_secret_comes_from_the_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    keyring.set_keyring(OneSecretKeyring())
    secrets.store_client_secret(TENANT, APP, "from-keyring")
    built = recorder(monkeypatch, "azure.identity.aio.ClientSecretCredential")

    make_credential(SignIn(AuthMethod.SECRET, TENANT, client_id=APP), GCC_HIGH)

    assert built.calls[0][0][2] == "from-keyring"


@pytest.mark.usefixtures("secret_store")
def test_missing_client_secret_names_every_place_looked() -> None:
    with pytest.raises(AuthError) as caught:
        make_credential(SignIn(AuthMethod.SECRET, TENANT, client_id=APP), GCC_HIGH)
    message = str(caught.value)
    assert "M365ARCHIVE_CLIENT_SECRET or AZURE_CLIENT_SECRET" in message
    assert f"'{TENANT}/app/{APP}'" in message
    assert "no keyring backend" in message
    assert "never read from the command line" in message


@pytest.mark.parametrize("method", [AuthMethod.SECRET, AuthMethod.CERTIFICATE])
def test_app_only_needs_a_client_id(method: AuthMethod) -> None:
    with pytest.raises(AuthError, match="needs --client-id"):
        make_credential(SignIn(method, TENANT), GCC_HIGH)


@pytest.mark.usefixtures("secret_store")
def test_real_client_secret_credential_accepts_our_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.identity.aio import ClientSecretCredential

    monkeypatch.setenv("M365ARCHIVE_CLIENT_SECRET", "x")
    credential = make_credential(SignIn(AuthMethod.SECRET, TENANT, client_id=APP), GCC_HIGH)
    assert isinstance(credential, ClientSecretCredential)
    asyncio.run(credential.close())


# --- app-only: certificate ----------------------------------------------------------------------


def _certificate(tmp_path: Path, password: bytes | None = None) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "m365archive test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    path = tmp_path / "app.pem"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
        + cert.public_bytes(serialization.Encoding.PEM)
    )
    return path


@pytest.mark.usefixtures("secret_store")
def test_certificate_credential_loads_the_certificate(tmp_path: Path) -> None:
    from azure.identity.aio import CertificateCredential

    sign_in = SignIn(AuthMethod.CERTIFICATE, TENANT, client_id=APP, certificate_path=_certificate(tmp_path))
    credential = make_credential(sign_in, GCC_HIGH)
    assert isinstance(credential, CertificateCredential)
    asyncio.run(credential.close())


@pytest.mark.usefixtures("secret_store")
def test_certificate_password_comes_from_the_named_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _certificate(tmp_path, password=b"pfx-pass")
    sign_in = SignIn(
        AuthMethod.CERTIFICATE,
        TENANT,
        client_id=APP,
        certificate_path=path,
        certificate_password_env="PFX_PW",
    )
    with pytest.raises(AuthError, match="PFX_PW is not set"):
        make_credential(sign_in, GCC_HIGH)

    monkeypatch.setenv("PFX_PW", "wrong")
    with pytest.raises(AuthError, match="can't use certificate"):
        make_credential(sign_in, GCC_HIGH)

    monkeypatch.setenv("PFX_PW", "pfx-pass")
    asyncio.run(make_credential(sign_in, GCC_HIGH).close())


def test_certificate_path_is_required_and_must_exist(tmp_path: Path) -> None:
    with pytest.raises(AuthError, match="needs --certificate"):
        make_credential(SignIn(AuthMethod.CERTIFICATE, TENANT, client_id=APP), GCC_HIGH)
    missing = SignIn(AuthMethod.CERTIFICATE, TENANT, client_id=APP, certificate_path=tmp_path / "none.pem")
    with pytest.raises(AuthError, match="certificate file not found"):
        make_credential(missing, GCC_HIGH)


# --- token cache --------------------------------------------------------------------------------


def test_no_secret_store_is_an_actionable_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "secret_store_problem", lambda: "No module named 'gi'")
    with pytest.raises(AuthError) as caught:
        make_credential(SignIn(AuthMethod.DEVICE_CODE, TENANT), GCC_HIGH)
    message = str(caught.value)
    assert "no secret store on this machine" in message
    assert "No module named 'gi'" in message
    # the remedy names the config key that exists (there is no such flag)
    assert "allow_unencrypted_token_cache = true under [auth]" in message
    assert "libsecret" in message


def test_unencrypted_cache_is_allowed_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "secret_store_problem", lambda: "No module named 'gi'")
    options = auth.cache_options(SignIn(AuthMethod.DEVICE_CODE, TENANT, allow_unencrypted_cache=True))
    assert (options.name, options.allow_unencrypted_storage) == ("m365archive", True)


def test_secret_store_probe_answers_without_raising() -> None:
    problem = auth.secret_store_problem()
    assert problem is None or (isinstance(problem, str) and problem)


# --- delegated: browser and device code ---------------------------------------------------------


@pytest.mark.usefixtures("secret_store")
@pytest.mark.parametrize(
    ("method", "target"),
    [
        (AuthMethod.BROWSER, "azure.identity.InteractiveBrowserCredential"),
        (AuthMethod.DEVICE_CODE, "azure.identity.DeviceCodeCredential"),
    ],
)
def test_own_app_registration_signs_in_once_for_every_resource(
    monkeypatch: pytest.MonkeyPatch, method: AuthMethod, target: str
) -> None:
    built = recorder(monkeypatch, target)
    credential = make_credential(SignIn(method, TENANT, client_id=APP, login_hint="admin@contoso.us"), GCC_HIGH)

    assert isinstance(credential, AsyncAdapter)
    ((_, kwargs),) = built.calls
    assert kwargs["client_id"] == APP
    assert kwargs["tenant_id"] == TENANT
    assert kwargs["authority"] == "login.microsoftonline.us"
    assert kwargs["cache_persistence_options"].name == "m365archive"
    assert kwargs.get("login_hint", "admin@contoso.us") == "admin@contoso.us"


@pytest.mark.usefixtures("secret_store")
def test_device_code_prompt_is_passed_through(monkeypatch: pytest.MonkeyPatch) -> None:
    built = recorder(monkeypatch, "azure.identity.DeviceCodeCredential")

    def prompt(uri: str, code: str, expires: datetime.datetime) -> None:
        return None

    make_credential(SignIn(AuthMethod.DEVICE_CODE, TENANT, client_id=APP), GCC_HIGH, device_code_prompt=prompt)
    assert built.calls[0][1]["prompt_callback"] is prompt


@pytest.mark.usefixtures("secret_store")
@pytest.mark.parametrize("method", [AuthMethod.BROWSER, AuthMethod.DEVICE_CODE])
def test_real_sync_credentials_accept_our_arguments(method: AuthMethod) -> None:
    from azure.identity import DeviceCodeCredential, InteractiveBrowserCredential

    credential = make_credential(SignIn(method, TENANT, client_id=APP), GCC_HIGH)
    assert isinstance(credential, AsyncAdapter)
    expected = InteractiveBrowserCredential if method is AuthMethod.BROWSER else DeviceCodeCredential
    assert isinstance(credential.credential, expected)
    asyncio.run(credential.close())


class FakeSync:
    def __init__(self) -> None:
        self.requests: list[tuple[str, ...]] = []
        self.threads: set[int] = set()
        self.closed = False

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.requests.append(scopes)
        self.threads.add(threading.get_ident())
        return AccessToken("t", 0)

    def close(self) -> None:
        self.closed = True


def test_async_adapter_runs_the_sync_credential_off_the_event_loop() -> None:
    sync = FakeSync()
    adapter = AsyncAdapter(sync)

    async def use() -> int:
        async with adapter:
            await asyncio.gather(*(adapter.get_token("a/.default") for _ in range(3)))
        return threading.get_ident()

    loop_thread = asyncio.run(use())
    assert sync.requests == [("a/.default",)] * 3
    assert loop_thread not in sync.threads
    assert sync.closed


@pytest.mark.usefixtures("secret_store")
def test_without_client_id_each_resource_gets_microsofts_own_public_client() -> None:
    credential = make_credential(SignIn(AuthMethod.DEVICE_CODE, TENANT), GCC_HIGH)
    assert isinstance(credential, PerResourceCredential)
    assert credential.client_for(GCC_HIGH.graph_scope) == GRAPH_POWERSHELL_CLIENT_ID
    assert credential.client_for(GCC_HIGH.exchange_scope) == EXCHANGE_POWERSHELL_CLIENT_ID
    assert credential.client_for(GCC_HIGH.compliance_scope) == EXCHANGE_POWERSHELL_CLIENT_ID


def test_per_resource_credential_routes_and_names_graph_permissions() -> None:
    fakes: dict[str, FakeSync] = {}

    def factory(client_id: str) -> AsyncAdapter:
        fakes[client_id] = FakeSync()
        return AsyncAdapter(fakes[client_id])

    credential = PerResourceCredential(GCC_HIGH, factory)

    async def use() -> None:
        await credential.get_token(GCC_HIGH.graph_scope)
        await credential.get_token(GCC_HIGH.exchange_scope)
        await credential.get_token(GCC_HIGH.compliance_scope)
        await credential.get_token(GCC_HIGH.graph_scope)
        await credential.close()

    asyncio.run(use())

    graph = fakes[GRAPH_POWERSHELL_CLIENT_ID]
    named = tuple(f"https://graph.microsoft.us/{name}" for name in auth.GRAPH_DELEGATED_SCOPES)
    assert graph.requests == [named, named]
    assert fakes[EXCHANGE_POWERSHELL_CLIENT_ID].requests == [
        ("https://outlook.office365.us/.default",),
        ("https://ps.compliance.protection.office365.us/.default",),
    ]
    assert graph.closed and fakes[EXCHANGE_POWERSHELL_CLIENT_ID].closed


# --- hosted identities --------------------------------------------------------------------------


def test_managed_identity_azure_cli_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.identity.aio import AzureCliCredential, ManagedIdentityCredential

    mi = make_credential(SignIn(AuthMethod.MANAGED_IDENTITY, TENANT, managed_identity_client_id=APP), GCC_HIGH)
    cli = make_credential(SignIn(AuthMethod.AZURE_CLI, TENANT), GCC_HIGH)
    assert isinstance(mi, ManagedIdentityCredential)
    assert isinstance(cli, AzureCliCredential)

    built = recorder(monkeypatch, "azure.identity.aio.EnvironmentCredential")
    make_credential(SignIn(AuthMethod.ENVIRONMENT, TENANT), GCC_HIGH)
    assert built.calls == [((), {"authority": "login.microsoftonline.us"})]
    asyncio.run(mi.close())
    asyncio.run(cli.close())


# --- describe -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sign_in", "line"),
    [
        (SignIn(AuthMethod.DEVICE_CODE, "contoso.onmicrosoft.com"), "device code as contoso.onmicrosoft.com"),
        (
            SignIn(AuthMethod.BROWSER, TENANT, login_hint="admin@contoso.com"),
            f"browser sign-in (admin@contoso.com) as {TENANT}",
        ),
        (SignIn(AuthMethod.SECRET, TENANT, client_id=APP), f"client secret (app {APP}) as {TENANT}"),
        (
            SignIn(AuthMethod.CERTIFICATE, TENANT, client_id=APP, certificate_path=Path("c.pem")),
            f"certificate (app {APP}) as {TENANT}",
        ),
        (SignIn(AuthMethod.MANAGED_IDENTITY, TENANT), f"managed identity as {TENANT}"),
        (SignIn(AuthMethod.SIMULATOR, TENANT), f"simulator as {TENANT}"),
    ],
)
def test_describe(sign_in: SignIn, line: str) -> None:
    assert describe(sign_in) == line


@pytest.mark.usefixtures("secret_store")
def test_describe_never_shows_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("M365ARCHIVE_CLIENT_SECRET", "TopSecretValue")
    sign_in = SignIn(AuthMethod.SECRET, TENANT, client_id=APP)
    make_credential(sign_in, GCC_HIGH)
    assert "TopSecretValue" not in describe(sign_in)
    assert "TopSecretValue" not in repr(sign_in)
