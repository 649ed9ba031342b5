"""Simulated on-premises Exchange Server remote PowerShell: WSMan + PSRP at /PowerShell.

pypsrp's real client (pypsrp.wsman.WSMan + pypsrp.powershell.RunspacePool, configuration
`Microsoft.Exchange`) talks to this endpoint over the socket, end to end:

- HTTP: Negotiate/NTLM through pyspnego's acceptor (users from a file named by NTLM_USER_FILE,
  written from `state.onprem_users`), one security context per TCP connection (keyed by the
  ASGI client address), WinRM message encryption (`multipart/encrypted`). A wrong password is
  answered 401.
- WSMan: Create, Command, Send, Receive (a w:TimedOut fault, HTTP 500, when nothing is ready),
  Signal, Delete; every reply's wsa:RelatesTo echoes the request's MessageID.
- PSRP: psrpcore's ServerRunspacePool/ServerPipeline; output fragments are routed per pipeline.
- Cmdlets: Get/Enable/Set-RemoteMailbox (onprem_cmdlets.py), validated by the spec binder.
  Scripts are refused as a NoLanguage endpoint refuses them.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import os
import secrets
import string
import tempfile
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psrpcore
from psrpcore import PSRPPayload, StreamType
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from m365archive.sim import onprem_wire as wire
from m365archive.sim.http import note
from m365archive.sim.state import TenantState

CONFIGURATION_NAME = "Microsoft.Exchange"
RESOURCE_URI = f"http://schemas.microsoft.com/powershell/{CONFIGURATION_NAME}"
SHELL_RESOURCE_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
MAX_FRAGMENT = 32 * 1024
MAX_CONNECTIONS = 256  # security contexts kept, oldest dropped first

T = TypeVar("T")

# NTLM_USER_FILE is process-wide; several simulators may run in one process (tests), each with
# its own file. Every call into the acceptor points the variable at this tenant's file first.
_ENV_LOCK = threading.Lock()
_USER_FILES: list[str] = []


def _remove_user_files() -> None:
    for path in _USER_FILES:
        with contextlib.suppress(OSError):
            os.remove(path)


atexit.register(_remove_user_files)


# -- passwords and the NTLM user file --------------------------------------------------------


def generate_password(length: int = 20) -> str:
    alphabet = string.ascii_letters + string.digits
    while True:
        pw = "".join(secrets.choice(alphabet) for _ in range(length - 2)) + "!" + secrets.choice(string.digits)
        if any(c.islower() for c in pw) and any(c.isupper() for c in pw):
            return pw


def ensure_onprem_passwords(state: TenantState) -> dict[str, str]:
    """Give every on-premises account without a password a random one (scenario files never hold
    passwords). Returns the accounts and their passwords (tests and `sim serve` show them)."""
    with state.lock:
        for account, password in list(state.onprem_users.items()):
            if not password:
                state.onprem_users[account] = generate_password()
        return dict(state.onprem_users)


def write_ntlm_user_file(state: TenantState) -> str:
    """Write `DOMAIN:user:password` lines (pyspnego's Heimdal format) to a private temp file."""
    fd, path = tempfile.mkstemp(prefix="m365archive-sim-ntlm-", suffix=".txt")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        for account, password in state.onprem_users.items():
            domain, _, user = account.rpartition("\\")
            fh.write(f"{domain}:{user}:{password}\n")
    _USER_FILES.append(path)
    return path


# -- per-connection security context -----------------------------------------------------------


@dataclass(frozen=True)
class _Keys:
    """Where this server's acceptor finds its secrets: the NTLM user file and the Kerberos keytab."""

    user_file: str
    keytab: str  # "" = no service key: no Kerberos ticket can be verified

    @property
    def env(self) -> dict[str, str]:
        # An empty in-memory keytab when there is none, so the machine's /etc/krb5.keytab is never used.
        return {"NTLM_USER_FILE": self.user_file, "KRB5_KTNAME": self.keytab or "MEMORY:m365archive-sim-no-key"}


@dataclass
class _Connection:
    context: Any
    keys: _Keys
    complete: bool = False
    user: str = ""

    def step(self, token: bytes) -> bytes | None:
        out: bytes | None = _with_keys(self.keys, lambda: self.context.step(token))
        if self.context.complete:
            self.complete = True
            self.user = str(getattr(self.context, "client_principal", "") or "")
        return out


def _with_keys(keys: _Keys, fn: Callable[[], T]) -> T:
    """Run an acceptor call with this server's NTLM user file and keytab (both read from the environment by
    pyspnego and MIT krb5, process-wide: several simulators may run in one process)."""
    with _ENV_LOCK:
        previous = {name: os.environ.get(name) for name in keys.env}
        os.environ.update(keys.env)
        try:
            return fn()
        finally:
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _new_acceptor(keys: _Keys) -> Any:
    import spnego

    # Negotiate: Kerberos tickets are verified with the keytab's service key (pyspnego hands them to GSSAPI
    # when the gssapi package is installed), NTLM against the user file.
    return _with_keys(
        keys,
        lambda: spnego.server(
            hostname="exch01",
            service="HTTP",
            protocol="negotiate",
            options=spnego.NegotiateOptions.wrapping_winrm,
        ),
    )


# -- shells (runspace pools) ----------------------------------------------------------------


@dataclass
class _Shell:
    shell_id: str
    owner: str
    client_ip: str
    pool: Any  # psrpcore.ServerRunspacePool
    out: dict[uuid.UUID | None, list[bytes]] = field(default_factory=dict)
    finished: set[uuid.UUID] = field(default_factory=set)

    def drain(self) -> None:
        """Move what psrpcore has ready into per-target queues (pool or pipeline id)."""
        while True:
            payload = self.pool.data_to_send(MAX_FRAGMENT)
            if payload is None:
                return
            self.out.setdefault(payload.pipeline_id, []).append(payload.data)


class OnPremEndpoint:
    """The /PowerShell endpoint of one simulated Exchange server."""

    def __init__(self, state: TenantState) -> None:
        self.state = state
        ensure_onprem_passwords(state)
        self.user_file = write_ntlm_user_file(state)
        self.connections: dict[Any, _Connection] = {}
        self.shells: dict[str, _Shell] = {}
        self.machine = f"EXCH01.{ad_domain(state)}"

    # -- HTTP + authentication ---------------------------------------------------------------
    async def handle(self, request: Request) -> Response:
        key = _conn_key(request)
        body = await request.body()
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        conn = self.connections.get(key)
        reply_token: bytes | None = None
        if scheme.lower() in ("negotiate", "ntlm", "kerberos") and token:
            if conn is None or conn.complete:
                keys = _Keys(self.user_file, self.state.knobs.onprem_keytab)
                conn = _Connection(_new_acceptor(keys), keys)
                self.connections.pop(key, None)
                self.connections[key] = conn
                while len(self.connections) > MAX_CONNECTIONS:  # closed connections are never reported
                    self.connections.pop(next(iter(self.connections)))
            try:
                reply_token = conn.step(base64.b64decode(token.strip()))
            except Exception as exc:  # a wrong password, an unknown user, a malformed token
                self.connections.pop(key, None)
                note(request, auth_error=type(exc).__name__)
                return _unauthorized()
            if not conn.complete:
                return _unauthorized(reply_token)
            protocol = str(getattr(conn.context, "negotiated_protocol", "") or "ntlm").lower()
            if protocol not in self.state.knobs.onprem_auth:
                # Exchange's /PowerShell is used with Kerberos (pypsrp maintainer, jborean93/pypsrp#187;
                # Microsoft's "Connect to Exchange servers using remote PowerShell"): NTLM is refused
                # unless the scenario's vdir allows it (knob onprem_auth).
                self.connections.pop(key, None)
                note(request, auth_error=f"{protocol} not accepted by this virtual directory")
                return _unauthorized()
        elif scheme.lower() == "basic":
            return _unauthorized()  # Basic is not offered over http (it would send the password in clear)
        if conn is None or not conn.complete:
            return _unauthorized()
        note(request, user=conn.user)
        headers: dict[str, str] = {}
        if reply_token:
            headers["WWW-Authenticate"] = "Negotiate " + base64.b64encode(reply_token).decode()
        if not body:
            return Response(b"", status_code=200, headers=headers)
        content_type = request.headers.get("content-type", "")
        encrypted = content_type.startswith(("multipart/encrypted", "multipart/x-multi-encrypted"))
        if not encrypted:
            # AllowUnencrypted is false on an Exchange server: http traffic must be sealed.
            return Response(b"", status_code=400, headers=headers)
        try:
            soap = wire.unwrap_winrm_body(conn.context, body, content_type)
        except Exception:
            self.connections.pop(key, None)
            return _unauthorized()
        status, reply = self.handle_soap(soap, conn.user, key[0] if isinstance(key, tuple) else "", request)
        ctype, payload = wire.wrap_winrm_body(conn.context, reply, wire.encrypted_protocol(content_type))
        headers["Content-Type"] = ctype
        return Response(payload, status_code=status, headers=headers)

    # -- WSMan ----------------------------------------------------------------------------------
    def handle_soap(self, soap: bytes, user: str, client_ip: str, request: Request) -> tuple[int, bytes]:
        try:
            req = wire.parse_request(soap)
        except (ET.ParseError, ValueError) as exc:
            return 400, wire.fault("", wire.FAULT_UNSUPPORTED, f"The request is not a valid SOAP envelope: {exc}")
        note(request, wsman=req.verb)
        handler = getattr(self, f"_wsman_{req.verb.lower()}", None)
        if handler is None:
            return 500, wire.fault(
                req.message_id,
                wire.FAULT_UNSUPPORTED,
                f"The WS-Management service does not support the specified action {req.action}.",
                subcode="w:ActionNotSupported",
                machine=self.machine,
            )
        with self.state.lock:
            result: tuple[int, bytes] = handler(req, user, client_ip, request)
        return result

    def _shell_for(self, req: wire.WSManRequest, user: str) -> _Shell | None:
        """The request's shell, if it exists and belongs to this user (WinRM shells are per owner)."""
        shell = self.shells.get(req.selectors.get("ShellId", "").upper())
        return shell if shell is not None and shell.owner.lower() == user.lower() else None

    def _no_shell(self, req: wire.WSManRequest) -> tuple[int, bytes]:
        return 500, wire.fault(
            req.message_id,
            wire.FAULT_SHELL_NOT_FOUND,
            "The request for the Windows Remote Shell with ShellId "
            f"{req.selectors.get('ShellId', '')} failed because the shell was not found on the server. "
            "Possible causes are: the specified ShellId is incorrect or the shell no longer exists on the "
            "server. Provide the correct ShellId or create a new shell and retry the operation.",
            subcode="w:InvalidSelectors",
            machine=self.machine,
        )

    def _wsman_create(self, req: wire.WSManRequest, user: str, client_ip: str, request: Request) -> tuple[int, bytes]:
        if req.resource_uri.lower() != RESOURCE_URI.lower():
            name = req.resource_uri.rsplit("/", 1)[-1]
            return 500, wire.fault(
                req.message_id,
                wire.FAULT_INVALID_RESOURCE_URI,
                f"The WS-Management service cannot process the request. Cannot find the {name} session "
                f"configuration in the WSMan: drive on the {self.machine.split('.')[0]} computer.",
                subcode="w:InvalidResourceURI",
                machine=self.machine,
                receiver=False,
            )
        body = req.body
        if body is None:
            return 400, wire.fault(req.message_id, wire.FAULT_UNSUPPORTED, "Create without a Shell body.")
        shell_id = (body.attrib.get("ShellId") or str(uuid.uuid4())).upper()
        creation = body.find("pwsh:creationXml", wire.NS)
        pool = psrpcore.ServerRunspacePool(
            application_private_data={"ExchangeServer": self.machine, "ImplicitRemoting": True}
        )
        shell = _Shell(shell_id=shell_id, owner=user, client_ip=client_ip, pool=pool)
        self.shells[shell_id] = shell
        if creation is not None and creation.text:
            self._feed(shell, base64.b64decode(creation.text), None, request)

        rc = wire.element("wst:ResourceCreated")
        wire.sub(rc, "wsa:Address", text=str(request.url))
        refs = wire.sub(rc, "wsa:ReferenceParameters")
        wire.sub(refs, "wsman:ResourceURI", text=RESOURCE_URI)
        sel = wire.sub(refs, "wsman:SelectorSet")
        wire.sub(sel, "wsman:Selector", {"Name": "ShellId"}, shell_id)
        sh = wire.element("rsp:Shell")
        for tag, value in (
            ("ShellId", shell_id),
            ("Name", "WinRM1"),
            ("ResourceUri", RESOURCE_URI),
            ("Owner", user),
            ("ClientIP", client_ip),
            ("IdleTimeOut", "PT900.000S"),
            ("InputStreams", "stdin pr"),
            ("OutputStreams", "stdout"),
            ("ShellRunTime", "P0DT0H0M0S"),
            ("ShellInactivity", "P0DT0H0M0S"),
        ):
            wire.sub(sh, f"rsp:{tag}", text=value)
        return 200, wire.envelope(wire.ACTION_BASE_TRANSFER + "CreateResponse", req.message_id, rc, sh)

    def _wsman_command(self, req: wire.WSManRequest, user: str, client_ip: str, request: Request) -> tuple[int, bytes]:
        shell = self._shell_for(req, user)
        if shell is None:
            return self._no_shell(req)
        body = req.body
        command_id = (body.attrib.get("CommandId") if body is not None else None) or str(uuid.uuid4())
        pipeline_id = uuid.UUID(command_id)
        psrpcore.ServerPipeline(shell.pool, pipeline_id)
        args = body.findall("rsp:Arguments", wire.NS) if body is not None else []
        for arg in args:
            if arg.text:
                self._feed(shell, base64.b64decode(arg.text), pipeline_id, request)
        resp = wire.element("rsp:CommandResponse")
        wire.sub(resp, "rsp:CommandId", text=command_id.upper())
        return 200, wire.envelope(wire.ACTION_BASE_SHELL + "CommandResponse", req.message_id, resp)

    def _wsman_send(self, req: wire.WSManRequest, user: str, client_ip: str, request: Request) -> tuple[int, bytes]:
        shell = self._shell_for(req, user)
        if shell is None:
            return self._no_shell(req)
        body = req.body
        for stream in body.findall("rsp:Stream", wire.NS) if body is not None else []:
            cid = stream.attrib.get("CommandId")
            if stream.text:
                self._feed(shell, base64.b64decode(stream.text), uuid.UUID(cid) if cid else None, request)
        return 200, wire.envelope(
            wire.ACTION_BASE_SHELL + "SendResponse", req.message_id, wire.element("rsp:SendResponse")
        )

    def _wsman_receive(self, req: wire.WSManRequest, user: str, client_ip: str, request: Request) -> tuple[int, bytes]:
        shell = self._shell_for(req, user)
        if shell is None:
            return self._no_shell(req)
        desired = req.body.find("rsp:DesiredStream", wire.NS) if req.body is not None else None
        cid = desired.attrib.get("CommandId") if desired is not None else None
        target = uuid.UUID(cid) if cid else None
        shell.drain()
        chunks = shell.out.pop(target, [])
        if not chunks:
            return 500, wire.fault(
                req.message_id,
                wire.FAULT_TIMED_OUT,
                "The WS-Management service cannot complete the operation within the time specified in "
                "OperationTimeout.",
                subcode="w:TimedOut",
                machine=self.machine,
            )
        resp = wire.element("rsp:ReceiveResponse")
        for chunk in chunks:
            attrib = {"Name": "stdout"}
            if cid:
                attrib["CommandId"] = cid.upper()
            wire.sub(resp, "rsp:Stream", attrib, base64.b64encode(chunk).decode())
        if target is not None and cid:
            state = "Done" if target in shell.finished else "Running"
            wire.sub(resp, "rsp:CommandState", {"CommandId": cid.upper(), "State": wire.COMMAND_STATE + state})
        return 200, wire.envelope(wire.ACTION_BASE_SHELL + "ReceiveResponse", req.message_id, resp)

    def _wsman_signal(self, req: wire.WSManRequest, user: str, client_ip: str, request: Request) -> tuple[int, bytes]:
        shell = self._shell_for(req, user)
        if shell is None:
            return self._no_shell(req)
        body = req.body
        cid = body.attrib.get("CommandId", "") if body is not None else ""
        code_el = body.find("rsp:Code", wire.NS) if body is not None else None
        code = (code_el.text or "") if code_el is not None else ""
        with contextlib.suppress(ValueError):
            pid = uuid.UUID(cid)
            pipeline = shell.pool.pipeline_table.get(pid)
            if pipeline is not None:
                if code == wire.SIGNAL_PS_CTRL_C and pipeline.state == psrpcore.types.PSInvocationState.Running:
                    pipeline.stop()
                elif code == wire.SIGNAL_TERMINATE:
                    with contextlib.suppress(Exception):
                        pipeline.close()
                    shell.pool.pipeline_table.pop(pid, None)
                    shell.out.pop(pid, None)
                    shell.finished.discard(pid)
        return 200, wire.envelope(
            wire.ACTION_BASE_SHELL + "SignalResponse", req.message_id, wire.element("rsp:SignalResponse")
        )

    def _wsman_delete(self, req: wire.WSManRequest, user: str, client_ip: str, request: Request) -> tuple[int, bytes]:
        shell = self._shell_for(req, user)
        if shell is None:
            return self._no_shell(req)
        del self.shells[shell.shell_id]
        shell.pool.pipeline_table.clear()
        with contextlib.suppress(Exception):
            shell.pool.close()
        return 200, wire.envelope(wire.ACTION_BASE_TRANSFER + "DeleteResponse", req.message_id)

    # -- PSRP -------------------------------------------------------------------------------
    def _feed(self, shell: _Shell, data: bytes, pipeline_id: uuid.UUID | None, request: Request) -> None:
        from m365archive.sim.onprem_cmdlets import run_pipeline

        shell.pool.receive_data(PSRPPayload(data, StreamType.default, pipeline_id))
        for event in _events(shell.pool):
            if isinstance(event, psrpcore.CreatePipelineEvent):
                pipeline = shell.pool.pipeline_table[event.pipeline_id]
                ran = run_pipeline(self.state, pipeline, event.pipeline, self.machine)
                shell.finished.add(event.pipeline_id)
                note(request, cmdlets=[name for name, _ in ran], parameters=[params for _, params in ran])
        shell.drain()


def _events(pool: Any) -> Iterator[Any]:
    while True:
        event = pool.next_event()
        if event is None:
            return
        yield event


def _conn_key(request: Request) -> Any:
    client = request.scope.get("client")
    return tuple(client) if client else ("?", 0)


def _unauthorized(token: bytes | None = None) -> Response:
    value = "Negotiate" + (" " + base64.b64encode(token).decode() if token else "")
    return Response(b"", status_code=401, headers={"WWW-Authenticate": value})


def ad_domain(state: TenantState) -> str:
    """The on-premises Active Directory domain (contoso.local for contoso.onmicrosoft.com)."""
    return f"{state.domain.split('.')[0]}.local"


def endpoint_of(app: Any) -> OnPremEndpoint:
    """The /PowerShell endpoint of a simulator app (tests reach into its connections and shells)."""
    for route in app.routes:
        handler = getattr(route, "endpoint", None)
        owner = getattr(handler, "__self__", None)
        if isinstance(owner, OnPremEndpoint):
            return owner
    raise LookupError("this app has no on-premises /PowerShell endpoint")


def describe(state: TenantState, base_url: str) -> list[str]:
    """Lines for `sim serve` and the demo: where the on-premises endpoint is and how to sign in."""
    if not state.onprem_users:
        return []
    accepted = ", ".join(a.upper() if a == "ntlm" else a.capitalize() for a in state.knobs.onprem_auth)
    lines = [
        f"on-premises Exchange: {base_url.rstrip('/')}/PowerShell (configuration {CONFIGURATION_NAME}, {accepted})"
    ]
    for account, password in sorted(state.onprem_users.items()):
        lines.append(f"  {account}  password: {password}")
    return lines


def routes(state: TenantState) -> list[BaseRoute]:
    endpoint = OnPremEndpoint(state)
    return [
        Route(path, endpoint.handle, methods=["POST"])
        for path in ("/PowerShell", "/PowerShell/", "/powershell", "/powershell/")
    ]
