"""OPATH -Filter parsing for the simulated cmdlets."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from m365archive.sim.exchange.core import CmdletError

# -- OPATH filters -----------------------------------------------------------------------------------

_CLAUSE = re.compile(
    r"""\s*(?P<prop>[A-Za-z][A-Za-z0-9]*)\s+-(?P<op>eq|ne|like)\s+
        (?:'(?P<sq>(?:[^']|'')*)'|"(?P<dq>[^"]*)"|(?P<var>\$true|\$false|\$null)|(?P<bare>[A-Za-z0-9._@-]+))\s*""",
    re.IGNORECASE | re.VERBOSE,
)


def compile_filter(text: str, properties: Iterable[str]) -> Callable[[dict[str, Any]], bool]:
    """A predicate for the OPATH filters the product uses: `Prop -eq 'v'`, -ne, -like, joined by -and.

    Anything else is refused with the texts Exchange uses for bad filters.
    """
    known = {p.lower(): p for p in properties}
    body = text.strip()
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1]
    if body.startswith("(") and body.endswith(")") and body.count("(") == 1:
        body = body[1:-1]
    clauses: list[tuple[str, str, Any]] = []
    for part in re.split(r"\s+-and\s+", body, flags=re.IGNORECASE):
        part = part.strip()
        if part.startswith("(") and part.endswith(")"):
            part = part[1:-1]
        match = _CLAUSE.fullmatch(part)
        if not match:
            raise CmdletError(
                "System.Management.Automation.ParameterBindingException",
                f'Cannot bind parameter \'Filter\' to the target. Exception setting "Filter": "Invalid filter '
                f'syntax. For a description of the filter parameter syntax see the command help.\n"{text}""',
            )
        prop = known.get(match["prop"].lower())
        if prop is None:
            raise CmdletError(
                "System.Management.Automation.ParameterBindingException",
                f"Cannot bind parameter 'Filter' to the target. Exception setting \"Filter\": "
                f'""{match["prop"]}" is not a recognized filterable property. For a complete list of filterable '
                'properties see the command help."',
            )
        value: Any
        if match["var"] is not None:
            value = {"$true": True, "$false": False, "$null": None}[match["var"].lower()]
        elif match["sq"] is not None:
            value = match["sq"].replace("''", "'")
        elif match["dq"] is not None:
            value = match["dq"]
        else:
            value = match["bare"]
        clauses.append((prop, match["op"].lower(), value))

    def matches(obj: dict[str, Any]) -> bool:
        for prop, op, value in clauses:
            actual = obj.get(prop)
            if op == "like":
                pattern = "^" + re.escape(str(value)).replace(r"\*", ".*") + "$"
                hit = bool(re.match(pattern, str(actual or ""), re.IGNORECASE))
            else:
                hit = _equal(actual, value)
                if op == "ne":
                    hit = not hit
            if not hit:
                return False
        return True

    return matches


def _equal(actual: Any, value: Any) -> bool:
    if isinstance(actual, bool) or isinstance(value, bool):
        return str(actual).lower() == str(value).lower().lstrip("$")
    if value is None:
        return actual in (None, "", [])
    if isinstance(actual, list):
        return any(str(a).lower() == str(value).lower() for a in actual)
    return str(actual).lower() == str(value).lower()
