"""Every PowerShell line the tool prints, built one way.

What is *sent* never goes through here: Exchange gets JSON (InvokeCommand) or pypsrp parameters,
Graph gets JSON. These lines are what an admin reads in a report and may copy into a shell, so a
value must never be able to end its literal and run something else: every string is a
single-quoted literal with every character PowerShell treats as a single quote doubled (the ASCII
apostrophe and U+2018..U+201B), nothing from the tenant or the config is ever pasted bare, and
the only unquoted text is what this module writes itself (cmdlet and parameter names, `$true`,
numbers, and expressions built from the same functions).

`known_cmdlet()` tells whether a cmdlet and its parameters exist: Microsoft's Exchange cmdlet
reference (data/exchange-cmdlets.json) or, for cmdlets it lacks (Microsoft Graph PowerShell, a
few Exchange ones), data/powershell-cmdlets.json with each cmdlet's reference page.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# PowerShell's tokenizer treats all of these as a single quote (SpecialChars.IsSingleQuote).
SINGLE_QUOTES = "'\u2018\u2019\u201a\u201b"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CMDLET = re.compile(r"^[A-Za-z]+-[A-Za-z0-9]+$")
_DATA = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class Expr:
    """PowerShell text this module built (a lookup, a variable, a format expression): written as is."""

    text: str

    def __str__(self) -> str:
        return self.text


def literal(value: Any) -> str:
    """`value` as PowerShell source that evaluates to exactly that value."""
    if isinstance(value, Expr):
        return value.text
    if value is True:
        return "$true"
    if value is False:
        return "$false"
    if value is None:
        return "$null"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "@(" + ",".join(literal(v) for v in value) + ")"
    if isinstance(value, Mapping):
        return "@{" + "; ".join(f"{_key(k)}={literal(v)}" for k, v in value.items()) + "}"
    text = str(value)
    return "'" + "".join(c + c if c in SINGLE_QUOTES else c for c in text) + "'"


def _key(key: Any) -> str:
    text = str(key)
    return text if _IDENTIFIER.fullmatch(text) else literal(text)


def variable(name: str) -> Expr:
    """`$name`: a value the admin supplies (a password), never printed."""
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"not a PowerShell variable name: {name!r}")
    return Expr("$" + name)


def command(name: str, parameters: Mapping[str, Any] | None = None) -> str:
    """`Name -Param value ...`. True for a switch parameter is written `-Param`; a Boolean one
    `-Param $true`; a switch turned off `-Param:$false`. Lists are comma-separated literals."""
    if not _CMDLET.fullmatch(name):
        raise ValueError(f"not a cmdlet name: {name!r}")
    parts = [name]
    for key, value in (parameters or {}).items():
        if not _IDENTIFIER.fullmatch(key):
            raise ValueError(f"not a parameter name: {key!r}")
        kind = parameter_type(name, key)
        # A parameter neither reference knows: True means a switch unless it reads like a Boolean.
        switch = kind == "SwitchParameter" or (kind is None and not key.endswith(("Enabled", "Disabled")))
        if switch and value is True:
            parts.append(f"-{key}")
        elif switch and value is False:
            parts.append(f"-{key}:$false")
        elif isinstance(value, list | tuple) and value:
            parts.append(f"-{key} " + ",".join(literal(v) for v in value))
        else:
            parts.append(f"-{key} {literal(value)}")
    return " ".join(parts)


def lookup(name: str, parameters: Mapping[str, Any], prop: str = "Id") -> Expr:
    """`(Get-Thing -Param 'x').Id`: the command that resolves an id unknown when the report was made."""
    if not _IDENTIFIER.fullmatch(prop):
        raise ValueError(f"not a property name: {prop!r}")
    return Expr(f"({command(name, parameters)}).{prop}")


def odata_filter(template: str, *values: Any) -> Expr:
    """An OData filter whose values may be literals or lookups: `('appId eq ''{0}''' -f (...))`.
    `template` holds `{0}`-style slots inside OData single quotes; values are never spliced into it."""
    if not values:
        return Expr(literal(template))
    if all(not isinstance(v, Expr) for v in values):
        escaped = [str(v).replace("'", "''") for v in values]  # OData doubles its own quote
        return Expr(literal(template.format(*escaped)))
    return Expr("(" + literal(template) + " -f " + ",".join(literal(v) for v in values) + ")")


def user_id(upn: str, object_id: str | None) -> Any:
    """The user's object id, or the lookup that yields it once the user exists."""
    if object_id and not object_id.startswith("${"):
        return object_id
    return lookup("Get-MgUser", {"UserId": upn})


# --- which cmdlets and parameters exist ------------------------------------------------------------


@functools.cache
def _spec() -> dict[str, dict[str, str]]:
    """cmdlet -> {parameter -> type}, from the Exchange reference and the project's own table."""
    table: dict[str, dict[str, str]] = {}
    exchange = json.loads((_DATA / "exchange-cmdlets.json").read_text(encoding="utf-8"))
    for name, entry in exchange.items():
        table[name] = {p: str(v.get("type", "")) for p, v in entry.get("parameters", {}).items()}
    extra = json.loads((_DATA / "powershell-cmdlets.json").read_text(encoding="utf-8"))
    for name, entry in extra["cmdlets"].items():
        table.setdefault(name, {}).update(entry["parameters"])
    return table


def parameter_type(cmdlet: str, parameter: str) -> str | None:
    return _spec().get(cmdlet, {}).get(parameter)


def known_cmdlet(cmdlet: str, parameters: list[str]) -> list[str]:
    """What is wrong with calling `cmdlet` with these parameters (empty when it is documented)."""
    spec = _spec().get(cmdlet)
    if spec is None:
        return [f"{cmdlet} is in neither cmdlet reference"]
    return [f"{cmdlet} has no parameter -{p}" for p in parameters if p not in spec]


def reference_page(cmdlet: str) -> str | None:
    exchange = json.loads((_DATA / "exchange-cmdlets.json").read_text(encoding="utf-8"))
    if cmdlet in exchange:
        return str(exchange[cmdlet].get("source", {}).get("online_version") or "") or None
    extra = json.loads((_DATA / "powershell-cmdlets.json").read_text(encoding="utf-8"))
    entry = extra["cmdlets"].get(cmdlet)
    return str(entry["reference"]) if entry else None


__all__ = [
    "SINGLE_QUOTES",
    "Expr",
    "command",
    "known_cmdlet",
    "literal",
    "lookup",
    "odata_filter",
    "parameter_type",
    "reference_page",
    "user_id",
    "variable",
]
