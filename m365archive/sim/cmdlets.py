"""Spec-driven PowerShell parameter binding for the simulated Exchange endpoints.

Every refusal comes from `exchange-cmdlets.json` (Microsoft's cmdlet reference reduced to
parameter sets, types and where each parameter applies; a copy of shared/specs/ lives in
m365archive/data/). Nothing here lists cmdlets or parameters by hand: a cmdlet the spec
doesn't offer on a side is "not recognized", a parameter the spec doesn't offer there
"cannot be found", parameters from two sets can't be resolved, and so on, with the texts
PowerShell uses.

    bind("Enable-Mailbox", {"Identity": "a@b", "Archive": True}, "exchange-online") -> "Archive"

Binding follows PowerShell's rules closely enough for the product's calls: names are
case-insensitive (normalized to the spec's casing); the candidate sets are the
intersection of each bound parameter's sets; among several candidates, the set whose
mandatory parameters are all bound wins (a switch named like its set, e.g. -Archive in set
Archive, counts as mandatory for it: the docs mark such switches optional), then the spec's
default set, then the set named "Identity" (Exchange's cmdlets declare
DefaultParameterSetName = "Identity"; the docs the spec is derived from don't record it).
Parameter-name prefixes are not expanded. `Spec.load(path)` reads any copy of the file
(tests edit one to show that the verdicts follow the data).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

Side = Literal["exchange-online", "compliance", "on-premises"]

SPEC_PATH = Path(__file__).resolve().parent.parent / "data" / "exchange-cmdlets.json"

# PowerShell's common parameters (about_CommonParameters): every cmdlet accepts them.
COMMON_PARAMETERS = (
    "Debug",
    "ErrorAction",
    "ErrorVariable",
    "InformationAction",
    "InformationVariable",
    "OutBuffer",
    "OutVariable",
    "PipelineVariable",
    "ProgressAction",
    "Verbose",
    "WarningAction",
    "WarningVariable",
)

_SIDE_FLAG: dict[str, str] = {
    "exchange-online": "exchange_online",
    "compliance": "security_and_compliance",
    "on-premises": "on_premises",
}

# A valid_values entry that names a value ("FullAccess", "None (default ...)", "Descendents [sic]")
# rather than describing one in prose ("$true: ...", "an integer ...", "Distinguished name (DN)").
_VALUE_NAME = re.compile(r"^([A-Za-z][A-Za-z0-9]*)(?:\s*\(.*\)|\s*\[sic\])?$")
_NUMERIC_TYPES = {
    "Int16": "System.Int16",
    "Int32": "System.Int32",
    "Int64": "System.Int64",
    "UInt32": "System.UInt32",
}
_NO_ENUM_TYPES = {
    "Boolean",
    "System.Boolean",
    "SwitchParameter",
    "Unlimited",
    "ByteQuantifiedSize",
    *_NUMERIC_TYPES,
}
_MULTI_TYPES = {"MultiValuedProperty", "ProxyAddressCollection"}
_SIZE = re.compile(r"^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB)?(\s*\([\d,]+ bytes\))?\s*$", re.IGNORECASE)
_TIMESPAN = re.compile(r"^\s*(\d+|(\d+\.)?\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)\s*$")


class CmdletRefusal(Exception):
    """PowerShell refused the call before the cmdlet ran.

    `category` is the exception's short name (CommandNotFoundException,
    ParameterBindingException, ParameterBindingValidationException, ...), `error_id` the
    FullyQualifiedErrorId's first part (NamedParameterNotFound, AmbiguousParameterSet, ...).
    """

    def __init__(self, message: str, *, category: str, error_id: str, parameter: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.category = category
        self.error_id = error_id
        self.parameter = parameter


@dataclass(frozen=True)
class ParameterSpec:
    name: str
    type: str
    sets: tuple[str, ...]  # ("(All)",) for every set
    sides: frozenset[str]
    valid_values: tuple[str, ...] | None  # a closed set of names, or None when not enforceable

    @property
    def multi(self) -> bool:
        return self.type.endswith("[]") or self.type in _MULTI_TYPES

    @property
    def element_type(self) -> str:
        return self.type[:-2] if self.type.endswith("[]") else self.type


@dataclass(frozen=True)
class CmdletSpec:
    name: str
    sides: frozenset[str]
    parameters: dict[str, ParameterSpec]  # by lower-case name
    sets: dict[str, tuple[str, ...]]  # set name -> required parameter names (spec casing)
    default_set: str | None

    def selecting_switches(self, set_name: str) -> set[str]:
        """The switch that names a set and exists only in it (-Archive for set Archive), lower-case."""
        p = self.parameters.get(set_name.lower())
        if p is not None and p.type == "SwitchParameter" and tuple(p.sets) == (set_name,):
            return {p.name.lower()}
        return set()

    def members(self, parameter: ParameterSpec) -> tuple[str, ...]:
        if "(All)" in parameter.sets or not parameter.sets:
            return tuple(self.sets)
        return tuple(s for s in parameter.sets if s in self.sets)


@dataclass
class Binding:
    cmdlet: str  # spec casing
    parameter_set: str
    parameters: dict[str, Any] = field(default_factory=dict)  # spec casing, values normalized


class Spec:
    """The cmdlet reference, indexed for binding. Load once (`default_spec()`), or from any path."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.cmdlets: dict[str, CmdletSpec] = {}
        for name, entry in raw.items():
            self.cmdlets[name.lower()] = _cmdlet_spec(name, entry)

    @classmethod
    def load(cls, path: str | Path) -> Spec:
        return cls(json.loads(Path(path).read_text(encoding="utf-8")))

    def cmdlet(self, name: str) -> CmdletSpec | None:
        return self.cmdlets.get(name.lower())


