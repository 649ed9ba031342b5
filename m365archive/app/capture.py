"""`capture`: a twin of the tenant for the simulator, streamed to a file, pseudonymised by default.

The tenant reader (reads only) yields records of the captured-scenario format; each is pseudonymised (HMAC
under a key made for this capture and never written) and written as one JSON line at once, so 100,000
mailboxes never sit in memory. Beside it goes the matching copy of the config, with the same pseudonyms (and
the scope file's UPNs), so the twin can be planned against at once:

    m365archive capture --out twin.jsonl
    m365archive sim serve --scenario twin.jsonl
    m365archive --sim URL --config twin.toml setup --dry-run

No record has a field for a password, secret or token, and the reader never asks for one.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomlkit

from m365archive import __version__, scenario_format
from m365archive.app.context import Env, connect, reading
from m365archive.app.tenant_reader import TenantReader, scope_of
from m365archive.config import GUID, Config
from m365archive.errors import CommandError, Reason
from m365archive.files import open_private, write_error, write_private
from m365archive.scenario_format import Pseudonymizer
from m365archive.scope_file import ScopeFileError, read_scope_file


@dataclass
class Captured:
    scenario: Path
    config: Path
    scope_file: Path | None
    pseudonymised: bool
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def twin_paths(out: Path) -> tuple[Path, Path]:
    """The config copy and the scope-file copy beside a captured scenario (twin.jsonl -> twin.toml)."""
    stem = out.name.removesuffix(scenario_format.SUFFIX) if out.name.endswith(scenario_format.SUFFIX) else out.stem
    return out.with_name(stem + ".toml"), out.with_name(stem + ".users.txt")


async def capture(
    env: Env,
    config: Config,
    config_text: str,
    out: Path,
    *,
    keep_names: bool = False,
    pseudonymizer: Pseudonymizer | None = None,
) -> Captured:
    """Read the tenant (reads only) into `out`, and write the matching config copy beside it."""
    pseudo = None if keep_names else (pseudonymizer or Pseudonymizer())
    started = time.monotonic()
    counts: Counter[str] = Counter()
    config_out, scope_out = twin_paths(out)
    try:
        with open_private(out) as stream:
            async with connect(env, config) as session:
                reader = TenantReader(session, scope_of(config), progress=env.progress)
                with reading():
                    async for record in reader.records():
                        if record["type"] == "tenant":
                            stream.write(scenario_format.dump(_header(record, session, config, pseudo)))
                            continue
                        counts[record["type"]] += 1
                        stream.write(scenario_format.dump(pseudo.record(record) if pseudo else record))
    except OSError as exc:
        raise CommandError(write_error(out, exc), Reason.USAGE) from None
    scope_file = _scope_copy(config, scope_out, pseudo)
    text = twin_config(config_text, pseudo, scope_file)
    try:
        write_private(config_out, text)
    except OSError as exc:
        raise CommandError(write_error(config_out, exc), Reason.USAGE) from None
    return Captured(out, config_out, scope_file, pseudo is not None, dict(counts), time.monotonic() - started)


def _header(record: dict[str, Any], session: Any, config: Config, pseudo: Pseudonymizer | None) -> dict[str, Any]:
    tenant = {k: record[k] for k in ("id", "domain", "cloud")}
    operator = None if session.app_only else (session.operator or None)
    onprem = None
    if config.onprem is not None and config.onprem.username:
        onprem = {"accounts": [pseudo.account(config.onprem.username) if pseudo else config.onprem.username]}
    if pseudo:
        tenant = pseudo.tenant(tenant)
        operator = pseudo.upn(operator) if operator else None
    return scenario_format.header(
        tenant,
        signed_in_user=operator,
        pseudonymised=pseudo is not None,
        tool_version=__version__,
        captured_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        onprem=onprem,
    )


def _scope_copy(config: Config, path: Path, pseudo: Pseudonymizer | None) -> Path | None:
    """The scope file with its UPNs (or object ids) pseudonymised, so the twin config's scope is the same."""
    if config.users.scope != "file" or not config.users.file:
        return None
    try:
        scope = read_scope_file(config.users.file)
    except ScopeFileError as exc:
        raise CommandError(str(exc), Reason.PREREQUISITE) from None
    lines = [_pseudo_key(key, pseudo) for key in scope.wanted]
    try:
        write_private(path, "".join(line + "\n" for line in lines))
    except OSError as exc:
        raise CommandError(write_error(path, exc), Reason.USAGE) from None
    return path


