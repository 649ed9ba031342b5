"""The Exchange service: HTTP endpoints, admission (auth, throttling, concurrency), dispatch, wire bodies."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from m365archive.sim import cmdlets, tokens
from m365archive.sim.exchange.core import (
    NOT_FOUND,
    THROTTLING,
    CmdletError,
    Context,
    Result,
    _page_size,
)
from m365archive.sim.exchange.folders import get_mailbox_folder_statistics
from m365archive.sim.exchange.mailboxes import enable_mailbox, get_exo_mailbox, get_mailbox, set_mailbox
from m365archive.sim.exchange.org import (
    get_admin_audit_log_config,
    get_mailbox_audit_bypass,
    get_organization_config,
    get_recipient,
    get_user,
    set_organization_config,
)
from m365archive.sim.exchange.permissions import (
    add_mailbox_permission,
    get_mailbox_permission,
    remove_mailbox_permission,
)
from m365archive.sim.exchange.retention import (
    get_retention_policy,
    get_retention_rule,
    new_retention_policy,
    new_retention_rule,
    remove_retention_policy,
    set_retention_policy,
)
from m365archive.sim.exchange.role_groups import (
    add_role_group_member,
    get_management_role_assignment,
    get_role_group,
    get_role_group_member,
)
from m365archive.sim.http import check_bearer, note, request_id
from m365archive.sim.load import TokenBucket, retry_after_header
from m365archive.sim.state import (
    MAILBOX_PLANS,
    PLAN2_PLANS,
    Mailbox,
    TenantState,
    User,
)

MAX_BATCH = 10
APP_SYSTEM_MAILBOX = "SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}"


class ExchangeService:
    """Routes and per-tenant runtime (throttling, counters) for both Exchange endpoints."""

    def __init__(self, state: TenantState) -> None:
        self.state = state
        k = state.knobs
        self.buckets = {
            "exchange": TokenBucket(k.exchange_rate, k.exchange_burst),
            "compliance": TokenBucket(k.exchange_rate, k.exchange_burst),
        }
        self.in_flight: dict[str, int] = {"exchange": 0, "compliance": 0}
        self.peak_in_flight: dict[str, int] = {"exchange": 0, "compliance": 0}
        # Simulated processing time per request, in real ms, while holding a concurrency slot.
        low, high = getattr(k, "exchange_cmdlet_ms", (0.0, 0.0))
        self.cmdlet_ms: tuple[float, float] = (float(low), float(high))
        self._random = random.Random(k.seed + 11)
        self.stats: Counter[str] = Counter()  # "Get-Mailbox": n, "throttled": n, "concurrency": n, ...
        self.mailbox_settings: dict[str, dict[str, Any]] = {}  # other Set-Mailbox values, by mailbox guid
        self.server = _server_name(state.tenant_id)
        self._capabilities: dict[tuple[str, ...], list[str]] = {}  # by assigned skus

    # -- HTTP ------------------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        out: list[BaseRoute] = []
        for prefix, service in (("", "exchange"), ("/scc", "compliance")):
            for api in ("adminapi", "AdminApi"):
                base = f"{prefix}/{api}/beta/{{tenant}}"
                out.append(Route(f"{base}/InvokeCommand", self._invoke_handler(service), methods=["POST"]))
                out.append(Route(f"{base}/$batch", self._batch_handler(service), methods=["POST"]))
        return out

    def _invoke_handler(self, service: str) -> Callable[[Request], Any]:
        async def handler(request: Request) -> Response:
            refused = self._admit(request, service)
            if refused is not None:
                return refused
            self._enter(service)
            try:
                await self._work()
                try:
                    body = await request.json()
                except ValueError:
                    return _error_response(request, 400, "BadRequest", "|System.ArgumentException|Invalid JSON.")
                name, params = _cmdlet_input(body)
                note(request, cmdlet=name, parameters=params)
                status, payload, headers = self._run_one(request, service, name, params, request.url.query)
                if status >= 400:
                    return JSONResponse(payload, status_code=status, headers=headers)
                payload = {"@odata.context": self._context_url(request), **payload}
                if "@odata.nextLink" in payload:
                    payload["@odata.nextLink"] = _public_url(
                        request, str(request.url.replace(query=payload["@odata.nextLink"]))
                    )
                return JSONResponse(payload, headers=headers)
            finally:
                self.in_flight[service] -= 1

        return handler

    def _batch_handler(self, service: str) -> Callable[[Request], Any]:
        async def handler(request: Request) -> Response:
            refused = self._admit(request, service)
            if refused is not None:
                return refused
            self._enter(service)
            try:
                await self._work()
                try:
                    body = await request.json()
                except ValueError:
                    return _error_response(request, 400, "BadRequest", "|System.ArgumentException|Invalid JSON.")
                items = body.get("requests") if isinstance(body, dict) else None
                if not isinstance(items, list):
                    return _error_response(
                        request, 400, "BadRequest", "|System.ArgumentException|The batch request has no requests."
                    )
                if len(items) > MAX_BATCH:
                    # unverified text; the limit of 10 is documented by the v3 module's batching
                    return _error_response(
                        request,
                        400,
                        "BadRequest",
                        f"|System.ArgumentException|The batch request contains {len(items)} requests; "
                        f"the maximum is {MAX_BATCH}.",
                    )
                names: list[str] = []
                statuses: list[int] = []
                responses: list[dict[str, Any]] = []
                knobs = self.state.knobs
                # OData: without `odata.continue-on-error` a batch stops at its first failed request
                # (learn.microsoft.com/odata/webapi/continue-on-error); the module and CIPP send the preference.
                stop_on_error = knobs.batch_stop_on_error and not _prefers_continue(request.headers.get("prefer"))
                for item in items:
                    item = item if isinstance(item, dict) else {}
                    name, params = _cmdlet_input(item.get("body") or {})
                    names.append(name)
                    url = str(item.get("url") or "")
                    query = urlsplit(url).query
                    item_headers = {str(k).lower() for k in (item.get("headers") or {})}
                    headers: dict[str, str] = {}
                    item_refusal = _item_token_refused(self.state, item) if knobs.batch_item_auth else None
                    if knobs.batch_item_auth and "authorization" not in item_headers:
                        # Unverified: what Exchange answers to an item without Authorization is not documented.
                        status = 401
                        payload = _error_body(
                            request,
                            "Unauthorized",
                            "System.UnauthorizedAccessException",
                            "The batch item carries no Authorization header (unverified answer).",
                        )
                    elif item_refusal is not None:
                        # Unverified: each item's own token is checked as the request's is (a token replaced
                        # while the batch waited is refused for that item alone, with Exchange's challenge).
                        status, headers = 401, {"WWW-Authenticate": INVALID_TOKEN_CHALLENGE}
                        payload = _error_body(
                            request, "Unauthorized", "System.UnauthorizedAccessException", item_refusal
                        )
                    else:
                        status, payload, headers = self._run_one(request, service, name, params, query, item)
                    statuses.append(status)
                    if status < 400:
                        payload = {"@odata.context": self._context_url(request), **payload}
                        if "@odata.nextLink" in payload:
                            link = url.split("?")[0] or str(request.url).replace("$batch", "InvokeCommand")
                            payload["@odata.nextLink"] = f"{link}?{payload['@odata.nextLink']}"
                    responses.append(
                        {
                            "id": str(item.get("id", len(responses) + 1)),
                            "status": status,
                            "headers": headers,
                            "body": payload,
                        }
                    )
                    if status >= 400 and stop_on_error:
                        break  # the items after it are neither run nor answered
                note(request, cmdlets=names, answered=len(responses), itemStatuses=statuses, items=_item_keys(items))
                return JSONResponse({"responses": responses})
            finally:
                self.in_flight[service] -= 1

        return handler

    def _admit(self, request: Request, service: str) -> Response | None:
        tenant = request.path_params["tenant"].lower()
        if tenant not in (self.state.tenant_id.lower(), self.state.domain.lower()):
            return _error_response(
                request,
                404,
                "NotFound",
                f"|Microsoft.Exchange.Admin.OData.TenantNotFoundException|Tenant '{tenant}' not found.",
            )
        denied = check_bearer(request, self.state, service)
        if denied is not None:
            status, reason = denied
            resp = _error_response(request, status, "Unauthorized", reason)
            # The challenge's shape as Exchange Online sends it (error="invalid_token"); the JSON body is unverified.
            resp.headers["WWW-Authenticate"] = INVALID_TOKEN_CHALLENGE
            return resp
        refused = app_only_refusal(self.state, getattr(request.state, "token_claims", None), service)
        if refused is not None:
            return _error_response(
                request, refused[0], "Unauthorized" if refused[0] == 401 else "Forbidden", refused[1]
            )
        anchor = request.headers.get("x-anchormailbox")
        if anchor is not None and self.state.knobs.anchor_check and not self._valid_anchor(anchor):
            # Unverified: no public source shows Exchange's answer to an anchor that names no mailbox.
            return _error_response(
                request,
                400,
                "BadRequest",
                f"|System.ArgumentException|X-AnchorMailbox '{anchor}' names no user of this tenant nor the "
                "app-only system mailbox (unverified answer).",
            )
        cap = self.state.knobs.exchange_concurrency
        if cap > 0 and self.in_flight[service] >= cap:
            self.stats["concurrency_refused"] += 1
            wait = self.state.clock.real_seconds(1.0) or 0.001
            return _error_response(
                request,
                429,
                "TooManyRequests",
                # unverified text, modelled on Exchange's PowerShellMaxTenantConcurrency budget
                f"|{THROTTLING}|The maximum number of concurrent requests per tenant has been exceeded. "
                "Please wait for your other requests to finish and try again.",
                headers={"Retry-After": retry_after_header(wait)},
            )
        return None

    def _valid_anchor(self, anchor: str) -> bool:
        """UPN:<a user of this tenant>, or the module's app-only form APP:SystemMailbox{bb558c35-...}@<tenant>."""
        kind, _, value = anchor.partition(":")
        if kind.upper() == "UPN":
            return self.state.user_by_upn(value) is not None
        if kind.upper() == "APP":
            mailbox, _, tenant = value.rpartition("@")
            return mailbox.lower() == APP_SYSTEM_MAILBOX.lower() and tenant.lower() in (
                self.state.tenant_id.lower(),
                self.state.domain.lower(),
            )
        return False

    def _enter(self, service: str) -> None:
        self.in_flight[service] += 1
        self.peak_in_flight[service] = max(self.peak_in_flight[service], self.in_flight[service])

    async def _work(self) -> None:
        low, high = self.cmdlet_ms
        if high > 0:
            await asyncio.sleep(self._random.uniform(low, high) / 1000)

    def _context_url(self, request: Request) -> str:
        base = _public_url(request, str(request.url)).split("/InvokeCommand")[0].split("/$batch")[0]
        return f"{base}/$metadata#Collection(Exchange.GenericHashTable)"

    def _run_one(
        self,
        request: Request,
        service: str,
        name: str,
        params: dict[str, Any],
        query: str,
        item: dict[str, Any] | None = None,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """(status, body, headers) for one cmdlet, throttled, bound and run."""
        wait = self.buckets[service].take()
        if wait is not None:
            self.stats["throttled"] += 1
            return (
                429,
                _error_body(
                    request,
                    "TooManyRequests",
                    THROTTLING,
                    # unverified text
                    f"The request was throttled because the tenant exceeded its budget of cmdlet calls. "
                    f"Retry after {retry_after_header(wait)} seconds.",
                ),
                {"Retry-After": retry_after_header(wait)},
            )
        side = "exchange-online" if service == "exchange" else "compliance"
        headers_in = {k.lower(): str(v) for k, v in ((item or {}).get("headers") or {}).items()}
        prefer = headers_in.get("prefer") or request.headers.get("prefer", "")
        cursor = parse_qs(query).get("$skiptoken", [None])[0]
        try:
            binding = cmdlets.bind_parameters(name, params, side)
        except cmdlets.CmdletRefusal as refusal:
            self.stats["refused"] += 1
            exception = f"System.Management.Automation.{refusal.category}"
            return 400, _error_body(request, "BadRequest", exception, refusal.message), {}
        ctx = Context(side, binding.cmdlet, binding.parameters, _page_size(prefer), cursor)
        self.stats[binding.cmdlet] += 1
        try:
            with self.state.lock:
                self.state.run_directory_sync()
                result = self.execute(ctx)
        except CmdletError as err:
            if binding.cmdlet in self.state.knobs.adminapi_errors_for:
                # A non-terminating error: 200, no output, the error in @adminapi.errors (the module writes
                # each as an error record). Which cmdlets answer so is unverified.
                text = f"{_error_id(err.exception)}|{err.exception}|{err.message}"
                return 200, {"value": [], "@adminapi.warnings": [], "@adminapi.errors": [text]}, {}
            code = "NotFound" if err.status == 404 else "BadRequest"
            return err.status, _error_body(request, code, err.exception, err.message), {}
        # The service always sends @adminapi.warnings, [] when there are none (captured traffic).
        payload: dict[str, Any] = {"value": result.objects, "@adminapi.warnings": list(result.warnings)}
        if result.next_cursor:
            payload["@odata.nextLink"] = f"$skiptoken={result.next_cursor}"
        return 200, payload, {}

    # -- cmdlets ---------------------------------------------------------------------------------
    def execute(self, ctx: Context) -> Result:
        handler = _HANDLERS.get(ctx.name)
        if handler is None:
            raise CmdletError(
                "System.NotImplementedException",
                f"The simulated tenant doesn't implement '{ctx.name}' (the real service would run it).",
                status=501,
            )
        if ctx.params.get("WhatIf") is True and not ctx.name.startswith("Get-"):
            return Result(warnings=[f"What if: {ctx.name} would run on the target."])
        return handler(self, ctx)

    def not_found(self, identity: Any) -> CmdletError:
        return CmdletError(
            NOT_FOUND,
            f"The operation couldn't be performed because object '{identity}' couldn't be found on '{self.server}'.",
            status=404,
        )

    def mailbox(self, identity: Any) -> Mailbox:
        mbx = self.find_mailbox(str(identity)) if identity not in (None, "") else None
        if mbx is None:
            raise self.not_found(identity)
        return mbx

    def find_mailbox(self, identity: str) -> Mailbox | None:
        st = self.state
        now = st.clock.elapsed()
        key = identity.strip()
        user = st.user_by_upn(key)
        mbx = st.mailboxes.get(user.id) if user else st.mailboxes.get(key) or st.mailboxes.get(key.lower())
        if mbx is None:
            mbx = st.mailbox_for(key)
        return mbx if mbx is not None and mbx.visible_at <= now else None

    def user_of(self, mbx: Mailbox) -> User | None:
        return self.state.users.get(mbx.user_id)

    def mailbox_object(self, mbx: Mailbox) -> dict[str, Any]:
        user = self.user_of(mbx)
        upn = user.user_principal_name if user else mbx.primary_smtp
        obj: dict[str, Any] = {
            "Identity": mbx.alias,
            "Id": mbx.alias,
            "Name": mbx.alias,
            "Guid": mbx.guid,
            "ExchangeGuid": mbx.guid,
            "ExternalDirectoryObjectId": mbx.user_id,
            "UserPrincipalName": upn,
            "PrimarySmtpAddress": mbx.primary_smtp,
            "WindowsEmailAddress": mbx.primary_smtp,
            "EmailAddresses": [f"SMTP:{mbx.primary_smtp}"],
            "Alias": mbx.alias,
            "DisplayName": mbx.display_name,
            "RecipientType": "UserMailbox",
            "RecipientTypeDetails": mbx.recipient_type_details,
            "HiddenFromAddressListsEnabled": mbx.hidden_from_address_lists,
            "ArchiveStatus": self.archive_status_shown(mbx),
            "ArchiveGuid": mbx.archive_guid,
            "ArchiveDatabase": archive_database(mbx) if mbx.archive_status == "Active" else None,
            "ArchiveName": list(mbx.archive_name),
            "ArchiveState": "Local" if mbx.archive_status == "Active" else "None",
            "AutoExpandingArchiveEnabled": mbx.auto_expanding_archive,
            "LitigationHoldEnabled": mbx.litigation_hold_enabled,
            "LitigationHoldDuration": mbx.litigation_hold_duration,
            "LitigationHoldDate": _iso(mbx.litigation_hold_date),
            "LitigationHoldOwner": mbx.litigation_hold_owner or "",
            "AuditEnabled": mbx.audit_enabled,
            "AuditOwner": list(mbx.audit_owner),
            "AuditDelegate": list(mbx.audit_delegate),
            "AuditAdmin": list(mbx.audit_admin),
            "DefaultAuditSet": list(mbx.default_audit_set),
            "RetentionPolicy": mbx.retention_policy,
            "InPlaceHolds": list(mbx.in_place_holds),
            "IsDirSynced": mbx.is_dir_synced,
            "WhenChanged": _iso(mbx.when_changed),
            "PersistedCapabilities": self.capabilities(user),
        }
        obj.update(self.mailbox_settings.get(mbx.guid, {}))
        if not self.state.knobs.archive_guid_exposed:  # a service that left the archive's GUID out
            obj.pop("ArchiveGuid", None)
        return obj

    def capabilities(self, user: User | None) -> list[str]:
        if user is None:
            return []
        key = tuple(user.assigned_licenses)
        cached = self._capabilities.get(key)
        if cached is None or getattr(user, "disabled_plans", None):  # per-user plan choices aren't cached
            plans = self.state.user_service_plans(user)
            cached = []
            if plans & PLAN2_PLANS:
                cached.append("BPOS_S_Enterprise")
            elif plans & MAILBOX_PLANS:
                cached.append("BPOS_S_Standard")
            self._capabilities[key] = cached
        return list(cached)

    def archive_status_shown(self, mbx: Mailbox) -> str:
        """ArchiveStatus as Get-Mailbox shows it: a share of active archives read None (re-licensed users,
        mailboxes moved from on-premises; SupportArticles-docs archivestatus-set-none.md), chosen by the
        mailbox so that the same mailbox always reads the same (knob archive_status_none_share)."""
        if mbx.archive_status != "Active":
            return mbx.archive_status
        share = self.state.knobs.archive_status_none_share
        bucket = int(hashlib.sha256(mbx.guid.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        return "None" if bucket < share else "Active"

    def touch(self, mbx: Mailbox) -> None:
        mbx.when_changed = self.state.clock.now()

    def visible(self) -> Iterator[Mailbox]:
        now = self.state.clock.elapsed()
        return (m for m in self.state.mailboxes.values() if m.visible_at <= now)


_HANDLERS: dict[str, Callable[[ExchangeService, Context], Result]] = {
    "Get-Mailbox": get_mailbox,
    "Get-MailboxFolderStatistics": get_mailbox_folder_statistics,
    "Get-EXOMailbox": get_exo_mailbox,
    "Set-Mailbox": set_mailbox,
    "Enable-Mailbox": enable_mailbox,
    "Add-MailboxPermission": add_mailbox_permission,
    "Get-MailboxPermission": get_mailbox_permission,
    "Remove-MailboxPermission": remove_mailbox_permission,
    "Get-OrganizationConfig": get_organization_config,
    "Set-OrganizationConfig": set_organization_config,
    "Get-AdminAuditLogConfig": get_admin_audit_log_config,
    "Get-User": get_user,
    "Get-Recipient": get_recipient,
    "Get-MailboxAuditBypassAssociation": get_mailbox_audit_bypass,
    "Get-RoleGroup": get_role_group,
    "Get-ManagementRoleAssignment": get_management_role_assignment,
    "Get-RoleGroupMember": get_role_group_member,
    "Add-RoleGroupMember": add_role_group_member,
    "New-RetentionCompliancePolicy": new_retention_policy,
    "Get-RetentionCompliancePolicy": get_retention_policy,
    "Set-RetentionCompliancePolicy": set_retention_policy,
    "Remove-RetentionCompliancePolicy": remove_retention_policy,
    "New-RetentionComplianceRule": new_retention_rule,
    "Get-RetentionComplianceRule": get_retention_rule,
}


# -- helpers ---------------------------------------------------------------------------------------------


def _cmdlet_input(body: Any) -> tuple[str, dict[str, Any]]:
    cmd = body.get("CmdletInput") if isinstance(body, dict) else None
    if not isinstance(cmd, dict):
        return "", {}
    params = cmd.get("Parameters") or {}
    if not isinstance(params, dict):
        params = {}
    # Hashtables arrive decorated with "@odata.type": "#Exchange.GenericHashTable" (ExoHelper does this).
    clean = {
        k: ({kk: vv for kk, vv in v.items() if not kk.startswith("@odata")} if isinstance(v, dict) else v)
        for k, v in params.items()
    }
    return str(cmd.get("CmdletName") or ""), clean


def _error_id(exception: str) -> str:
    return "Ex" + hashlib.sha1(exception.encode()).hexdigest()[:6].upper()


def _error_body(request: Request, code: str, exception: str, text: str) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": f"|{exception}|{text}",
            "details": [{"code": "Context", "target": "", "message": f"{_error_id(exception)}|{exception}|{text}"}],
            "innererror": {
                "message": "Error executing cmdlet",
                "type": "Microsoft.Exchange.Admin.OData.Core.ODataServiceException",
                "request-id": request_id(request),
            },
        }
    }


# The challenge's shape as Exchange Online sends it (error="invalid_token"); the JSON body is unverified.
INVALID_TOKEN_CHALLENGE = (
    'Bearer client_id="00000002-0000-0ff1-ce00-000000000000", '
    'token_types="app_asserted_user_v1 service_asserted_app_v1", '
    'authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="invalid_token"'
)


def _item_token_refused(state: TenantState, item: Any) -> str | None:
    """Why a $batch item's own bearer token is refused (expired, revoked, not ours), or None."""
    headers = {str(k).lower(): str(v) for k, v in ((item or {}).get("headers") or {}).items()}
    value = headers.get("authorization", "")
    if not value.lower().startswith("bearer "):
        return None  # an item without a token is the other check's (batch_item_auth)
    try:
        tokens.verify(state, value[7:].strip())
    except tokens.TokenRefused as refused:
        return refused.reason
    return None


def _item_keys(items: list[Any]) -> list[str]:
    """Each item's cmdlet and parameters as one text, so the log shows which item was sent when."""
    keys = []
    for item in items:
        name, params = _cmdlet_input((item or {}).get("body") or {} if isinstance(item, dict) else {})
        keys.append(json.dumps([name, params], sort_keys=True, default=str))
    return keys


def _prefers_continue(prefer: str | None) -> bool:
    return any(p.strip().lower() == "odata.continue-on-error" for p in (prefer or "").replace(",", ";").split(";"))


def _public_url(request: Request, url: str) -> str:
    """A URL as the client sees it: without the /scc mount when the request came by a real S&C host name."""
    prefix = request.scope.get("state", {}).get("public_prefix")
    if prefix:
        netloc = request.url.netloc
        url = url.replace(f"{netloc}{prefix}/", f"{netloc}/", 1)
    return url


# Entra roles that let an app-only caller run admin API cmdlets (app-only-auth-powershell-v2 lists the supported
# roles; these are the ones the product's table asks for).
APP_ONLY_ROLES = {
    "exchange": {"29232cdf-9323-42fd-ade2-1d097af3e4de", "62e90394-69f5-4237-9190-012177145e10"},
    "compliance": {"17315797-102d-40b4-93e0-432062caca18", "62e90394-69f5-4237-9190-012177145e10"},
}


def app_only_refusal(state: TenantState, claims: dict[str, Any] | None, service: str) -> tuple[int, str] | None:
    """An app-only token needs the Exchange.ManageAsApp application permission (else 401) and an Entra role that
    allows the admin API (else 403). Both answers' bodies are unverified (a public note: "neither grant -> 401;
    ManageAsApp only -> 403"). Knob `permission_check` off: not checked."""
    if not state.knobs.permission_check or not claims or claims.get("idtyp") != "app":
        return None
    if "Exchange.ManageAsApp" not in (claims.get("roles") or []):
        return 401, "The token has no Exchange.ManageAsApp role (unverified answer)."
    if not set(claims.get("wids") or []) & APP_ONLY_ROLES.get(service, set()):
        return 403, "The application holds no Microsoft Entra role that allows this (unverified answer)."
    return None


def _error_response(
    request: Request, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    parts = message.split("|")
    if len(parts) == 3 and parts[0] == "":
        body = _error_body(request, code, parts[1], parts[2])
    else:
        body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


def _iso(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-4] + "Z" if value else None


def archive_database(mbx: Mailbox) -> str:
    """The database holding an active archive (a stable name per mailbox, in Exchange Online's pattern)."""
    return f"NAMPR01DG{int(mbx.guid[:4], 16) % 1000:03d}-db{int(mbx.guid[4:8], 16) % 1000:03d}"


def _server_name(tenant_id: str) -> str:
    digest = hashlib.sha1(tenant_id.encode()).hexdigest().upper()
    server = f"SN{digest[:1]}PR{digest[1:3]}A0{digest[3]}DC00{int(digest[4], 16) % 9 + 1}"
    return f"{server}.NAMPR{digest[5:7]}A0{digest[7]}.PROD.OUTLOOK.COM"


_SERVICES: dict[int, ExchangeService] = {}


def service_for(state: TenantState) -> ExchangeService | None:
    """The running Exchange service of a simulated tenant (counters, concurrency peaks)."""
    return _SERVICES.get(id(state))


def routes(state: TenantState) -> list[BaseRoute]:
    svc = ExchangeService(state)
    _SERVICES[id(state)] = svc
    return svc.routes()