def _cmdlet_spec(name: str, entry: dict[str, Any]) -> CmdletSpec:
    sides = set()
    if entry.get("exchange_online"):
        sides.add("exchange-online")
    if entry.get("security_and_compliance"):
        sides.add("compliance")
    if any(str(a).startswith("Exchange Server") for a in entry.get("applicable_to", [])):
        sides.add("on-premises")
    params: dict[str, ParameterSpec] = {}
    for pname, p in entry.get("parameters", {}).items():
        psides = frozenset(side for side, flag in _SIDE_FLAG.items() if p.get(flag))
        values: tuple[str, ...] | None = None
        raw_values = [str(v) for v in p.get("valid_values", [])]
        if raw_values and p.get("type") not in _NO_ENUM_TYPES:
            matches = [_VALUE_NAME.match(v) for v in raw_values]
            if all(matches):
                values = tuple(m.group(1) for m in matches if m)
        own_sets = list(p.get("sets", ["(All)"]))
        if "(All)" not in own_sets and p.get("type") != "SwitchParameter":  # a switch can select its set
            # A parameter also belongs to every set whose SYNTAX block lists it: the docs' per-parameter
            # "Parameter Sets" line can be shorter (Set-Mailbox -DefaultAuditSet is in the Identity block, and
            # enable-mailbox-auditing.md uses `Set-Mailbox -Identity <x> -DefaultAuditSet <...>`).
            own_sets += [
                sname
                for sname, s in entry.get("parameter_sets", {}).items()
                if pname in s.get("parameters", []) and sname not in own_sets
            ]
        params[pname.lower()] = ParameterSpec(
            name=pname,
            type=str(p.get("type", "String")),
            sets=tuple(own_sets),
            sides=psides,
            valid_values=values,
        )
    sets: dict[str, tuple[str, ...]] = {}
    default_set = None
    for sname, s in entry.get("parameter_sets", {}).items():
        sets[sname] = tuple(s.get("required", []))
        if s.get("default"):
            default_set = sname
    if not sets:
        sets["__AllParameterSets"] = ()
        default_set = "__AllParameterSets"
    return CmdletSpec(name=name, sides=frozenset(sides), parameters=params, sets=sets, default_set=default_set)


@lru_cache(maxsize=4)
def _load_cached(path: str) -> Spec:
    return Spec.load(path)


def default_spec() -> Spec:
    return _load_cached(str(SPEC_PATH))


def bind(
    cmdlet: str,
    parameters: dict[str, Any],
    side: Side | str,
    *,
    spec: Spec | None = None,
) -> str:
    """The parameter set PowerShell would bind `parameters` to; raises CmdletRefusal."""
    return bind_parameters(cmdlet, parameters, side, spec=spec).parameter_set


