"""Wire formats for the simulated on-premises endpoint: WSMan SOAP envelopes, WinRM message encryption.

Kept apart from the endpoint logic (onprem.py) so each side stays readable. Formats follow
[MS-WSMV] as pypsrp speaks it: every reply echoes the request's MessageID in wsa:RelatesTo,
and HTTP bodies are `multipart/encrypted` when the client authenticated with Negotiate/NTLM
over plain http.
"""

from __future__ import annotations

import re
import struct
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "wsa": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "wsman": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "wsmv": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "wst": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "wsmanfault": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
    "xml": "http://www.w3.org/XML/1998/namespace",
    "pwsh": "http://schemas.microsoft.com/powershell",
}
for _prefix, _uri in NS.items():
    if _prefix != "xml":
        ET.register_namespace(_prefix, _uri)

ACTION_BASE_TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer/"
ACTION_BASE_SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/"
FAULT_ACTION = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
COMMAND_STATE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/"
SIGNAL_TERMINATE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/Terminate"
SIGNAL_PS_CTRL_C = "powershell/signal/ctrl_c"

# WSManFault codes ([MS-WSMV] / winerror.h) the simulator uses.
FAULT_TIMED_OUT = 2150858793  # ERROR_WSMAN_OPERATION_TIMEDOUT
FAULT_SHELL_NOT_FOUND = 2150858843  # ERROR_WSMAN_INVALID_SELECTORS / shell not found
FAULT_INVALID_RESOURCE_URI = 2150858811  # ERROR_WSMAN_INVALID_RESOURCE_URI
FAULT_ACCESS_DENIED = 5  # ERROR_ACCESS_DENIED
FAULT_UNSUPPORTED = 2150858770  # ERROR_WSMAN_ACTION_NOT_SUPPORTED

ENCRYPTED_BOUNDARY = "Encrypted Boundary"
SPNEGO_PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"


def q(prefix: str, name: str) -> str:
    return f"{{{NS[prefix]}}}{name}"


@dataclass
class WSManRequest:
    """The parts of a WSMan request the endpoint acts on."""

    action: str
    message_id: str
    resource_uri: str
    selectors: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    operation_timeout: float = 20.0
    body: ET.Element | None = None

    @property
    def verb(self) -> str:
        """Create, Command, Send, Receive, Signal, Delete, ... (the last part of the action URI)."""
        return self.action.rstrip("/").rsplit("/", 1)[-1]


def parse_request(xml: bytes) -> WSManRequest:
    root = ET.fromstring(xml)
    header = root.find("s:Header", NS)
    body = root.find("s:Body", NS)
    if header is None:
        raise ValueError("SOAP envelope without a header")

    def text(path: str) -> str:
        el = header.find(path, NS) if header is not None else None
        return (el.text or "").strip() if el is not None else ""

    selectors = {
        el.attrib.get("Name", ""): (el.text or "") for el in header.findall("wsman:SelectorSet/wsman:Selector", NS)
    }
    options = {el.attrib.get("Name", ""): (el.text or "") for el in header.findall("wsman:OptionSet/wsman:Option", NS)}
    timeout = 20.0
    match = re.fullmatch(r"PT([0-9.]+)S", text("wsman:OperationTimeout"))
    if match:
        timeout = float(match.group(1))
    child = next(iter(body)) if body is not None and len(body) else None
    return WSManRequest(
        action=text("wsa:Action"),
        message_id=text("wsa:MessageID"),
        resource_uri=text("wsman:ResourceURI"),
        selectors=selectors,
        options=options,
        operation_timeout=timeout,
        body=child,
    )


def envelope(action: str, relates_to: str, *body: ET.Element) -> bytes:
    env = ET.Element(q("s", "Envelope"))
    header = ET.SubElement(env, q("s", "Header"))
    ET.SubElement(header, q("wsa", "Action"), {q("s", "mustUnderstand"): "true"}).text = action
    ET.SubElement(header, q("wsa", "MessageID")).text = f"uuid:{str(uuid.uuid4()).upper()}"
    ET.SubElement(header, q("wsa", "RelatesTo")).text = relates_to
    ET.SubElement(header, q("wsa", "To")).text = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
    body_el = ET.SubElement(env, q("s", "Body"))
    for el in body:
        body_el.append(el)
    return bytes(ET.tostring(env, encoding="utf-8", xml_declaration=False))


