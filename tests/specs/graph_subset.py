"""Generate the project's Microsoft Graph subset from Microsoft's v1.0 CSDL.

    python -m tests.specs.graph_subset [--metadata PATH] [--check]

Reads graph-v1.0-metadata.xml (microsoftgraph/msgraph-metadata, clean_v10_metadata/cleanMetadata.xml; the
shared copy lives in shared/specs beside the repository) and writes tests/specs/graph-v1.0-subset.json: for
each path the product calls (PATHS below), the methods and the CSDL type it answers with, resolved segment by
segment (entity sets, singletons, keys, alternate keys, navigation properties, casts, bound actions), and
every entity and complex type reachable from them with its properties (BaseType chains kept). The tests and
the request-log check read that file, so they don't need shared/specs; `--check` (run by the tests when the
metadata is there, and required under CI=true) fails when the committed file is not what this script makes.

To call a new Graph path: add it to PATHS, run the script, commit both.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
ROOT = Path(__file__).resolve().parents[2]
DEFAULT_METADATA = ROOT.parent / "shared" / "specs" / "graph-v1.0-metadata.xml"
OUTPUT = Path(__file__).resolve().parent / "graph-v1.0-subset.json"

# The Graph v1.0 calls m365archive makes (path template -> methods). Templates use the OpenAPI names.
PATHS: dict[str, list[str]] = {
    "/$batch": ["POST"],
    "/directoryRoles": ["GET", "POST"],
    "/directoryRoles(roleTemplateId='{roleTemplateId}')": ["GET"],
    "/directoryRoles/{directoryRole-id}/members/$ref": ["DELETE", "GET", "POST"],
    "/groups/{group-id}/members": ["GET"],
    "/identity/conditionalAccess/policies": ["GET"],
    "/groups/{group-id}/members/graph.user": ["GET"],
    "/groups/{group-id}/transitiveMembers": ["GET"],
    "/groups/{group-id}/transitiveMembers/graph.user": ["GET"],
    "/oauth2PermissionGrants": ["GET", "POST"],
    "/me/transitiveMemberOf/graph.directoryRole": ["GET"],
    "/organization": ["GET"],
    "/policies/identitySecurityDefaultsEnforcementPolicy": ["GET"],
    "/roleManagement/directory/roleAssignments": ["GET", "POST"],
    "/roleManagement/directory/roleDefinitions": ["GET", "POST"],
    "/roleManagement/directory/roleEligibilityScheduleInstances": ["GET"],
    "/servicePrincipals": ["GET", "POST"],
    "/servicePrincipals(appId='{appId}')": ["DELETE", "GET", "PATCH"],
    "/servicePrincipals/{servicePrincipal-id}": ["DELETE", "GET", "PATCH"],
    "/servicePrincipals/{servicePrincipal-id}/appRoleAssignments": ["GET", "POST"],
    "/servicePrincipals/{servicePrincipal-id}/oauth2PermissionGrants": ["GET"],
    "/servicePrincipals/{servicePrincipal-id}/transitiveMemberOf/graph.directoryRole": ["GET"],
    "/subscribedSkus": ["GET", "POST"],
    "/users": ["GET", "POST"],
    "/users/{user-id}": ["DELETE", "GET", "PATCH"],
    "/users/{user-id}/assignLicense": ["POST"],
    "/users/{user-id}/revokeSignInSessions": ["POST"],
}


class Csdl:
    def __init__(self, path: Path) -> None:
        root = ET.parse(path).getroot()
        self.schemas = list(root.iter(EDM + "Schema"))
        self.aliases = {s.get("Alias"): s.get("Namespace") for s in self.schemas if s.get("Alias")}
        self.types: dict[str, ET.Element] = {}
        self.actions: list[tuple[str, ET.Element]] = []
        self.container: dict[str, tuple[str, bool]] = {}  # name -> (type, is collection)
        for schema in self.schemas:
            namespace = schema.get("Namespace", "")
            for node in schema:
                if node.tag in (EDM + "EntityType", EDM + "ComplexType"):
                    self.types[f"{namespace}.{node.get('Name')}"] = node
                elif node.tag in (EDM + "Action", EDM + "Function"):
                    self.actions.append((namespace, node))
                elif node.tag == EDM + "EntityContainer":
                    for item in node:
                        if item.tag == EDM + "EntitySet":
                            self.container[item.get("Name", "")] = (self.qualify(item.get("EntityType")), True)
                        elif item.tag == EDM + "Singleton":
                            self.container[item.get("Name", "")] = (self.qualify(item.get("Type")), False)

    def qualify(self, name: str | None) -> str:
        if not name:
            return ""
        inner = name[len("Collection(") : -1] if name.startswith("Collection(") else name
        prefix, _, local = inner.rpartition(".")
        return f"{self.aliases.get(prefix, prefix)}.{local}"

    def base(self, type_name: str) -> str | None:
        node = self.types.get(type_name)
        return self.qualify(node.get("BaseType")) if node is not None and node.get("BaseType") else None

    def members(self, type_name: str) -> dict[str, tuple[str, bool]]:
        """Own and inherited properties and navigation properties: name -> (type, is collection)."""
        out: dict[str, tuple[str, bool]] = {}
        current: str | None = type_name
        while current:
            node = self.types[current]
            for p in node:
                if p.tag in (EDM + "Property", EDM + "NavigationProperty"):
                    raw = p.get("Type", "")
                    out.setdefault(p.get("Name", ""), (self.qualify(raw), raw.startswith("Collection(")))
            current = self.base(current)
        return out

    def is_a(self, type_name: str, ancestor: str) -> bool:
        current: str | None = type_name
        while current:
            if current == ancestor:
                return True
            current = self.base(current)
        return False

    def bound_action(self, name: str, binding: str, collection: bool) -> str:
        for _namespace, node in self.actions:
            if node.get("Name") != name or node.get("IsBound") != "true":
                continue
            params = [p for p in node if p.tag == EDM + "Parameter"]
            raw = params[0].get("Type", "") if params else ""
            if raw.startswith("Collection(") == collection and self.is_a(binding, self.qualify(raw)):
                returns = [r for r in node if r.tag == EDM + "ReturnType"]
                return self.qualify(returns[0].get("Type")) if returns else ""
        raise KeyError(f"no action {name} bound to {binding}")


SEGMENT = re.compile(r"^(?P<name>[^(]+)(?:\((?P<key>[^)]*)\))?$")


def resolve(csdl: Csdl, path: str) -> str:
    """The CSDL type a path answers with ("" for $batch and $ref)."""
    if path == "/$batch":
        return ""
    segments = path.strip("/").split("/")
    first = SEGMENT.match(segments[0])
    assert first, path
    type_name, collection = csdl.container[first["name"]]
    if first["key"] is not None:
        alternate = first["key"].split("=")[0]
        if alternate not in csdl.members(type_name):
            raise KeyError(f"{path}: {type_name} has no alternate key {alternate}")
        collection = False
    for segment in segments[1:]:
        if segment == "$ref":
            return ""
        if segment.startswith("{") and collection:
            collection = False
            continue
        if segment.startswith("graph."):
            cast = f"microsoft.graph.{segment[len('graph.') :]}"
            if not csdl.is_a(cast, type_name):
                raise KeyError(f"{path}: {cast} is not a {type_name}")
            type_name = cast
            continue
        props = csdl.members(type_name)
        if segment in props:
            type_name, collection = props[segment]
            continue
        type_name, collection = csdl.bound_action(segment, type_name, collection), False
    return type_name


def closure(csdl: Csdl, roots: list[str]) -> dict[str, Any]:
    """Every entity/complex type reachable from `roots` (properties, navigation targets, base types, and the
    types derived from those, which `@odata.type` can name)."""
    derived: dict[str, list[str]] = {}
    for name in csdl.types:
        parent = csdl.base(name)
        if parent:
            derived.setdefault(parent, []).append(name)
    out: dict[str, Any] = {}
    todo = [r for r in roots if r in csdl.types]
    while todo:
        name = todo.pop()
        if name in out:
            continue
        node = csdl.types[name]
        own = {
            p.get("Name", ""): csdl.qualify(p.get("Type"))
            for p in node
            if p.tag in (EDM + "Property", EDM + "NavigationProperty")
        }
        out[name] = {"base": csdl.base(name), "properties": dict(sorted(own.items()))}
        # Complex-typed properties are followed; navigation targets only when they are roots themselves.
        nav = {p.get("Name") for p in node if p.tag == EDM + "NavigationProperty"}
        todo.extend(t for n, t in own.items() if t in csdl.types and (n not in nav or t in roots))
        base = csdl.base(name)
        if base:
            todo.append(base)
        todo.extend(derived.get(name, []) if name in roots else [])
    return dict(sorted(out.items()))


def generate(metadata: Path) -> dict[str, Any]:
    csdl = Csdl(metadata)
    paths = {p: {"methods": sorted(m), "type": resolve(csdl, p)} for p, m in sorted(PATHS.items())}
    roots = sorted({v["type"] for v in paths.values() if v["type"]})
    # Request bodies name types too (assignLicense's assignedLicense, ...).
    for _namespace, node in csdl.actions:
        if node.get("Name") in {p.rsplit("/", 1)[-1] for p in PATHS}:
            roots += [csdl.qualify(p.get("Type")) for p in node if p.tag == EDM + "Parameter"]
    return {
        "info": {
            "title": "Microsoft Graph v1.0: the paths m365archive calls, and their types (derived from the CSDL)",
            "source": "microsoftgraph/msgraph-metadata clean_v10_metadata/cleanMetadata.xml (shared/specs)",
            "metadata_sha256": hashlib.sha256(metadata.read_bytes()).hexdigest(),
            "generator": "tests/specs/graph_subset.py",
        },
        "paths": paths,
        "types": closure(csdl, sorted(set(roots))),
    }


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--metadata", type=Path, default=DEFAULT_METADATA)
    parser.add_argument("--check", action="store_true", help="fail when the committed subset differs")
    args = parser.parse_args(argv)
    if not args.metadata.is_file():
        print(f"graph_subset: {args.metadata} not found", file=sys.stderr)
        return 2
    text = render(generate(args.metadata))
    if args.check:
        if not OUTPUT.is_file() or OUTPUT.read_text(encoding="utf-8") != text:
            print(f"graph_subset: {OUTPUT.name} is stale: run python -m tests.specs.graph_subset", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)}: {len(PATHS)} paths")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