def bind_parameters(
    cmdlet: str,
    parameters: dict[str, Any],
    side: Side | str,
    *,
    spec: Spec | None = None,
) -> Binding:
    """Like `bind`, and also the cmdlet and parameter names in the spec's casing, values checked."""
    if side not in _SIDE_FLAG:
        raise ValueError(f"unknown side {side!r}")
    spec = spec or default_spec()
    c = spec.cmdlet(cmdlet)
    if c is None or side not in c.sides:
        raise CmdletRefusal(
            f"The term '{cmdlet}' is not recognized as a name of a cmdlet, function, script file, "
            "or executable program.",
            category="CommandNotFoundException",
            error_id="CommandNotFoundException",
        )
    bound: dict[str, Any] = {}
    specs: list[ParameterSpec] = []
    seen: set[str] = set()
    for raw_name, value in parameters.items():
        name = raw_name.lstrip("-")
        key = name.lower()
        if key in seen:
            raise CmdletRefusal(
                f"Cannot bind parameter because parameter '{name}' is specified more than once. "
                "To provide multiple values to parameters that can accept multiple values, use the "
                'array syntax. For example, "-parameter value1,value2,value3".',
                category="ParameterBindingException",
                error_id="ParameterAlreadyBound",
                parameter=name,
            )
        seen.add(key)
        common = next((n for n in COMMON_PARAMETERS if n.lower() == key), None)
        if common is not None:
            bound[common] = value
            continue
        p = c.parameters.get(key)
        if p is None or side not in p.sides:
            raise CmdletRefusal(
                f"A parameter cannot be found that matches parameter name '{name}'.",
                category="ParameterBindingException",
                error_id="NamedParameterNotFound",
                parameter=name,
            )
        bound[p.name] = _convert(p, value)
        specs.append(p)
    chosen = _resolve_set(c, specs, side)
    return Binding(cmdlet=c.name, parameter_set=chosen, parameters=bound)


def _resolve_set(c: CmdletSpec, bound: list[ParameterSpec], side: str) -> str:
    candidates = list(c.sets)
    for p in bound:
        allowed = set(c.members(p))
        candidates = [s for s in candidates if s in allowed]
    if not candidates:
        raise _ambiguous()
    names = {p.name.lower() for p in bound}

    def satisfied(s: str) -> bool:
        if not all(r.lower() in names for r in c.sets[s]):
            return False
        # A switch that belongs to one set only selects that set (Enable-Mailbox -Archive,
        # Get-MailboxPermission -Owner): the docs mark such switches optional, PowerShell doesn't.
        selecting = c.selecting_switches(s)
        return not selecting or bool(selecting & names)

    def offered(s: str) -> bool:
        # A set whose mandatory parameters don't exist on this side can't be bound there.
        return all((p := c.parameters.get(r.lower())) is not None and side in p.sides for r in c.sets[s])

    candidates = [s for s in candidates if offered(s)] or candidates
    if len(candidates) == 1:
        chosen = candidates[0]
    else:
        ready = [s for s in candidates if satisfied(s)]
        if len(ready) == 1:
            chosen = ready[0]
        elif c.default_set in ready:
            chosen = c.default_set
        elif "Identity" in ready:
            chosen = "Identity"
        elif ready:
            raise _ambiguous()
        elif c.default_set in candidates:
            chosen = c.default_set
        elif "Identity" in candidates:
            chosen = "Identity"
        else:
            raise _ambiguous()
    missing = [r for r in c.sets[chosen] if r.lower() not in names]
    if missing:
        raise CmdletRefusal(
            "Cannot process command because of one or more missing mandatory parameters: " + " ".join(missing) + ".",
            category="ParameterBindingException",
            error_id="MissingMandatoryParameter",
            parameter=missing[0],
        )
    return chosen


def _ambiguous() -> CmdletRefusal:
    return CmdletRefusal(
        "Parameter set cannot be resolved using the specified named parameters.",
        category="ParameterBindingException",
        error_id="AmbiguousParameterSet",
    )


# -- values -----------------------------------------------------------------------------------------


def _convert(p: ParameterSpec, value: Any) -> Any:
    """The value PowerShell would bind, or CmdletRefusal with its transformation error."""
    if p.multi:
        if isinstance(value, dict) and p.type in _MULTI_TYPES:
            # @{Add=...; Remove=...} modifies a multi-valued property in place.
            out: dict[str, list[Any]] = {}
            for k, v in value.items():
                op = next((o for o in ("Add", "Remove") if o.lower() == str(k).lower()), None)
                if op is None:
                    raise _cannot_convert(p, "System.Collections.Hashtable")
                out[op] = [_convert_one(p, item) for item in (v if isinstance(v, list) else [v])]
            return out
        if value is None:
            return None
        items = value if isinstance(value, list) else [value]
        return [_convert_one(p, item) for item in items]
    if isinstance(value, list):
        if p.element_type == "String" and all(not isinstance(v, dict | list) for v in value):
            return " ".join(str(v) for v in value)  # PowerShell joins an array bound to [string]
        raise _cannot_convert(p, "System.Object[]")
    return _convert_one(p, value)


