"""What every use case shares: the injected context (`Env`) and connecting to the tenant.

`Env` is the one injected context (STYLE.md 6): where state lives, how to reach the tenant,
how secrets are kept, and how progress is reported. Tests build their own Env. No typer, no terminals.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from m365archive.config import Config
from m365archive.engine.journal import Journal, JournalError
from m365archive.engine.runner import Event
from m365archive.errors import CommandError, Reason
from m365archive.paths import journal_path
from m365archive.steps.base import StepError
from m365archive.tenant.exchange import ExchangeError, TransportError
from m365archive.tenant.graph_types import GraphError
from m365archive.tenant.session import Endpoints, SimulatorUnreachable, TenantSession
from m365archive.tenant.tokens import TokenUnavailable, token_claims

SIM_ENV = "M365ARCHIVE_SIM"


@dataclass
class Env:
    sim_url: str | None = None
    password_file: Path | None = None
    progress: Callable[[str], None] = lambda message: None
    on_event: Callable[[Event], None] = lambda event: None
    journal_file: Path | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_environment(cls, sim_url: str | None = None, **kwargs: Any) -> Env:
        return cls(sim_url=sim_url or os.environ.get(SIM_ENV) or None, **kwargs)

    def journal(self) -> Journal:
        """The journal (migrated when older; one line naming the file when it can't be used)."""
        try:
            return Journal(self.journal_file or journal_path(), on_notice=self.progress)
        except JournalError as exc:
            raise CommandError(str(exc), Reason.ERROR) from None


@asynccontextmanager
async def connect(env: Env, config: Config, *, max_concurrency: int = 8) -> AsyncIterator[TenantSession]:
    """A TenantSession for the configured tenant (or the simulator), closed on exit."""
    endpoints, credential, operator, app_only = await _sign_in(env, config)
    onprem = None
    if config.onprem is not None:
        # Built on first use: `consent status` and the like never need the on-premises password.
        onprem = functools.partial(make_onprem_runner, env, config, endpoints)
    session = TenantSession(
        endpoints,
        credential,
        operator=operator,
        app_only=app_only,
        max_concurrency=max_concurrency,
        onprem_factory=onprem,
    )
    try:
        yield session
    except TokenUnavailable as exc:  # no token to be had mid-command (re-acquiring failed): exit 5
        raise CommandError(str(exc), Reason.AUTH) from None
    finally:
        await session.aclose()


def make_onprem_runner(env: Env, config: Config, endpoints: Endpoints) -> Any:
    from urllib.parse import urlparse

    from m365archive.tenant.onprem import OnPremExchangeRunner

    cfg = config.onprem
    assert cfg is not None
    password = os.environ.get("M365ARCHIVE_ONPREM_PASSWORD")
    username = cfg.username
    if cfg.auth == "kerberos" and password is None:
        # The operator's Kerberos ticket (kinit, or a domain-joined machine's logon) signs in; DOMAIN\user is
        # not a Kerberos principal name, so the ticket's own principal is used.
        username = None
    elif password is None and cfg.username:
        from m365archive import secrets

        try:
            password = secrets.get_secret(config.tenant.id, f"onprem/{cfg.username}")
        except secrets.NoKeyringError:
            raise CommandError(
                f"the on-premises password of {cfg.username} is needed and there is no keyring on this machine",
                Reason.NO_SECRET_STORE,
                "set M365ARCHIVE_ONPREM_PASSWORD for this run, or install a keyring backend and store it under "
                f"service 'm365archive', name '{config.tenant.id}/onprem/{cfg.username}'",
            ) from None
    server, port, ssl = cfg.server, cfg.port, cfg.ssl
    if endpoints.simulator and endpoints.onprem_url:
        parsed = urlparse(endpoints.onprem_url)
        server, port, ssl = parsed.hostname or server, parsed.port, parsed.scheme == "https"
    return OnPremExchangeRunner(
        server,
        port=port,
        ssl=ssl,
        path=cfg.path,
        auth=cfg.auth,
        username=username,
        password=password,
        cert_validation=cfg.cert_validation,
    )


def sign_in_for(config: Config, *, interactive: bool = True) -> Any:
    """The configured [auth] as a tenant.auth.SignIn (`interactive=False`: never prompt)."""
    from m365archive.tenant.auth import AuthMethod, SignIn

    auth = config.auth
    return SignIn(
        method=AuthMethod(auth.method.replace("-", "_")),
        tenant_id=config.tenant.id,
        client_id=auth.client_id,
        certificate_path=auth.certificate,
        managed_identity_client_id=auth.managed_identity_client_id,
        service_connection_id=auth.service_connection_id,
        allow_unencrypted_cache=auth.allow_unencrypted_token_cache,
        interactive=interactive,
    )


async def _sign_in(env: Env, config: Config) -> tuple[Endpoints, Any, str, bool]:
    if env.sim_url:
        from m365archive.tenant.session import discover_simulator
        from m365archive.tenant.simcredential import AsyncSimulatorCredential

        try:
            endpoints = await asyncio.to_thread(discover_simulator, env.sim_url)
        except SimulatorUnreachable as exc:
            raise CommandError(
                str(exc), Reason.ERROR, "start one with `m365archive sim serve --scenario fresh`"
            ) from None
        wanted = config.tenant.id.lower()
        if wanted not in (endpoints.tenant_id.lower(), endpoints.domain.lower()):
            raise CommandError(
                f"the config is for tenant {config.tenant.id}, but the simulator at {env.sim_url} is "
                f"{endpoints.domain} ({endpoints.tenant_id})",
                Reason.USAGE,
            )
        operator = ""
        try:
            import httpx

            operator = httpx.get(env.sim_url.rstrip("/") + "/", timeout=10).json().get("signedInUser") or ""
        except (httpx.HTTPError, ValueError):
            pass
        from m365archive.tenant.simcredential import token_url

        sim_credential = AsyncSimulatorCredential(endpoints.token_url or token_url(env.sim_url, endpoints.tenant_id))
        return endpoints, sim_credential, operator, not operator
    from m365archive.tenant.auth import AuthError, make_credential
    from m365archive.tenant.clouds import get_cloud
    from m365archive.tenant.session import endpoints_for_cloud

    endpoints = endpoints_for_cloud(config.tenant.cloud, config.tenant.id, config.tenant.domain)
    cloud = get_cloud(config.tenant.cloud)
    sign_in = sign_in_for(config)
    try:
        credential = make_credential(sign_in, cloud)
        token = await credential.get_token(endpoints.graph_scope)
    except AuthError as exc:
        raise CommandError(str(exc), Reason.AUTH) from None
    except Exception as exc:  # azure-identity raises many types; all mean "not signed in"
        raise CommandError(
            f"sign-in failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", Reason.AUTH
        ) from None
    claims = token_claims(token.token)
    user = claims.get("upn") or claims.get("unique_name")
    if user and claims.get("idtyp") != "app":
        return endpoints, credential, str(user), False
    # App-only: the operator is the application, never a user (its display name is not a UPN).
    app = claims.get("app_displayname") or claims.get("appid") or ""
    return endpoints, credential, f"application {app}".strip(), True


def tenant_info(session: TenantSession) -> dict[str, str]:
    e = session.endpoints
    return {"id": e.tenant_id, "domain": e.domain, "cloud": e.cloud}


class PrerequisiteFailed(CommandError):
    """Exit 7 with the plan made up to the failed blocking check (None when there is none to show)."""

    def __init__(self, message: str, plan: Any = None) -> None:
        super().__init__(message, Reason.PREREQUISITE)
        self.plan = plan


@contextmanager
def reading() -> Iterator[None]:
    """While planning: a refused read or a failed prerequisite becomes one clear line with its reason."""
    try:
        yield
    except StepError as exc:
        raise PrerequisiteFailed(str(exc), getattr(exc, "plan", None)) from None
    except ExchangeError as exc:
        raise CommandError(f"Exchange refused a read: {exc.message}", Reason.ERROR) from None
    except GraphError as exc:
        code = Reason.AUTH if exc.status in (401, 403) else Reason.ERROR
        raise CommandError(f"Microsoft Graph refused a read: {exc.status} {exc.code}: {exc.message}", code) from None
    except TransportError as exc:
        raise CommandError(str(exc), Reason.AUTH if exc.auth else Reason.ERROR) from None
