"""What a plan may contain: the operations this tool builds, and nothing else.

A saved plan is a file someone could edit. Before the first request is sent, the whole plan is
checked here: every Graph request is a relative `/v1.0` path of a shape the tool builds (the
path's host is judged, not a query string value), every cmdlet and parameter is on the allow-list
for its endpoint, `${secret:...}` placeholders sit only where the tool puts them, and references,
dependencies and cycles are sound. Anything else is refused (exit 4) with nothing sent.

The allow-list is ONE table (`CMDLETS`, `GRAPH`), restricted to what the steps emit; a test checks
that it is a subset of Microsoft's cmdlet reference (data/exchange-cmdlets.json) and that every plan
the steps make passes it.
"""

from __future__ import annotations

import graphlib
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from m365archive.engine.plan import REF, SECRET, Change, Plan

# Endpoint kind -> cmdlet -> the parameters the tool sends with it.
CMDLETS: dict[str, dict[str, frozenset[str]]] = {
    "exchange": {
        "Set-Mailbox": frozenset(
            {
                "Identity",
                "HiddenFromAddressListsEnabled",
                "LitigationHoldEnabled",
                "LitigationHoldDuration",
                "AuditEnabled",
                "DefaultAuditSet",
                "AuditOwner",
                "AuditDelegate",
                "AuditAdmin",
            }
        ),
        "Enable-Mailbox": frozenset({"Identity", "Archive", "AutoExpandingArchive"}),
        "Add-MailboxPermission": frozenset({"Identity", "User", "AccessRights", "AutoMapping"}),
        "Set-OrganizationConfig": frozenset({"AuditDisabled"}),
    },
    "compliance": {
        "New-RetentionCompliancePolicy": frozenset({"Name", "ExchangeLocation"}),
        "New-RetentionComplianceRule": frozenset({"Name", "Policy", "RetentionComplianceAction", "RetentionDuration"}),
        "Set-RetentionCompliancePolicy": frozenset({"Identity", "AddExchangeLocation"}),
        "Add-RoleGroupMember": frozenset({"Identity", "Member"}),
    },
    "onprem": {
        "Enable-RemoteMailbox": frozenset({"Identity", "Archive"}),
    },
}

_SEG = r"(?:\$\{ref:[^}]+\}|[^/?#\\\s%$]+)"  # one path segment: a value the tool read, or a reference


@dataclass(frozen=True)
class GraphShape:
    method: str
    path: re.Pattern[str]
    body: frozenset[str] = frozenset()  # top-level body properties the tool sends
    query: frozenset[str] = frozenset()  # query parameters the tool sends
    secrets: frozenset[str] = frozenset()  # dotted body paths where a ${secret:...} may stand


def _shape(method: str, path: str, body: set[str] | None = None, **kw: Any) -> GraphShape:
    regex = re.compile("^" + path.replace("{id}", _SEG) + "$")
    return GraphShape(method, regex, frozenset(body or ()), **{k: frozenset(v) for k, v in kw.items()})


GRAPH: tuple[GraphShape, ...] = (
    _shape(
        "POST",
        "/users",
        {"accountEnabled", "displayName", "mailNickname", "userPrincipalName", "usageLocation", "passwordProfile"},
        secrets={"passwordProfile.password"},
    ),
    _shape(
        "PATCH",
        "/users/{id}",
        {"usageLocation", "accountEnabled", "passwordProfile"},
        secrets={"passwordProfile.password"},
    ),
    _shape("POST", "/users/{id}/assignLicense", {"addLicenses", "removeLicenses"}),
    _shape("POST", "/users/{id}/revokeSignInSessions"),
    _shape(
        "POST", "/roleManagement/directory/roleAssignments", {"principalId", "roleDefinitionId", "directoryScopeId"}
    ),
    _shape("POST", "/servicePrincipals", {"appId"}),
    _shape("DELETE", "/servicePrincipals/{id}"),
    _shape("DELETE", r"/directoryRoles/{id}/members/{id}/\$ref"),
)
CONFLICT_GET = re.compile("^/users/" + _SEG + "$")  # on_conflict_get: read the object a create may have made
LOCAL_ACTIONS = {"delete-keyring-secret": frozenset({"action", "tenant", "account"})}
WAIT_KINDS = frozenset({"exchange-mailbox", "service-principal", "service-principal-gone", "archive-active"})