def _convert_one(p: ParameterSpec, value: Any) -> Any:
    t = p.element_type
    if t in ("Boolean", "System.Boolean"):
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
            return bool(value)
        raise CmdletRefusal(
            f"Cannot process argument transformation on parameter '{p.name}'. Cannot convert value "
            f'"{_show(value)}" to type "System.Boolean". Boolean parameters accept only Boolean values '
            "and numbers, such as $True, $False, 1 or 0.",
            category="ParameterBindingArgumentTransformationException",
            error_id="ParameterArgumentTransformationError",
            parameter=p.name,
        )
    if t == "SwitchParameter":
        if isinstance(value, bool):
            return value
        raise _cannot_convert(p, _dotnet_type(value))
    if value is None:
        return None
    if isinstance(value, dict):
        if t.startswith("PswsHashtable"):
            return value
        raise _cannot_convert(p, "System.Collections.Hashtable")
    if t in _NUMERIC_TYPES:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            return int(value)
        raise _transform(p, value, _NUMERIC_TYPES[t], "Input string was not in a correct format.")
    if t == "Unlimited":
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        if isinstance(value, str):
            text = value.strip()
            if text.lower() == "unlimited":
                return "Unlimited"
            if text.isdigit():
                return int(text)
            if _SIZE.match(text):
                return text
        raise _transform(
            p,
            value,
            "Microsoft.Exchange.Data.Unlimited",
            f"The value \"{_show(value)}\" isn't a valid number or 'Unlimited'.",
        )
    if t == "ByteQuantifiedSize":
        if (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, str) and _SIZE.match(value)):
            return value
        raise _transform(p, value, "Microsoft.Exchange.Data.ByteQuantifiedSize", "The value isn't a valid size.")
    if t.endswith("EnhancedTimeSpan"):
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value}.00:00:00"
        if isinstance(value, str) and _TIMESPAN.match(value):
            return value.strip()
        raise _transform(
            p,
            value,
            "Microsoft.Exchange.Data.EnhancedTimeSpan",
            "String was not recognized as a valid TimeSpan.",
        )
    if t == "Guid":
        try:
            return str(uuid.UUID(str(value)))
        except ValueError:
            raise _transform(
                p,
                value,
                "System.Guid",
                "Guid should contain 32 digits with 4 dashes (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx).",
            ) from None
    if t in ("DateTime", "ExDateTime"):
        if isinstance(value, str) and _parse_datetime(value):
            return value
        raise _transform(p, value, "System.DateTime", "String was not recognized as a valid DateTime.")
    if isinstance(value, bool):
        value = "True" if value else "False"
    if p.valid_values is not None:
        for allowed in p.valid_values:
            if str(value).lower() == allowed.lower():
                return allowed
        raise CmdletRefusal(
            f"Cannot validate argument on parameter '{p.name}'. The argument \"{_show(value)}\" does not "
            f'belong to the set "{",".join(p.valid_values)}" specified by the ValidateSet attribute. '
            "Supply an argument that is in the set and then try the command again.",
            category="ParameterBindingValidationException",
            error_id="ParameterArgumentValidationError",
            parameter=p.name,
        )
    if isinstance(value, int | float | str):
        return value
    raise _cannot_convert(p, _dotnet_type(value))


def _parse_datetime(text: str) -> bool:
    candidate = text.strip().replace("Z", "+00:00")
    try:
        datetime.fromisoformat(candidate)
        return True
    except ValueError:
        pass
    for fmt in ("%m/%d/%Y", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %I:%M %p", "%Y-%m-%d"):
        try:
            datetime.strptime(text.strip(), fmt)
            return True
        except ValueError:
            continue
    return False


def _show(value: Any) -> str:
    if value is True:
        return "True"
    if value is False:
        return "False"
    return str(value)


def _dotnet_type(value: Any) -> str:
    if isinstance(value, bool):
        return "System.Boolean"
    if isinstance(value, int):
        return "System.Int32"
    if isinstance(value, float):
        return "System.Double"
    if isinstance(value, str):
        return "System.String"
    if isinstance(value, list):
        return "System.Object[]"
    if isinstance(value, dict):
        return "System.Collections.Hashtable"
    return "System.Object"


def _cannot_convert(p: ParameterSpec, given: str) -> CmdletRefusal:
    target = {
        "SwitchParameter": "System.Management.Automation.SwitchParameter",
        "String": "System.String",
    }.get(p.element_type, p.element_type)
    return CmdletRefusal(
        f"Cannot convert '{given}' to the type '{target}' required by parameter '{p.name}'. "
        "Specified method is not supported.",
        category="ParameterBindingException",
        error_id="CannotConvertArgument",
        parameter=p.name,
    )


def _transform(p: ParameterSpec, value: Any, target: str, why: str) -> CmdletRefusal:
    return CmdletRefusal(
        f"Cannot process argument transformation on parameter '{p.name}'. Cannot convert value "
        f'"{_show(value)}" to type "{target}". Error: "{why}"',
        category="ParameterBindingArgumentTransformationException",
        error_id="ParameterArgumentTransformationError",
        parameter=p.name,
    )
