"""A small reference tokenizer for the PowerShell lines the reports print.

Written from PowerShell's language rules (about_Quoting_Rules, about_Parsing and the tokenizer's
SpecialChars.IsSingleQuote, which treats ' and U+2018..U+201B alike), independently of
m365archive.powershell, and deliberately strict: it accepts only what a line that runs exactly
one cmdlet may hold. Anything else (a statement separator, a pipe, a call operator, a redirection,
a comment, a double-quoted string, a backtick, a bare value) is an error, because a line with
one of those could run something other than what it shows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

SINGLE_QUOTES = "'\u2018\u2019\u201a\u201b"
DOUBLE_QUOTES = '"\u201c\u201d\u201e'
DASHES = "-\u2013\u2014\u2015"  # PowerShell accepts all of these as a parameter's dash
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)?")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_CMDLET = re.compile(r"^[A-Za-z]+-[A-Za-z0-9]+$")


class PsSyntaxError(ValueError):
    pass


@dataclass
class Invocation:
    cmdlet: str
    parameters: list[str] = field(default_factory=list)
    strings: list[str] = field(default_factory=list)  # every string literal's value, in order
    nested: list[Invocation] = field(default_factory=list)  # commands inside ( ) lookups


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def peek(self, offset: int = 0) -> str:
        i = self.pos + offset
        return self.text[i] if i < len(self.text) else ""

    def skip_blanks(self) -> None:
        while self.peek() in (" ", "\t"):
            self.pos += 1

    def string(self) -> str:
        assert self.peek() in SINGLE_QUOTES
        self.pos += 1
        out = []
        while True:
            c = self.peek()
            if c == "":
                raise PsSyntaxError("unterminated single-quoted string")
            self.pos += 1
            if c in SINGLE_QUOTES:
                if self.peek() and self.peek() in SINGLE_QUOTES:
                    out.append(self.peek())
                    self.pos += 1
                    continue
                return "".join(out)
            out.append(c)


def parse(text: str) -> list[Invocation]:
    """Every statement of `text`, one per line; raises PsSyntaxError for anything else."""
    s = _Scanner(text)
    statements: list[Invocation] = []
    while True:
        s.skip_blanks()
        if s.peek() == "":
            return statements
        if s.peek() in "\r\n":
            s.pos += 1
            continue
        statements.append(_command(s, top=True))


def parse_one(line: str) -> Invocation:
    statements = parse(line)
    if len(statements) != 1:
        raise PsSyntaxError(f"{len(statements)} statements, not one")
    return statements[0]


def _command(s: _Scanner, *, top: bool) -> Invocation:
    s.skip_blanks()
    m = _WORD.match(s.text, s.pos)
    if not m or not _CMDLET.match(m.group(0)):
        raise PsSyntaxError(f"expected a cmdlet name at {s.pos}: {s.text[s.pos : s.pos + 20]!r}")
    s.pos = m.end()
    inv = Invocation(m.group(0))
    while True:
        s.skip_blanks()
        c = s.peek()
        if c == "" or (top and c in "\r\n") or (not top and c == ")"):
            return inv
        if c in DASHES and re.match(r"[A-Za-z]", s.peek(1)):
            s.pos += 1
            name = _WORD.match(s.text, s.pos)
            assert name is not None
            s.pos = name.end()
            inv.parameters.append(name.group(0))
            if s.peek() == ":":
                s.pos += 1
                _value(s, inv, expression=False)
                continue
            s.skip_blanks()
            nxt = s.peek()
            if nxt == "" or nxt in "\r\n)" or (nxt in DASHES and re.match(r"[A-Za-z]", s.peek(1))):
                continue  # a switch
            _value_list(s, inv)
            continue
        raise PsSyntaxError(f"unexpected {c!r} at {s.pos} (a bare value or an operator)")


def _value_list(s: _Scanner, inv: Invocation) -> None:
    _value(s, inv, expression=False)
    while True:
        s.skip_blanks()
        if s.peek() != ",":
            return
        s.pos += 1
        s.skip_blanks()
        _value(s, inv, expression=False)


def _value(s: _Scanner, inv: Invocation, *, expression: bool) -> None:
    c = s.peek()
    if c in SINGLE_QUOTES and c:
        inv.strings.append(s.string())
    elif c == "$":
        m = re.compile(r"\$[A-Za-z_][A-Za-z0-9_]*").match(s.text, s.pos)
        if not m:
            raise PsSyntaxError(f"bad variable at {s.pos}")
        s.pos = m.end()
    elif c and c.isdigit():
        m = _NUMBER.match(s.text, s.pos)
        assert m is not None
        s.pos = m.end()
    elif c == "@" and s.peek(1) == "(":
        s.pos += 2
        _array(s, inv)
    elif c == "@" and s.peek(1) == "{":
        s.pos += 2
        _hashtable(s, inv)
    elif c == "(":
        s.pos += 1
        _group(s, inv)
    else:
        raise PsSyntaxError(f"unexpected {c!r} at {s.pos}")
    # member access on a group: (Get-X ...).Id
    if s.text[s.pos - 1 : s.pos] == ")" and s.peek() == ".":
        s.pos += 1
        m = re.compile(r"[A-Za-z_][A-Za-z0-9_]*").match(s.text, s.pos)
        if not m:
            raise PsSyntaxError(f"bad member access at {s.pos}")
        s.pos = m.end()
    # In argument mode a value glued to more text would become one bare word ('a'b): never allowed.
    if s.peek() not in ("", " ", "\t", "\r", "\n", ",", ")", "}", ";"):
        raise PsSyntaxError(f"text glued to a value at {s.pos}: {s.text[s.pos : s.pos + 10]!r}")


def _array(s: _Scanner, inv: Invocation) -> None:
    s.skip_blanks()
    if s.peek() == ")":
        s.pos += 1
        return
    while True:
        s.skip_blanks()
        _value(s, inv, expression=True)
        s.skip_blanks()
        if s.peek() == ",":
            s.pos += 1
            continue
        if s.peek() == ")":
            s.pos += 1
            return
        raise PsSyntaxError(f"expected , or ) in @( ) at {s.pos}")


def _hashtable(s: _Scanner, inv: Invocation) -> None:
    while True:
        s.skip_blanks()
        if s.peek() == "}":
            s.pos += 1
            return
        if s.peek() in SINGLE_QUOTES and s.peek():
            inv.strings.append(s.string())
        else:
            m = re.compile(r"[A-Za-z_][A-Za-z0-9_]*").match(s.text, s.pos)
            if not m:
                raise PsSyntaxError(f"bad hashtable key at {s.pos}")
            s.pos = m.end()
        s.skip_blanks()
        if s.peek() != "=":
            raise PsSyntaxError(f"expected = in @{{ }} at {s.pos}")
        s.pos += 1
        s.skip_blanks()
        _value(s, inv, expression=True)
        s.skip_blanks()
        if s.peek() == ";":
            s.pos += 1
        elif s.peek() != "}":
            raise PsSyntaxError(f"expected ; or }} in @{{ }} at {s.pos}")


def _group(s: _Scanner, inv: Invocation) -> None:
    """( Get-Thing -P 'v' )  or  ( 'template {0}' -f value, ... )"""
    s.skip_blanks()
    if s.peek() in SINGLE_QUOTES and s.peek():
        inv.strings.append(s.string())
        s.skip_blanks()
        if s.text[s.pos : s.pos + 2] != "-f" or s.peek(2) not in (" ", "\t"):
            raise PsSyntaxError(f"only the -f operator may follow a string in ( ) at {s.pos}")
        s.pos += 2
        s.skip_blanks()
        _value(s, inv, expression=True)
        while True:
            s.skip_blanks()
            if s.peek() == ",":
                s.pos += 1
                s.skip_blanks()
                _value(s, inv, expression=True)
                continue
            break
    else:
        nested = _command(s, top=False)
        inv.nested.append(nested)
        inv.strings += nested.strings
    s.skip_blanks()
    if s.peek() != ")":
        raise PsSyntaxError(f"expected ) at {s.pos}")
    s.pos += 1


def all_invocations(inv: Invocation) -> list[Invocation]:
    out = [inv]
    for nested in inv.nested:
        out += all_invocations(nested)
    return out
