"""OData query pieces for the simulated Graph: a small `$filter` parser and server-side paging cursors.

The filter grammar covers what directory queries use: `eq ne gt ge lt le`, `in (...)`, `and`, `or`,
`not`, parentheses, `startswith(p,'x')`, `endswith(p,'x')`, `p/$count`, and
`p/any(x:x/sub eq 'v')`. Like Entra ID, string comparisons ignore case, and operators that Graph
only allows as "advanced queries" (`ne`, `not`, `endswith`, `/$count`, `eq null`) set
`Filter.advanced`, which the caller checks against `ConsistencyLevel: eventual` + `$count=true`.
"""

from __future__ import annotations

import base64
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Getter = Callable[[Any], Any]
Predicate = Callable[[Any], bool]


class FilterError(ValueError):
    """A filter the simulated service refuses: (code, message) as Graph reports them."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>'(?:[^']|'')*')
      | (?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})
      | (?P<num>-?\d+(?:\.\d+)?)
      | (?P<word>[A-Za-z_$][\w$]*(?:/[A-Za-z_$][\w$]*)*)
      | (?P<punct>[(),:])
    )""",
    re.VERBOSE,
)

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a is not None and b is not None and a > b,
    "ge": lambda a, b: a is not None and b is not None and a >= b,
    "lt": lambda a, b: a is not None and b is not None and a < b,
    "le": lambda a, b: a is not None and b is not None and a <= b,
}


@dataclass
class Filter:
    predicate: Predicate
    advanced: bool = False
    advanced_property: str = ""  # the property whose clause needs an advanced query
    properties: set[str] = field(default_factory=set)
    equals: dict[str, Any] = field(default_factory=dict)  # top-level `p eq v` terms joined by `and`


def _norm(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


class _Parser:
    def __init__(self, text: str, fields: Mapping[str, Getter], type_name: str) -> None:
        self.text = text
        self.fields = fields
        self.type_name = type_name
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        text = text.strip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise self._invalid()
            kind = m.lastgroup or ""
            self.tokens.append((kind, m.group(kind)))
            pos = m.end()
            while pos < len(text) and text[pos].isspace():
                pos += 1
        self.i = 0
        self.advanced = False
        self.advanced_property = ""
        self.properties: set[str] = set()
        self.equals: dict[str, Any] = {}
        self.depth = 0
        self.equals_ok = True  # false once `or` / `not` appear: then `equals` is no shortcut

    def _invalid(self) -> FilterError:
        return FilterError("BadRequest", "Invalid filter clause")

    def _unsupported(self, prop: str) -> FilterError:
        return FilterError(
            "Request_UnsupportedQuery",
            f"Unsupported or invalid query filter clause specified for property '{prop}' "
            f"of resource '{self.type_name}'.",
        )

    def _needs_advanced(self, prop: str) -> None:
        self.advanced = True
        self.advanced_property = self.advanced_property or prop

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1].lower() != value):
            raise self._invalid()
        self.i += 1
        return tok

    def parse(self) -> Filter:
        pred = self.expr()
        if self.peek() is not None:
            raise self._invalid()
        return Filter(
            pred, self.advanced, self.advanced_property, self.properties, self.equals if self.equals_ok else {}
        )

    def expr(self) -> Predicate:
        terms = [self.and_expr()]
        while (tok := self.peek()) and tok[0] == "word" and tok[1].lower() == "or":
            self.take()
            terms.append(self.and_expr())
        if len(terms) == 1:
            return terms[0]
        self.equals_ok = False
        return lambda obj: any(t(obj) for t in terms)

    def and_expr(self) -> Predicate:
        terms = [self.unary()]
        while (tok := self.peek()) and tok[0] == "word" and tok[1].lower() == "and":
            self.take()
            terms.append(self.unary())
        if len(terms) == 1:
            return terms[0]
        return lambda obj: all(t(obj) for t in terms)

    def unary(self) -> Predicate:
        tok = self.peek()
        if tok is None:
            raise self._invalid()
        if tok == ("punct", "("):
            self.take()
            self.depth += 1
            inner = self.expr()
            self.depth -= 1
            self.take(")")
            return inner
        if tok[0] == "word" and tok[1].lower() == "not":
            self.take()
            self.advanced = True
            self.equals_ok = False
            inner = self.unary()
            return lambda obj: not inner(obj)
        if tok[0] == "word" and tok[1].lower() in ("startswith", "endswith"):
            return self.function()
        return self.comparison()

    def literal(self) -> Any:
        kind, value = self.take()
        if kind == "str":
            return value[1:-1].replace("''", "'")
        if kind == "guid":
            return value.lower()
        if kind == "num":
            return float(value) if "." in value else int(value)
        if kind == "word" and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if kind == "word" and value.lower() == "null":
            return None
        raise self._invalid()

    def getter(self, prop: str) -> Getter:
        get = self.fields.get(prop)
        if get is None:
            raise self._unsupported(prop)
        self.properties.add(prop)
        return get

    def function(self) -> Predicate:
        name = self.take()[1].lower()
        self.take("(")
        kind, prop = self.take()
        if kind != "word":
            raise self._invalid()
        self.take(",")
        needle = self.literal()
        self.take(")")
        if not isinstance(needle, str):
            raise self._invalid()
        get = self.getter(prop)
        low = needle.lower()
        if name == "endswith":
            self._needs_advanced(prop)
            return lambda obj: isinstance(v := get(obj), str) and v.lower().endswith(low)
        return lambda obj: isinstance(v := get(obj), str) and v.lower().startswith(low)

    def comparison(self) -> Predicate:
        kind, path = self.take()
        if kind != "word":
            raise self._invalid()
        if path.endswith("/any"):
            return self.any_lambda(path[: -len("/any")])
        counting = path.endswith("/$count")
        prop = path[: -len("/$count")] if counting else path
        get = self.getter(prop)
        op_tok = self.take()
        op = op_tok[1].lower()
        if op == "in":
            self.take("(")
            values = [_norm(self.literal())]
            while self.peek() == ("punct", ","):
                self.take()
                values.append(_norm(self.literal()))
            self.take(")")
            return lambda obj: _norm(get(obj)) in values
        compare = _OPS.get(op)
        if compare is None:
            raise self._invalid()
        value = _norm(self.literal())
        if counting:
            self._needs_advanced(prop)
            return lambda obj: bool(compare(len(get(obj) or ()), value))
        if op == "ne" or value is None:
            self._needs_advanced(prop)
        if op == "eq" and self.depth == 0:
            self.equals[prop] = value
        return lambda obj: bool(compare(_norm(get(obj)), value))

    def any_lambda(self, prop: str) -> Predicate:
        get = self.getter(prop)
        self.take("(")
        var = self.take()[1]
        self.take(":")
        kind, path = self.take()
        if kind != "word" or not path.startswith(var + "/"):
            raise self._invalid()
        sub = path[len(var) + 1 :]
        op = self.take()[1].lower()
        compare = _OPS.get(op)
        if compare is None:
            raise self._invalid()
        value = _norm(self.literal())
        self.take(")")
        return lambda obj: any(
            isinstance(item, dict) and compare(_norm(item.get(sub)), value) for item in (get(obj) or ())
        )


