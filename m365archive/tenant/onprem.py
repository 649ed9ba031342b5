"""On-premises Exchange Server through PowerShell remoting (pypsrp over WinRM).

In a hybrid organization, directory-synced users get their cloud archive from on-premises
(`Enable-RemoteMailbox <user> -Archive`); directory synchronization carries it to Exchange
Online. The endpoint is `http://<server>/PowerShell`, configuration `Microsoft.Exchange`,
Kerberos by default, cmdlets only (a NoLanguage endpoint refuses scripts).

pypsrp is synchronous: every call runs in a worker thread, one at a time on one RunspacePool
that is opened on first use and reused. Facts this module relies on (DESIGN.md, "Notes on
pypsrp"): `had_errors` is true only when the pipeline fails, Exchange's "couldn't be found"
is a non-terminating error read from `streams.error`; switches are passed as True;
Exchange's multi-valued types (ProxyAddressCollection, MultiValuedProperty) arrive as raw
objects and are parsed here.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import re
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from typing import Any

from m365archive.tenant.exchange import Cmdlet, CmdletOutcome, ExchangeError, TransportError

SUPPORTED_AUTH = ("kerberos", "negotiate", "ntlm", "basic")


class OnPremExchangeRunner:
    """Runs cmdlets on an on-premises Exchange server's remote PowerShell endpoint."""

    side = "on-premises"

    def __init__(
        self,
        server: str,
        *,
        port: int | None = None,
        ssl: bool = False,
        path: str = "PowerShell",
        auth: str = "kerberos",
        username: str | None = None,
        password: str | None = None,
        cert_validation: bool = True,
        configuration_name: str = "Microsoft.Exchange",
        connection_timeout: int = 30,
    ) -> None:
        auth = auth.lower()
        if auth not in SUPPORTED_AUTH:
            raise ValueError(f"unsupported authentication {auth!r}: use one of {', '.join(SUPPORTED_AUTH)}")
        if auth == "basic" and not ssl:
            raise ValueError(
                "Basic authentication sends the password in clear text: use it only over HTTPS "
                "(ssl=True), or use kerberos, negotiate or ntlm over http (WinRM encrypts those messages)"
            )
        if auth == "basic" and (not username or password is None):
            raise ValueError("Basic authentication needs a username and a password")
        self.server = server
        self.port = port if port is not None else (443 if ssl else 80)
        self.ssl = ssl
        self.path = path.strip("/")
        self.auth = auth
        self.username = username
        self.password = password
        self.cert_validation = cert_validation
        self.configuration_name = configuration_name
        self.connection_timeout = connection_timeout
        self._pool: Any = None
        self._wsman: Any = None
        self._lock = threading.Lock()  # pypsrp's pool is not thread-safe: one pipeline at a time

    @property
    def endpoint(self) -> str:
        scheme = "https" if self.ssl else "http"
        return f"{scheme}://{self.server}:{self.port}/{self.path}"

    def __repr__(self) -> str:
        return f"OnPremExchangeRunner({self.endpoint!r}, auth={self.auth!r}, user={self.username!r})"

    # -- the protocol ------------------------------------------------------------------------
    async def invoke(self, cmdlet: Cmdlet) -> CmdletOutcome:
        return await asyncio.to_thread(self._invoke_sync, cmdlet)

    async def pages(self, cmdlet: Cmdlet, page_size: int = 1000) -> AsyncIterator[list[dict[str, Any]]]:
        """Exchange on-premises doesn't page: the whole output is read (the runspace is then free
        for the caller's next cmdlets, even while it iterates) and handed out `page_size` objects
        at a time. `-ResultSize Unlimited` is added to Get- cmdlets that don't say otherwise (the
        server's default stops at 1000 with a warning)."""
        params = dict(cmdlet.parameters)
        if cmdlet.name.lower().startswith("get-") and not any(k.lower() == "resultsize" for k in params):
            params["ResultSize"] = "Unlimited"
        outcome = await self.invoke(Cmdlet(cmdlet.name, params))
        if outcome.error is not None:
            raise outcome.error
        objects = outcome.objects
        for start in range(0, len(objects), max(1, page_size)):
            yield objects[start : start + page_size]

    async def invoke_many(self, cmdlets: list[Cmdlet]) -> list[CmdletOutcome]:
        """One after another, in the same runspace (on-premises has no batch endpoint)."""
        return [await self.invoke(c) for c in cmdlets]

    async def aclose(self) -> None:
        await asyncio.to_thread(self._close_sync)

    # -- worker-thread side ------------------------------------------------------------------------
    def _invoke_sync(self, cmdlet: Cmdlet) -> CmdletOutcome:
        with self._lock:
            reused = self._pool is not None
            try:
                return self._run_once(cmdlet)
            except TransportError as exc:
                if not (reused and exc.auth):
                    raise
                # The server refused a runspace that worked before: its security context belonged
                # to a TCP connection that has since closed (keep-alive timeout, server restart),
                # and the request was refused before anything ran. Sign in again, once.
                return self._run_once(cmdlet)

    def _run_once(self, cmdlet: Cmdlet) -> CmdletOutcome:
        from pypsrp.powershell import PowerShell

        pool = self._ensure_pool()
        ps = PowerShell(pool)
        ps.add_cmdlet(cmdlet.name)
        for name, value in cmdlet.parameters.items():
            ps.add_parameter(name, _to_ps(value))
        output = self._guard(ps.invoke)
        outcome = self._outcome(ps, cmdlet)
        outcome.objects = [to_dict(o) for o in output]
        try:
            ps.close()  # Signal Terminate: the server frees the pipeline
        except Exception:  # a broken connection: the pool is opened again on the next call
            self._drop_pool()
        return outcome

    def _outcome(self, ps: Any, cmdlet: Cmdlet) -> CmdletOutcome:
        outcome = CmdletOutcome(cmdlet=cmdlet)
        outcome.warnings = [_record_text(w) for w in ps.streams.warning]
        errors = list(ps.streams.error)
        if errors:
            # A failed pipeline (had_errors) ends with its terminating error; a non-terminating
            # error ("couldn't be found") leaves had_errors False: both mean the call failed.
            err = errors[-1] if ps.had_errors else errors[0]
            fqid = str(getattr(err, "fq_error", "") or "")
            outcome.error = ExchangeError(
                str(err) or fqid or "the cmdlet failed",
                cmdlet=cmdlet.name,
                category=str(getattr(err, "reason", "") or fqid.split(",")[0]),
            )
        elif ps.had_errors:
            outcome.error = ExchangeError("The pipeline failed without an error record.", cmdlet=cmdlet.name)
        return outcome

    def _ensure_pool(self) -> Any:
        if self._pool is not None:
            return self._pool
        from pypsrp.powershell import RunspacePool
        from pypsrp.wsman import WSMan

        self._wsman = WSMan(
            self.server,
            port=self.port,
            username=self.username,
            password=self.password,
            ssl=self.ssl,
            path=self.path,
            auth=self.auth,
            # Kerberos: a ticket for HTTP/<server>, the SPN Windows' own WinRM client asks for (pypsrp's
            # default is host/<server>, which only Active Directory maps to the computer account).
            negotiate_service="HTTP",
            cert_validation=self.cert_validation,
            connection_timeout=self.connection_timeout,
            read_timeout=max(self.connection_timeout, 30),
            operation_timeout=20,
        )
        pool = RunspacePool(self._wsman, configuration_name=self.configuration_name)
        try:
            self._guard(pool.open)
        except BaseException:
            self._drop_pool()
            raise
        self._pool = pool
        return pool

    def _guard(self, fn: Any) -> Any:
        """Run a pypsrp call; transport and authentication failures become TransportError."""
        try:
            return fn()
        except (TransportError, ExchangeError):
            raise
        except Exception as exc:
            self._drop_pool()
            raise self._translate(exc) from exc

    def _translate(self, exc: Exception) -> Exception:
        import requests
        from pypsrp.exceptions import AuthenticationError, WinRMTransportError, WSManFaultError

        who = self.username or "the current Kerberos ticket"
        if isinstance(exc, AuthenticationError):
            return TransportError(
                f"Authentication failed: {self.endpoint} refused {who} ({self.auth}). Check the user name "
                "(DOMAIN\\user) and password, and that the account may use Exchange remote PowerShell.",
                status=401,
                auth=True,
            )
        if _is_spnego_error(exc):
            return TransportError(
                f"{self.auth.capitalize()} authentication to {self.endpoint} as {who} could not start: {exc}. "
                "For Kerberos, run kinit (or join the machine to the domain) and use the server's FQDN; "
                "or use auth='negotiate'/'ntlm' with a user name and password.",
                auth=True,
            )
        if isinstance(exc, requests.exceptions.SSLError):
            return TransportError(f"TLS to {self.endpoint} failed: {exc}")
        if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
            return TransportError(f"Cannot reach the on-premises Exchange server at {self.endpoint}: {_short(exc)}")
        if isinstance(exc, WSManFaultError):
            reason = exc.reason or exc.message or str(exc)
            return TransportError(f"{self.endpoint} answered with a WS-Management fault ({exc.code}): {reason}")
        if isinstance(exc, WinRMTransportError):
            return TransportError(
                f"{self.endpoint} answered HTTP {exc.code}: {exc.response_text[:300] or exc.message}",
                status=exc.code if isinstance(exc.code, int) else None,
            )
        return TransportError(f"PowerShell remoting with {self.endpoint} failed: {type(exc).__name__}: {exc}")

    def _drop_pool(self) -> None:
        self._pool = None
        wsman, self._wsman = self._wsman, None
        if wsman is not None:
            with contextlib.suppress(Exception):
                wsman.close()

    def _close_sync(self) -> None:
        with self._lock:
            pool = self._pool
            if pool is not None:
                with contextlib.suppress(Exception):
                    pool.close()  # WSMan Delete: the server frees the runspace
            self._drop_pool()