class PlanPolicyError(ValueError):
    """The plan holds something this tool never builds; nothing is sent."""


def validate(plan: Plan) -> None:
    """Refuse the whole plan, before any send, at its first problem (one line naming the change)."""
    by_id: dict[str, Change] = {}
    for change in plan.changes:
        if change.id in by_id:
            raise PlanPolicyError(f"change {change.id}: the id appears twice")
        by_id[change.id] = change
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for change in plan.changes:
        for dep in change.depends_on:
            if dep not in by_id:
                raise PlanPolicyError(f"change {change.id}: depends on {dep}, which is not in the plan")
        sorter.add(change.id, *change.depends_on)
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        cycle = " -> ".join(str(c) for c in exc.args[1]) if len(exc.args) > 1 else ""
        raise PlanPolicyError(f"the plan's dependencies form a cycle: {cycle}") from None
    ancestors = _ancestors(plan.changes)
    for change in plan.changes:
        _check_change(change, by_id, ancestors[change.id])


def _ancestors(changes: list[Change]) -> dict[str, set[str]]:
    deps = {c.id: list(c.depends_on) for c in changes}
    memo: dict[str, set[str]] = {}
    for cid in graphlib.TopologicalSorter(deps).static_order():
        memo[cid] = set(deps[cid]).union(*(memo[d] for d in deps[cid]))
    return memo


def _check_change(change: Change, by_id: dict[str, Change], ancestors: set[str]) -> None:
    where = f"change {change.id}"
    op = change.operation
    data = change.to_dict()
    # Secrets: only inside the request, where the tool puts them (checked per operation), or as the
    # `after` value shown masked. Anywhere else a placeholder would be resolved into something sent or kept.
    elsewhere = {k: v for k, v in data.items() if k not in ("operation", "after")}
    if op is not None:
        elsewhere["operation"] = {k: v for k, v in data["operation"].items() if k != "request"}
    if SECRET.search(json.dumps(elsewhere)):
        raise PlanPolicyError(f"{where}: a secret placeholder outside the request it belongs to")
    for m in REF.finditer(json.dumps(data)):
        source, output = m.group(1), m.group(2)
        if source not in by_id or output not in by_id[source].outputs:
            raise PlanPolicyError(f"{where}: refers to {source}#{output}, which no change in the plan provides")
        if source not in ancestors:
            raise PlanPolicyError(f"{where}: refers to {source} without depending on it")
    if change.wait is not None and change.wait.kind not in WAIT_KINDS:
        raise PlanPolicyError(f"{where}: unknown wait kind {change.wait.kind!r}")
    if op is None:
        return
    if op.kind == "graph":
        _check_graph(where, op.request)
    elif op.kind in CMDLETS:
        _check_cmdlet(where, op.kind, op.request)
    elif op.kind == "local":
        allowed = LOCAL_ACTIONS.get(str(op.request.get("action")))
        if allowed is None or not set(op.request) <= allowed or SECRET.search(json.dumps(op.request)):
            raise PlanPolicyError(f"{where}: a local operation this tool does not make")
    else:
        raise PlanPolicyError(f"{where}: unknown operation kind {op.kind!r}")