def parse_filter(text: str, fields: Mapping[str, Getter], type_name: str) -> Filter:
    """Compile `$filter` text against `fields` (property name -> getter); raises FilterError."""
    return _Parser(text, fields, type_name).parse()


class Cursors:
    """Server-side paging: a query's matching objects are kept under an opaque `$skiptoken`.

    Graph's skip tokens are opaque too; keeping the snapshot makes paging a 100,000-user tenant a
    slice per page instead of a scan.
    """

    def __init__(self, capacity: int = 256) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, list[Any]] = OrderedDict()
        self._lock = threading.Lock()

    def page(self, items: list[Any] | None, token: str | None, top: int) -> tuple[list[Any], str | None, int]:
        """(this page, next skip token or None, total). `items` is the full result on the first page."""
        offset = 0
        key: str | None = None
        if token:
            key, offset = _decode_token(token)
            with self._lock:
                stored = self._items.get(key)
                if stored is not None:
                    self._items.move_to_end(key)
            if stored is None:
                raise FilterError("Request_BadRequest", "The skip token is not valid or has expired.")
            items = stored
        assert items is not None
        chunk = items[offset : offset + top]
        nxt = offset + top
        if nxt >= len(items):
            return chunk, None, len(items)
        if key is None:
            key = uuid.uuid4().hex
            with self._lock:
                self._items[key] = items
                while len(self._items) > self.capacity:
                    self._items.popitem(last=False)
        return chunk, _encode_token(key, nxt), len(items)


def _encode_token(key: str, offset: int) -> str:
    raw = f"RFNwdA{key}:{offset}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> tuple[str, int]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        key, offset = raw[len("RFNwdA") :].rsplit(":", 1)
        return key, int(offset)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FilterError("Request_BadRequest", "The skip token is not valid or has expired.") from exc