def fault(
    relates_to: str,
    code: int,
    message: str,
    *,
    subcode: str = "w:InternalError",
    machine: str = "localhost",
    receiver: bool = True,
) -> bytes:
    """A SOAP fault carrying a WSManFault detail (pypsrp raises WSManFaultError from it)."""
    f = ET.Element(q("s", "Fault"))
    code_el = ET.SubElement(f, q("s", "Code"))
    ET.SubElement(code_el, q("s", "Value")).text = "s:Receiver" if receiver else "s:Sender"
    sub = ET.SubElement(code_el, q("s", "Subcode"))
    ET.SubElement(sub, q("s", "Value")).text = subcode
    reason = ET.SubElement(f, q("s", "Reason"))
    ET.SubElement(reason, q("s", "Text"), {q("xml", "lang"): "en-US"}).text = message
    detail = ET.SubElement(f, q("s", "Detail"))
    wf = ET.SubElement(detail, q("wsmanfault", "WSManFault"), {"Code": str(code), "Machine": machine})
    ET.SubElement(wf, q("wsmanfault", "Message")).text = message
    return envelope(FAULT_ACTION, relates_to, f)


def element(tag: str, attrib: dict[str, str] | None = None, text: str | None = None, *children: Any) -> ET.Element:
    prefix, name = tag.split(":", 1)
    el = ET.Element(q(prefix, name), attrib or {})
    if text is not None:
        el.text = text
    for child in children:
        el.append(child)
    return el


def sub(parent: ET.Element, tag: str, attrib: dict[str, str] | None = None, text: str | None = None) -> ET.Element:
    prefix, name = tag.split(":", 1)
    el = ET.SubElement(parent, q(prefix, name), attrib or {})
    if text is not None:
        el.text = text
    return el


# -- WinRM message encryption ([MS-WSMV] 2.2.9.1) ---------------------------------------------


def unwrap_winrm_body(context: Any, body: bytes, content_type: str) -> bytes:
    """Decrypt a `multipart/encrypted` request body with the connection's security context."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    boundary = match.group(1) if match else ENCRYPTED_BOUNDARY
    parts = [p for p in re.split(rb"--\s*" + re.escape(boundary.encode()) + rb"\r\n", body) if p]
    out = b""
    for i in range(0, len(parts) - 1, 2):
        header = parts[i]
        payload = re.sub(rb"--\s*" + re.escape(boundary.encode()) + rb"--\r\n$", b"", parts[i + 1])
        length_match = re.search(rb"Length=(\d+)", header)
        expected = int(length_match.group(1)) if length_match else -1
        wrapped = payload.replace(b"\tContent-Type: application/octet-stream\r\n", b"")
        header_len = struct.unpack("<i", wrapped[:4])[0]
        sig = wrapped[4 : 4 + header_len]
        data = wrapped[4 + header_len :]
        plain = bytes(context.unwrap_winrm(sig, data))
        if expected >= 0 and len(plain) != expected:
            raise ValueError(f"decrypted length {len(plain)} does not match the declared {expected}")
        out += plain
    return out


def encrypted_protocol(content_type: str) -> str:
    """The request's `multipart/encrypted` protocol (SPNEGO, or Kerberos when the client used Kerberos alone)."""
    match = re.search(r'protocol="?([^";]+)"?', content_type)
    return match.group(1) if match else SPNEGO_PROTOCOL


def wrap_winrm_body(context: Any, message: bytes, protocol: str = SPNEGO_PROTOCOL) -> tuple[str, bytes]:
    """Encrypt a reply in the request's protocol: (content-type header value, body)."""
    header, wrapped, padding = context.wrap_winrm(message)
    data = struct.pack("<i", len(header)) + header + wrapped
    lead = "\r\n".join(
        [
            f"--{ENCRYPTED_BOUNDARY}",
            f"\tContent-Type: {protocol}",
            f"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length={len(message) + padding}",
            f"--{ENCRYPTED_BOUNDARY}",
            "\tContent-Type: application/octet-stream",
            "",
        ]
    ).encode()
    body = lead + data + f"--{ENCRYPTED_BOUNDARY}--\r\n".encode()
    content_type = f'multipart/encrypted;protocol="{protocol}";boundary="{ENCRYPTED_BOUNDARY}"'
    return content_type, body
