"""Change and Plan: versioned data that knows nothing of Microsoft.

A Change carries the exact operation apply will send (an opaque `Operation` that tenant/
interprets), its before/after values and how to present it. Values unknown until apply are
`${ref:<change id>#<output>}` placeholders; secrets are `${secret:<name>}` placeholders that
only the runner resolves, so a plan (and anything rendered from it) never holds a secret.

Format 2 binds a plan to what produced it: `digest` is a sha256 over the canonical changes, the
fingerprint of what was read, the config's own digest, tenant, cloud, procedure, tool version and the
selection (steps, options) that produced it. The approved ticket quotes the digest; apply recomputes
it and re-plans before sending anything (see engine/binding.py). `appliable` and `checks[]` are
reserved here for prerequisite checks (a failed blocking check makes a plan not appliable).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from m365archive.engine.checks import Check

FORMAT_VERSION = "2"
REPLAN = "make a new plan with `--dry-run --plan-out FILE` and have it approved"
KNOWN_AFTER_APPLY = "(known after apply)"
NEW_MAILBOX = "(new mailbox) "  # before-values a mailbox not yet provisioned will show


def setting_text(value: Any) -> str:
    """A setting's value in the one vocabulary every step's rows use: a two-state setting is on or off
    (Exchange's True/False, an archive's Active/None), an absent value "(none)"."""
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


SENSITIVE = "(sensitive value)"  # the one mask: what a report (and a plan's `before`) shows for a secret
REF = re.compile(r"\$\{ref:([^}#]+)#([^}]+)\}")
SECRET = re.compile(r"\$\{secret:([^}]+)\}")


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    NOOP = "no-op"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    HIGH = "high"
    CRITICAL = "critical"


class OperationKind(StrEnum):
    """The transport an Operation goes through (its value is what plan files hold)."""

    GRAPH = "graph"
    EXCHANGE = "exchange"
    COMPLIANCE = "compliance"
    ONPREM = "onprem"
    LOCAL = "local"  # this machine (the apply executor runs it itself)


class WaitKind(StrEnum):
    """What a Wait polls for after its change (its value is what plan files hold)."""

    EXCHANGE_MAILBOX = "exchange-mailbox"
    SERVICE_PRINCIPAL = "service-principal"
    SERVICE_PRINCIPAL_GONE = "service-principal-gone"
    ARCHIVE_ACTIVE = "archive-active"


def _known(enum: type[StrEnum], value: str) -> Any:
    """The member for a value read from a plan file, or the text itself: a saved plan may hold a kind this
    tool never makes, which the plan policy refuses by name (tenant/plan_policy.py)."""
    return enum(value) if value in enum._value2member_map_ else value


@dataclass(slots=True)
class Operation:
    """What apply sends. `kind` names the transport; `request` is its exact payload (method/path/body,
    or cmdlet/parameters)."""

    kind: OperationKind | str  # a str only when read from a plan file that holds an unknown kind
    request: dict[str, Any]
    display: str  # the exact request line, e.g. "POST /v1.0/users" or "Set-Mailbox -Identity x ..."
    powershell: str = ""  # the line an admin would recognise
    ok_if_error: list[str] = field(default_factory=list)  # error texts that mean "already so"

    def __post_init__(self) -> None:
        self.kind = _known(OperationKind, self.kind)


@dataclass(slots=True)
class Wait:
    """After a change, poll until the service shows its effect (eventual consistency)."""

    kind: WaitKind | str  # a str only when read from a plan file that holds an unknown kind
    target: str
    timeout: float
    description: str

    def __post_init__(self) -> None:
        self.kind = _known(WaitKind, self.kind)


@dataclass(slots=True)
class Change:
    id: str  # stable within a plan: "<step>/<what>/<target>"
    step: str
    target: str
    setting: str
    action: Action
    before: Any
    after: Any
    operation: Operation | None = None
    side: str = ""  # where it runs: "Microsoft Graph", "Exchange Online", ...
    depends_on: list[str] = field(default_factory=list)
    sensitive: bool = False
    warnings: list[str] = field(default_factory=list)
    rollback: str | None = None  # the PowerShell line that undoes it (built by m365archive.powershell)
    wait: Wait | None = None
    outputs: dict[str, str] = field(default_factory=dict)  # name -> dotted path in the response
    category: str = ""  # grouping for summaries at scale, e.g. "archive", "hold"
    rollback_note: str = ""  # what undoing it does and loses (or why it can't be undone)

    def to_dict(self) -> dict[str, Any]:
        return _clean(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Change:
        op = data.get("operation")
        wait = data.get("wait")
        return cls(
            id=data["id"],
            step=data["step"],
            target=data["target"],
            setting=data["setting"],
            action=Action(data["action"]),
            before=data.get("before"),
            after=data.get("after"),
            operation=Operation(**op) if op else None,
            side=data.get("side", ""),
            depends_on=list(data.get("depends_on", [])),
            sensitive=bool(data.get("sensitive")),
            warnings=list(data.get("warnings", [])),
            rollback=data.get("rollback"),
            wait=Wait(**wait) if wait else None,
            outputs=dict(data.get("outputs", {})),
            category=data.get("category", ""),
            rollback_note=data.get("rollback_note", ""),
        )


@dataclass(slots=True)
class Finding:
    """Something the plan can't or won't change, said out loud (never silently skipped)."""

    step: str
    target: str
    severity: Severity
    message: str
    remedy: str = ""
    category: str = ""
    id: str = ""  # stable across runs: "<step>/<category>/<target>"; what [[accepted_risks]] names
    accepted: str = ""  # why the risk is accepted, when it is
    accepted_by: str = ""  # "procedure" (the documented procedure requires it) or "config"

    def __post_init__(self) -> None:
        if not self.id:
            self.id = f"{self.step}/{self.category or 'finding'}/{self.target}"

    def to_dict(self) -> dict[str, Any]:
        return _clean(asdict(self))


@dataclass
class Plan:
    procedure: str
    tenant: dict[str, str]
    operator: str
    tool_version: str
    changes: list[Change] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    instructions: list[str] = field(default_factory=list)
    coverage: list[str] = field(default_factory=list)  # how a scope was covered (e.g. policies)
    fingerprint: str = ""
    plan_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    format_version: str = FORMAT_VERSION
    kind: str = "setup"  # "setup", "legacy-cleanup", "consent-revoke", "credentials-rotate"
    config_digest: str = ""  # the digest of the validated config that produced the plan
    # Which steps and options produced it (replayed at apply): "steps"; for a staged rollout "mailboxes"
    # and "limit" (app/selection.py); legacy cleanup's "accounts" and "rotate_password".
    selection: dict[str, Any] = field(default_factory=dict)
    appliable: bool = True  # false when a blocking check failed
    digest: str = ""  # set by seal(); see the module docstring

    def digest_input(self) -> dict[str, Any]:
        """Everything the digest covers besides the changes (display-only fields such as notices and
        findings are not applied, so not covered)."""
        return {
            "format_version": self.format_version,
            "kind": self.kind,
            "procedure": self.procedure,
            "tenant": {"id": self.tenant.get("id", ""), "cloud": self.tenant.get("cloud", "")},
            "tool_version": self.tool_version,
            "fingerprint": self.fingerprint,
            "config_digest": self.config_digest,
            "selection": self.selection,
        }

    def compute_digest(self) -> str:
        """sha256 over the canonical header, then each change's canonical JSON on its own line (one
        change at a time, so a plan of 100,000 changes is never one string in memory)."""
        digest = hashlib.sha256(canonical_json(self.digest_input()).encode())
        for change in self.changes:
            digest.update(b"\n" + canonical_json(change.to_dict()).encode())
        return "sha256:" + digest.hexdigest()

    def seal(self) -> str:
        """Compute and keep the digest (once the plan is complete)."""
        self.digest = self.compute_digest()
        return self.digest

    @property
    def pending(self) -> list[Change]:
        return [c for c in self.changes if c.action is not Action.NOOP]

    def counts(self) -> dict[str, int]:
        counts = {a.value: 0 for a in Action}
        for change in self.changes:
            counts[change.action.value] += 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "kind": self.kind,
            "plan_id": self.plan_id,
            "created": self.created,
            "tool_version": self.tool_version,
            "procedure": self.procedure,
            "tenant": self.tenant,
            "operator": self.operator,
            "fingerprint": self.fingerprint,
            "config_digest": self.config_digest,
            "selection": self.selection,
            "digest": self.digest or self.seal(),
            "appliable": self.appliable,
            "notices": self.notices,
            "summary": self.counts(),
            "checks": [c.to_dict() for c in self.checks],
            "changes": [c.to_dict() for c in self.changes],
            "findings": [f.to_dict() for f in self.findings],
            "coverage": self.coverage,
            "instructions": self.instructions,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        if not isinstance(data, dict):
            raise PlanFormatError("not a valid m365archive plan: the file is not a JSON object")
        version = str(data.get("format_version", ""))
        if version == "1":
            raise PlanFormatError(f"plan format_version 1 is from an older m365archive and is not applied: {REPLAN}")
        if version != FORMAT_VERSION:
            raise PlanFormatError(
                f"plan format_version {version or '(missing)'} is not supported "
                f"(this tool reads {FORMAT_VERSION}): {REPLAN}"
            )
        try:
            return cls(
                procedure=data["procedure"],
                tenant=dict(data["tenant"]),
                operator=data.get("operator", ""),
                tool_version=data.get("tool_version", ""),
                changes=[Change.from_dict(c) for c in data.get("changes", [])],
                findings=[Finding(**{**f, "severity": Severity(f["severity"])}) for f in data.get("findings", [])],
                checks=[Check.from_dict(c) for c in data.get("checks", [])],
                notices=list(data.get("notices", [])),
                instructions=list(data.get("instructions", [])),
                coverage=list(data.get("coverage", [])),
                fingerprint=data.get("fingerprint", ""),
                plan_id=data["plan_id"],
                created=data.get("created", ""),
                kind=data.get("kind", "setup"),
                config_digest=str(data["config_digest"]),
                selection=dict(data["selection"]),
                appliable=bool(data.get("appliable", True)),
                digest=str(data["digest"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise PlanFormatError(f"not a valid m365archive plan: {exc}") from exc


class PlanFormatError(ValueError):
    pass


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace: the same data always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def sha256_digest(value: Any) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(value).encode()).hexdigest()


def fingerprint(observed: dict[str, Any]) -> str:
    """A digest of everything the plan read: equal iff the tenant looked the same."""
    return sha256_digest(observed)


def short_digest(digest: str) -> str:
    """The form a report header and a ticket line show: enough to tell plans apart."""
    return digest.removeprefix("sha256:")[:12]


def digest_matches(digest: str, expected: str) -> bool:
    """Does `expected` (from a ticket: the full digest, or its short form of at least 12 hex digits) name `digest`?"""
    want = expected.strip().lower().removeprefix("sha256:")
    have = digest.lower().removeprefix("sha256:")
    return len(want) >= 12 and all(c in "0123456789abcdef" for c in want) and have.startswith(want)


def ref(change_id: str, output: str) -> str:
    """A value known after apply: the `output` of change `change_id`."""
    return f"${{ref:{change_id}#{output}}}"


def secret(name: str) -> str:
    return f"${{secret:{name}}}"


def present(value: Any) -> Any:
    """How a value is shown in reports: placeholders become words, never guesses or secrets."""
    if isinstance(value, str):
        if SECRET.search(value):
            return SENSITIVE
        if REF.search(value):
            return KNOWN_AFTER_APPLY
        return value
    if isinstance(value, list):
        return [present(v) for v in value]
    if isinstance(value, dict):
        return {k: present(v) for k, v in value.items()}
    return value


def _clean(data: dict[str, Any]) -> dict[str, Any]:
    """Drop empty optional fields so plan files stay readable."""
    return {k: v for k, v in data.items() if v not in (None, [], {}, "") or k in ("before", "after")}