def _pseudo_key(key: str, pseudo: Pseudonymizer | None) -> str:
    if pseudo is None:
        return key
    return pseudo.id(key) if GUID.match(key) else pseudo.upn(key)


_RISK_SEGMENT = re.compile(r"[^/]+@[^/]+")
TWIN_NOTE = (
    "# The config for a pseudonymised twin written by `m365archive capture`: the same desired state, with the\n"
    "# capture's pseudonyms for names, UPNs, domains and ids. Plan against the twin with\n"
    "#   m365archive --sim <URL> --config <this file> setup --dry-run\n\n"
)


def twin_config(text: str, pseudo: Pseudonymizer | None, scope_file: Path | None) -> str:
    """The config with the capture's pseudonyms in place of the tenant's names (comments kept)."""
    doc = tomlkit.parse(text)
    if scope_file is not None:
        doc["users"]["file"] = str(scope_file)
    if pseudo is None:
        return tomlkit.dumps(doc)
    tenant = doc["tenant"]
    tid = str(tenant["id"])
    tenant["id"] = pseudo.id(tid) if GUID.match(tid) else pseudo.domain(tid)
    if "domain" in tenant:
        tenant["domain"] = pseudo.domain(str(tenant["domain"]))
    auth = doc.get("auth")
    if auth is not None:
        for key in ("client_id", "managed_identity_client_id"):
            if key in auth:
                auth[key] = pseudo.id(str(auth[key]))
        if "certificate" in auth:
            del auth["certificate"]  # a path on the operator's machine: not the twin's business
    catchall = doc.get("catchall")
    if catchall is not None:
        catchall["upn"] = pseudo.upn(str(catchall["upn"]))
        if "display_name" in catchall:
            catchall["display_name"] = pseudo.name(str(catchall["display_name"]))
        for i, entry in enumerate(catchall.get("full_access", [])):
            if isinstance(entry, str):
                catchall["full_access"][i] = pseudo.upn(entry)
            else:
                entry["user"] = pseudo.upn(str(entry["user"]))
    hold = doc.get("hold")
    if hold is not None and "retention_policy" in hold:
        hold["retention_policy"] = pseudo.policy(str(hold["retention_policy"]))
    users = doc.get("users")
    if users is not None:
        for key, fn in (("groups", pseudo.id), ("exclude", pseudo.upn)):
            if key in users:
                users[key] = [fn(str(v)) for v in users[key]]
    connector = doc.get("connector")
    if connector is not None:
        if "role_group" in connector:
            connector["role_group"] = pseudo.role_group(str(connector["role_group"]))
        if "role_group_member" in connector:
            connector["role_group_member"] = pseudo.upn(str(connector["role_group_member"]))
        if "legacy_catchall" in connector:
            connector["legacy_catchall"] = [pseudo.upn(str(v)) for v in connector["legacy_catchall"]]
    onprem = doc.get("onprem")
    if onprem is not None:
        onprem["server"] = pseudo.domain(str(onprem["server"]))
        if "username" in onprem:
            onprem["username"] = pseudo.account(str(onprem["username"]))
    for risk in doc.get("accepted_risks", []):
        risk["id"] = _RISK_SEGMENT.sub(lambda m: pseudo.upn(m.group(0)), str(risk["id"]))
    # Comments are the operator's free text and may name people or the tenant: the pseudonymised copy has none.
    return TWIN_NOTE + tomlkit.dumps(doc.unwrap())