# -- values in and out ---------------------------------------------------------------------------


def _to_ps(value: Any) -> Any:
    """A Cmdlet parameter value as pypsrp serializes it (switches and booleans as True/False)."""
    if isinstance(value, tuple | set | frozenset):
        return [_to_ps(v) for v in value]
    if isinstance(value, list):
        return [_to_ps(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_ps(v) for k, v in value.items()}
    if isinstance(value, uuid.UUID | dt.datetime | dt.date):
        return str(value)
    return value


def to_dict(obj: Any) -> dict[str, Any]:
    """An output object (deserialized PSObject) as a plain dict of its properties."""
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items()}
    adapted = getattr(obj, "adapted_properties", None)
    extended = getattr(obj, "extended_properties", None)
    if isinstance(adapted, dict) or isinstance(extended, dict):
        out: dict[str, Any] = {}
        for props in (adapted or {}, extended or {}):
            for key, value in props.items():
                out[str(key)] = to_plain(value)
        return out
    return {"Value": to_plain(obj)}


def to_plain(value: Any) -> Any:
    """str/int/float/bool/None, lists and dicts; Exchange's raw multi-valued objects become lists."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple | set):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if hasattr(value, "adapted_properties") or hasattr(value, "property_sets"):
        items = _collection_items(value)
        if items is not None:
            return items
        # Exchange value types (Unlimited<ByteQuantifiedSize>, SmtpAddress, ...) read as they print.
        text = getattr(value, "to_string", None)
        if text is not None:
            return str(text)
        props = to_dict(value)
        return props if props else str(value)
    return str(value)


def _collection_items(value: Any) -> list[Any] | None:
    """Items of a raw collection (<LST>/<IE>/<STK>/<QUE> kept as XML by pypsrp), or None."""
    for raw in getattr(value, "property_sets", None) or []:
        if isinstance(raw, str) and raw.lstrip().startswith("<"):
            try:
                el = ET.fromstring(raw)
            except ET.ParseError:
                continue
            if el.tag in ("LST", "IE", "STK", "QUE"):
                return [_xml_value(child) for child in el]
        elif isinstance(raw, list):
            return [to_plain(v) for v in raw]
    return None


def _xml_value(el: ET.Element) -> Any:
    text = el.text or ""
    if el.tag == "Nil":
        return None
    if el.tag == "B":
        return text.lower() == "true"
    if el.tag in ("I16", "I32", "I64", "U16", "U32", "U64", "By", "SB"):
        return int(text)
    if el.tag in ("Db", "Sg", "D"):
        return float(text)
    if el.tag == "Obj":
        to_string = el.find("ToString")
        if to_string is not None:
            return to_string.text or ""
        nested = el.find("LST") or el.find("IE")
        if nested is not None:
            return [_xml_value(c) for c in nested]
        props = el.find("MS") or el.find("Props")
        if props is not None:
            return {c.attrib.get("N", ""): _xml_value(c) for c in props}
        return text
    return _unescape(text)


def _unescape(text: str) -> str:
    """CLIXML escapes control characters as _xHHHH_."""
    if "_x" not in text:
        return text
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m.group(1), 16)), text)


def _record_text(record: Any) -> str:
    message = getattr(record, "message", None)
    return str(message) if message else str(record)


def _is_spnego_error(exc: Exception) -> bool:
    module = type(exc).__module__ or ""
    return module.startswith(("spnego", "gssapi", "krb5")) or isinstance(exc, ImportError)


def _short(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "timed out", "No route to host"):
        if marker in text:
            return marker
    return text[:200]