def _check_graph(where: str, request: dict[str, Any]) -> None:
    extra = set(request) - {"method", "path", "body", "on_conflict_get"}
    if extra:
        raise PlanPolicyError(f"{where}: unexpected fields in a Graph request: {sorted(extra)}")
    method, path, body = request.get("method"), request.get("path"), request.get("body")
    if not isinstance(method, str) or not isinstance(path, str):
        raise PlanPolicyError(f"{where}: a Graph request needs a method and a path")
    route, query_args = _relative(where, path)
    if body is not None and not isinstance(body, dict):
        raise PlanPolicyError(f"{where}: a Graph request body must be an object")
    for shape in GRAPH:
        if shape.method == method and shape.path.match(route):
            break
    else:
        raise PlanPolicyError(f"{where}: {method} {path.split('?')[0]} is not a request this tool makes")
    if not set(query_args) <= shape.query:
        raise PlanPolicyError(f"{where}: query parameters {sorted(set(query_args) - shape.query)} are not allowed")
    if body and not set(body) <= shape.body:
        raise PlanPolicyError(f"{where}: body properties {sorted(set(body) - shape.body)} are not allowed")
    for spot in _secret_spots(body or {}):
        if spot not in shape.secrets:
            raise PlanPolicyError(f"{where}: a secret placeholder in {spot!r}, where this tool never puts one")
    if SECRET.search(path):
        raise PlanPolicyError(f"{where}: a secret placeholder in a request path")
    conflict = request.get("on_conflict_get")
    if conflict is not None:
        if not isinstance(conflict, str) or SECRET.search(conflict):
            raise PlanPolicyError(f"{where}: on_conflict_get must be a path")
        again, conflict_query = _relative(where, conflict)
        if conflict_query or not CONFLICT_GET.match(again):
            raise PlanPolicyError(f"{where}: on_conflict_get {conflict.split('?')[0]} is not a read this tool makes")


def _relative(where: str, path: str) -> tuple[str, dict[str, str]]:
    """A path relative to the Graph /v1.0 base: no scheme, no host, no dot segments. The query is
    returned apart (its values may hold URLs, e.g. `$id=`; they are data, not where the request goes)."""
    masked = REF.sub("REF", path)  # a reference holds '#' and '/', which are not the path's own
    if any(ch.isspace() or ord(ch) < 32 for ch in masked) or "\\" in masked:
        raise PlanPolicyError(f"{where}: the request path holds whitespace or control characters")
    parts = urlsplit(masked)
    if parts.scheme or parts.netloc or not masked.startswith("/") or masked.startswith("//") or parts.fragment:
        raise PlanPolicyError(
            f"{where}: the request path {path.split('?')[0][:80]!r} is not a relative /v1.0 path "
            "(an absolute URL or another host)"
        )
    route = path.split("?", 1)[0]
    if any(seg in (".", "..") for seg in route.split("/")):
        raise PlanPolicyError(f"{where}: dot segments in the request path")
    query: dict[str, str] = {}
    if "?" in path:
        for pair in path.split("?", 1)[1].split("&"):
            key, _, value = pair.partition("=")
            query[key] = value
    return route, query


def _check_cmdlet(where: str, kind: str, request: dict[str, Any]) -> None:
    if not set(request) <= {"cmdlet", "parameters"}:
        raise PlanPolicyError(f"{where}: unexpected fields in a cmdlet request")
    name, params = request.get("cmdlet"), request.get("parameters", {})
    allowed = CMDLETS[kind].get(str(name))
    if allowed is None:
        raise PlanPolicyError(f"{where}: cmdlet {name} is not one this tool runs on {kind}")
    if not isinstance(params, dict):
        raise PlanPolicyError(f"{where}: cmdlet parameters must be an object")
    extra = set(params) - allowed
    if extra:
        raise PlanPolicyError(f"{where}: {name} parameter(s) {sorted(extra)} are not on the allow-list")
    if SECRET.search(json.dumps(params)):
        raise PlanPolicyError(f"{where}: a secret placeholder in a cmdlet parameter, where this tool never puts one")


def _secret_spots(value: Any, prefix: str = "") -> list[str]:
    """Dotted paths of the values that hold a ${secret:...} placeholder."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _secret_spots(v, f"{prefix}.{k}" if prefix else str(k))]
    if isinstance(value, list):
        return [s for v in value for s in _secret_spots(v, prefix + "[]")]
    return [prefix] if isinstance(value, str) and SECRET.search(value) else []
