"""The request-log check: every request the product sent to a simulated tenant, read back from its log.

Run per test (tests/conftest.py), in the test's own process, so it works under pytest-xdist. Only requests
the product sent are checked (Exchange: X-ClientApplication m365archive; Graph: not a raw httpx client);
tests that send naive requests on purpose are not the product. Rules:

- Graph: the path and method are in the project's subset (tests/specs/graph-v1.0-subset.json), and the
  property names of a POST/PATCH body exist on the CSDL type of the path (also inside $batch).
- Exchange Online, Security & Compliance, on-premises: each cmdlet and parameter binds on the endpoint it
  went to (the cmdlet reference in shared/specs, as packaged); compliance requests went to a regional S&C
  host, never the loopback mount.
- $batch: `Prefer: odata.continue-on-error` on the batch, and on every item Authorization, a valid
  X-AnchorMailbox and the preference.
- X-AnchorMailbox: `UPN:<user@domain>` or `APP:SystemMailbox{bb558c35-...}@<tenant>`.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from m365archive.sim import cmdlets

SUBSET = Path(__file__).resolve().parent / "specs" / "graph-v1.0-subset.json"
ANCHOR = re.compile(
    r"^(UPN:[^@\s]+@[^@\s]+|APP:SystemMailbox\{bb558c35-97f1-4cb9-8ff7-d53741dc928c\}@[0-9A-Za-z.-]+)$", re.I
)
SIDES = {"exchange": "exchange-online", "compliance": "compliance", "onprem": "on-premises"}


@lru_cache(maxsize=1)
def _subset() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SUBSET.read_text(encoding="utf-8"))
    return data


@lru_cache(maxsize=1)
def _path_patterns() -> list[tuple[re.Pattern[str], str]]:
    out = []
    for template in _subset()["paths"]:
        parts = re.split(r"(\{[^}]+\})", template)
        regex = "".join("[^/()']+" if p.startswith("{") else re.escape(p) for p in parts)
        out.append((re.compile(f"^{regex}$"), template))
    return out


def graph_path(path: str) -> str | None:
    """The subset's template for a request path (without /v1.0), or None."""
    for pattern, template in _path_patterns():
        if pattern.match(path):
            return template
    return None


def _properties(type_name: str) -> set[str]:
    types = _subset()["types"]
    out: set[str] = set()
    current: str | None = type_name
    while current and current in types:
        out |= set(types[current]["properties"])
        current = types[current]["base"]
    return out


def check_graph(method: str, path: str, body: Any, where: str) -> list[str]:
    template = graph_path(path)
    if template is None:
        return [f"{where}: {method} {path} is not in the project's Graph subset"]
    spec = _subset()["paths"][template]
    problems = [] if method in spec["methods"] else [f"{where}: {method} {template} is not in the subset"]
    if method in ("POST", "PATCH") and isinstance(body, dict) and spec["type"] and not path.endswith("/$ref"):
        target = spec["type"]
        if path.endswith("/assignLicense"):
            return problems  # an action's parameters, not the entity's properties
        props = _properties(target)
        for key in body:
            if not key.startswith("@") and "@odata." not in key and key not in props:
                problems.append(f"{where}: {method} {template}: {key!r} is not a property of {target}")
    return problems


def _is_product_graph(entry: dict[str, Any]) -> bool:
    return not str(entry.get("userAgent", "")).startswith("python-httpx")


def check_entry(entry: dict[str, Any]) -> list[str]:
    where = f"{entry.get('method')} {entry.get('host', '')}{entry.get('path')}"
    service = entry.get("service")
    if service == "graph":
        if not _is_product_graph(entry) or entry.get("status") == 0:
            return []
        path = str(entry["path"])[len("/v1.0") :]
        if path == "/$batch":
            problems = []
            for item in (entry.get("body") or {}).get("requests", []):
                url = str(item.get("url", "")).split("?")[0]
                url = url if url.startswith("/") else "/" + url
                problems += check_graph(str(item.get("method", "GET")).upper(), url, item.get("body"), where)
            return problems
        return check_graph(str(entry["method"]), path, entry.get("body"), where)
    if service == "onprem":
        names = entry.get("cmdlets") or []
        params = entry.get("parameters") or [{}] * len(names)
        return _bind(list(zip(names, params, strict=False)), "onprem", where)
    if service not in ("exchange", "compliance") or entry.get("client") != "m365archive":
        return []
    problems = []
    if service == "compliance" and ".ps.compliance." not in str(entry.get("host", "")):
        problems.append(f"{where}: Security & Compliance reached by {entry.get('host')!r}, not its regional host")
    anchor = str(entry.get("anchor") or "")
    if not ANCHOR.match(anchor):
        problems.append(f"{where}: X-AnchorMailbox {anchor!r} is not UPN:<user> nor the app-only system mailbox")
    path = str(entry["path"])
    if "EXOBanner" in path or "EXOModuleFile" in path or 300 <= int(entry.get("status") or 0) < 400:
        return problems  # discovery, or a redirect that read no body
    body = entry.get("body")
    if not isinstance(body, dict):
        return problems  # refused before its body was read (401, 429)
    if path.endswith("$batch"):
        if "odata.continue-on-error" not in str(entry.get("prefer", "")):
            problems.append(f"{where}: $batch without Prefer: odata.continue-on-error")
        calls = []
        for item in body.get("requests", []):
            headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
            if "authorization" not in headers:
                problems.append(f"{where}: item {item.get('id')} has no Authorization")
            if not ANCHOR.match(headers.get("x-anchormailbox", "")):
                problems.append(f"{where}: item {item.get('id')} has no valid X-AnchorMailbox")
            if "odata.continue-on-error" not in headers.get("prefer", ""):
                problems.append(f"{where}: item {item.get('id')} has no continue-on-error preference")
            cmdlet_input = (item.get("body") or {}).get("CmdletInput") or {}
            calls.append((cmdlet_input.get("CmdletName"), cmdlet_input.get("Parameters") or {}))
        return problems + _bind(calls, service, where)
    cmdlet_input = body.get("CmdletInput") or {}
    return problems + _bind([(cmdlet_input.get("CmdletName"), cmdlet_input.get("Parameters") or {})], service, where)


def _bind(calls: list[tuple[Any, Any]], service: str, where: str) -> list[str]:
    problems = []
    for name, params in calls:
        try:
            cmdlets.bind_parameters(str(name), dict(params or {}), SIDES[service])
        except cmdlets.CmdletRefusal as refusal:
            problems.append(f"{where}: {name} on {SIDES[service]}: {refusal.message}")
    return problems


def check(entries: list[dict[str, Any]]) -> list[str]:
    return [p for entry in entries for p in check_entry(entry)]
