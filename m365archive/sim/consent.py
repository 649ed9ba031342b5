"""The simulated admin consent page (Entra ID's "Permissions requested ... Accept for your organization").

Served at the v1 authorize endpoint with `prompt=admin_consent` (`/common/oauth2/authorize`,
`/{tenant}/oauth2/authorize`) and the v2 admin consent endpoint (`/{tenant}/v2.0/adminconsent`).
GET shows the app and its permissions with Accept / Cancel; the form POSTs back to the same path.
Accept creates the app's service principal (visible to Graph after `sp_replication_delay`), the
delegated grant (AllPrincipals, EWS.AccessAsUser.All on Office 365 Exchange Online) and the app role
assignment, then redirects to `redirect_uri?admin_consent=True&tenant=<id>`; Cancel redirects with
`error=access_denied`.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from m365archive.sim.graph import add_app_role_assignment
from m365archive.sim.scenario import BUILTIN_ROLES, ensure_resource_sp
from m365archive.sim.state import CONNECTOR_APP_ID, OAuth2PermissionGrant, ServicePrincipal, TenantState, new_id

EWS_SCOPE = "EWS.AccessAsUser.All"
FULL_ACCESS_AS_APP = "dc890d15-9560-4a4c-9b7f-a736ec74ec40"  # Exchange's full_access_as_app app role


@dataclass(frozen=True)
class ConsentApp:
    display_name: str
    publisher: str
    delegated: tuple[tuple[str, str], ...]  # (scope, description) on Office 365 Exchange Online
    app_roles: tuple[tuple[str, str, str], ...]  # (app role id, value, description)
    # Redirect URIs registered for the app: the reference page's consent URL uses https://portal.azure.com/
    # (the only one public sources show); Entra refuses any other with AADSTS50011.
    redirect_uris: tuple[str, ...] = ("https://portal.azure.com/",)


APPS: dict[str, ConsentApp] = {
    CONNECTOR_APP_ID: ConsentApp(
        display_name="Third-party data connector",
        publisher="Microsoft",
        delegated=((EWS_SCOPE, "Access mailboxes as the signed-in user via Exchange Web Services"),),
        app_roles=(
            (FULL_ACCESS_AS_APP, "full_access_as_app", "Use Exchange Web Services with full access to all mailboxes"),
        ),
    )
}
# Roles whose holders may grant tenant-wide admin consent.
CONSENT_ROLES = {
    rid
    for rid, name in BUILTIN_ROLES.items()
    if name in ("Global Administrator", "Cloud Application Administrator", "Application Administrator")
}
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
FIELDS = ("client_id", "response_type", "redirect_uri", "prompt", "scope", "state", "resource")


class ConsentError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def routes(state: TenantState) -> list[BaseRoute]:
    async def endpoint(request: Request) -> Response:
        v2 = request.url.path.rstrip("/").endswith("/adminconsent")
        tenant = request.path_params.get("tenant", "common")
        fields = dict(request.query_params)
        if request.method == "POST":
            form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
            fields.update(form)
        try:
            _check_tenant(state, tenant)
            app_id, app, redirect_uri = _validate(state, fields, v2=v2)
            if request.method == "GET":
                return HTMLResponse(_page(state, request.url.path, fields, app_id, app))
            action = fields.get("action", "")
            if action == "cancel":
                return _redirect(
                    redirect_uri,
                    {
                        "error": "access_denied",
                        "error_subcode": "cancel",
                        "error_description": "AADSTS65004: User declined to consent to access the app.",
                        "state": fields.get("state"),
                    },
                )
            if action != "accept":
                raise ConsentError("AADSTS900144", "The request body must contain the following parameter: 'action'.")
            with state.lock:
                _check_operator(state)
                grant_consent(state, app_id, app)
            params = {"admin_consent": "True", "tenant": state.tenant_id, "state": fields.get("state")}
            if v2 and fields.get("scope"):
                params["scope"] = fields["scope"]
            return _redirect(redirect_uri, params)
        except ConsentError as exc:
            return HTMLResponse(_error_page(exc), status_code=exc.status)

    paths = ["/common/oauth2/authorize", "/{tenant}/oauth2/authorize", "/{tenant}/v2.0/adminconsent"]
    return [Route(path, endpoint, methods=["GET", "POST"]) for path in paths]


def grant_consent(state: TenantState, app_id: str, app: ConsentApp) -> ServicePrincipal:
    """What Accept does: the service principal (replicating), its grant and app role assignments."""
    sp = state.sp_by_app_id(app_id, include_unreplicated=True)
    if sp is None:
        sp = ServicePrincipal(
            id=new_id(),
            app_id=app_id,
            display_name=app.display_name,
            created=state.clock.now(),
            visible_at=state.clock.elapsed() + state.knobs.sp_replication_delay,
        )
        state.service_principals[sp.id] = sp
    resource = ensure_resource_sp(state, "exchange")
    scopes = " ".join(scope for scope, _ in app.delegated)
    grant = next(
        (
            g
            for g in state.oauth2_grants.values()
            if g.client_id == sp.id and g.resource_id == resource.id and g.consent_type == "AllPrincipals"
        ),
        None,
    )
    if grant is None and scopes:
        gid = new_id()
        state.oauth2_grants[gid] = OAuth2PermissionGrant(
            id=gid, client_id=sp.id, consent_type="AllPrincipals", resource_id=resource.id, scope=scopes
        )
    elif grant is not None:
        have = grant.scope.split()
        grant.scope = " ".join(have + [s for s in scopes.split() if s not in have])
    for role_id, _, _ in app.app_roles:
        exists = any(
            a.principal_id == sp.id and a.resource_id == resource.id and a.app_role_id == role_id
            for a in state.app_role_assignments.values()
        )
        if not exists:
            add_app_role_assignment(state, sp, resource, role_id)
    return sp


def _check_tenant(state: TenantState, tenant: str) -> None:
    known = {"common", "organizations", state.tenant_id.lower(), state.domain.lower()}
    known.update(d.lower() for d in state.verified_domains)
    if tenant.lower() not in known:
        raise ConsentError(
            "AADSTS90002",
            f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing "
            "into the correct cloud.",
        )


def _validate(state: TenantState, fields: dict[str, str], *, v2: bool) -> tuple[str, ConsentApp, str]:
    client_id = fields.get("client_id", "").strip()
    if not client_id:
        raise ConsentError("AADSTS900144", "The request body must contain the following parameter: 'client_id'.")
    if not _GUID.match(client_id):
        raise ConsentError(
            "AADSTS700016",
            f"Application with identifier '{client_id}' was not found in the directory '{state.display_name}'.",
        )
    app = APPS.get(client_id.lower())
    if app is None:
        raise ConsentError(
            "AADSTS700016",
            f"Application with identifier '{client_id}' was not found in the directory '{state.display_name}'. "
            "This can happen if the application has not been installed by the administrator of the tenant.",
        )
    if not v2:
        if fields.get("response_type", "") not in ("code", "code id_token", "id_token"):
            raise ConsentError(
                "AADSTS900144", "The request body must contain the following parameter: 'response_type'."
            )
        if fields.get("prompt", "").lower() != "admin_consent":
            raise ConsentError(
                "AADSTS90094",
                "Admin consent is required: this page grants tenant-wide consent only with prompt=admin_consent.",
            )
    redirect_uri = fields.get("redirect_uri", "")
    parts = urlsplit(redirect_uri)
    unregistered = state.knobs.redirect_uri_check and redirect_uri not in app.redirect_uris
    if parts.scheme not in ("http", "https") or not parts.netloc or unregistered:
        raise ConsentError(
            "AADSTS50011",
            f"The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs "
            f"configured for the application '{client_id}'.",
        )
    return client_id.lower(), app, redirect_uri


def _check_operator(state: TenantState) -> None:
    user = state.user_by_upn(state.signed_in_user or "")
    roles = {a.role_definition_id for a in state.role_assignments.values() if user and a.principal_id == user.id}
    if not roles & CONSENT_ROLES:
        raise ConsentError(
            "AADSTS90094",
            "Need admin approval: the signed-in user can't grant consent for the organization "
            "(requires Global Administrator, Cloud Application Administrator or Application Administrator).",
            status=403,
        )


def _redirect(redirect_uri: str, params: dict[str, str | None]) -> RedirectResponse:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    joiner = "&" if urlsplit(redirect_uri).query else "?"
    return RedirectResponse(f"{redirect_uri}{joiner}{query}", status_code=302)


def _page(state: TenantState, path: str, fields: dict[str, str], app_id: str, app: ConsentApp) -> str:
    e = html.escape
    hidden = "\n".join(
        f'    <input type="hidden" name="{e(name)}" value="{e(fields[name])}">' for name in FIELDS if name in fields
    )
    permissions = "\n".join(
        [f"    <li><b>{e(scope)}</b> (delegated): {e(text)}</li>" for scope, text in app.delegated]
        + [f"    <li><b>{e(value)}</b> (application): {e(text)}</li>" for _, value, text in app.app_roles]
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Permissions requested</title></head>
<body>
  <h1>Permissions requested</h1>
  <p>Accept for your organization</p>
  <h2 id="app">{e(app.display_name)}</h2>
  <p>Publisher: {e(app.publisher)} &middot; App ID: <code>{e(app_id)}</code></p>
  <p>Signed in as {e(state.signed_in_user or "")} ({e(state.display_name)})</p>
  <p>This app would like to (Office 365 Exchange Online):</p>
  <ul id="permissions">
{permissions}
  </ul>
  <p>If you accept, this app will get access to the specified resources for all users in your organization.
  No one else will be prompted to review these permissions.</p>
  <form method="post" action="{e(path)}">
{hidden}
    <button type="submit" name="action" value="cancel">Cancel</button>
    <button type="submit" name="action" value="accept">Accept</button>
  </form>
</body></html>
"""


def _error_page(exc: ConsentError) -> str:
    e = html.escape
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in to your account</title></head>
<body>
  <h1>Sorry, but we're having trouble signing you in.</h1>
  <p id="error">{e(exc.code)}: {e(exc.message)}</p>
</body></html>
"""
